package reconcile

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/repoctx"
)

var now = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

// fakeGitHub is one installation's GitHub in memory; the check and promotion services' own calls are left
// to the embedded nil interface (the fake services make none).
type fakeGitHub struct {
	GitHub
	cfgErr   error
	repos    []*github.Repository
	missing  map[string]bool                  // branches that do not exist
	open     map[string][]*github.PullRequest // by base branch
	branches int
}

func (f *fakeGitHub) Config(context.Context, string, string, string) (*repoconfig.Config, error) {
	if f.cfgErr != nil {
		return nil, f.cfgErr
	}
	return repoconfig.Default(), nil
}

func (f *fakeGitHub) Repositories(context.Context) ([]*github.Repository, error) { return f.repos, nil }

func (f *fakeGitHub) BranchExists(_ context.Context, _, _, branch string) (bool, error) {
	f.branches++
	return !f.missing[branch], nil
}

func (f *fakeGitHub) OpenPullRequests(_ context.Context, _, _, base string) ([]*github.PullRequest, error) {
	return f.open[base], nil
}

func (f *fakeGitHub) GoGitHub() *github.Client { return nil }

type fakePromotions struct {
	res   promotion.ReconcileResult
	calls int
}

func (f *fakePromotions) ReconcileRemovals(context.Context, promotion.Repo) (promotion.ReconcileResult, error) {
	f.calls++
	return f.res, nil
}

type fakeChecks struct{ checked []int }

func (f *fakeChecks) CheckPRIfStale(_ context.Context, _ prcheck.GitHub, _ repoctx.Repo, pr *github.PullRequest, _ time.Duration) (prcheck.Outcome, bool, error) {
	f.checked = append(f.checked, pr.GetNumber())
	return prcheck.Outcome{}, true, nil
}

func repository(name string) *github.Repository {
	return &github.Repository{Name: github.String(name), FullName: github.String("o/" + name), DefaultBranch: github.String("main"),
		Owner: &github.User{Login: github.String("o")}}
}

func openPR(number int, updated time.Time) *github.PullRequest {
	return &github.PullRequest{Number: github.Int(number), UpdatedAt: &github.Timestamp{Time: updated}}
}

func newTestRunner(gh *fakeGitHub, promotions *fakePromotions, checks *fakeChecks) *Runner {
	r := NewRunner(nil, nil, nil, 0, nil)
	r.Promotions, r.Checks, r.Grace = promotions, checks, DefaultGrace
	r.Now = func() time.Time { return now }
	r.GitHub = func(int64) (GitHub, error) { return gh, nil }
	return r
}

// TestGrace: the reconciler leaves a PR updated within the grace period to its webhook and evaluates the
// others, on every channel branch.
func TestGrace(t *testing.T) {
	gh := &fakeGitHub{repos: []*github.Repository{repository("package-storage")}, open: map[string][]*github.PullRequest{
		"snapshot":   {openPR(1, now.Add(-time.Minute)), openPR(2, now.Add(-DefaultGrace-time.Second))},
		"production": {openPR(3, now.Add(-time.Hour))},
	}}
	checks := &fakeChecks{}
	r := newTestRunner(gh, &fakePromotions{}, checks)
	if err := r.installation(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{2, 3}, checks.checked); diff != "" {
		t.Errorf("PRs evaluated (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(r.runs.WithLabelValues("check_left_to_webhook")); got != 1 {
		t.Errorf("left to the webhook: %v, want 1", got)
	}
}

// TestConflictsAndSkips: conflicts are counted per repository; a repository with an invalid configuration
// or without every channel branch is skipped before any promotion work; an interval not yet elapsed skips.
func TestConflictsAndSkips(t *testing.T) {
	conflict := promotion.Conflict{Version: commandparse.VersionRef{Package: "apm", Version: "8.1.0"}, Lower: "staging", Higher: "production", LowerTree: "a", HigherTree: "b"}
	tests := []struct {
		name          string
		gh            *fakeGitHub
		wantReconcile int
		wantConflicts float64
		wantSkipped   float64
	}{
		{"conflicts reported", &fakeGitHub{}, 1, 2, 0},
		{"invalid configuration", &fakeGitHub{cfgErr: &repoconfig.Error{Line: 1, Msg: "bad"}}, 0, 0, 1},
		{"no staging branch", &fakeGitHub{missing: map[string]bool{"staging": true}}, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.gh.repos = []*github.Repository{repository("package-storage")}
			promotions := &fakePromotions{res: promotion.ReconcileResult{Conflicts: []promotion.Conflict{conflict, conflict}}}
			r := newTestRunner(tc.gh, promotions, &fakeChecks{})
			if err := r.installation(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			if promotions.calls != tc.wantReconcile {
				t.Errorf("promotion reconcile ran %d times, want %d", promotions.calls, tc.wantReconcile)
			}
			if got := testutil.ToFloat64(r.conflicts.WithLabelValues("o/package-storage")); got != tc.wantConflicts {
				t.Errorf("conflicts gauge = %v, want %v", got, tc.wantConflicts)
			}
			if got := testutil.ToFloat64(r.runs.WithLabelValues("skipped")); got != tc.wantSkipped {
				t.Errorf("skipped = %v, want %v", got, tc.wantSkipped)
			}
		})
	}
	t.Run("interval not elapsed", func(t *testing.T) {
		gh := &fakeGitHub{repos: []*github.Repository{repository("package-storage")}}
		promotions := &fakePromotions{}
		r := newTestRunner(gh, promotions, &fakeChecks{})
		for i := 0; i < 2; i++ {
			if err := r.installation(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
		}
		if promotions.calls != 1 {
			t.Errorf("two runs within the repository's interval reconciled %d times, want 1", promotions.calls)
		}
	})
}

// TestEveryRepository: every repository of an installation (all pages, which githubapi.Repositories reads)
// is reconciled; one failing does not stop the others.
func TestEveryRepository(t *testing.T) {
	var repos []*github.Repository
	for i := 0; i < 250; i++ {
		repos = append(repos, repository(fmt.Sprintf("storage-%03d", i)))
	}
	gh := &fakeGitHub{repos: repos}
	promotions := &fakePromotions{}
	r := newTestRunner(gh, promotions, &fakeChecks{})
	if err := r.installation(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if promotions.calls != len(repos) {
		t.Errorf("reconciled %d repositories, want %d", promotions.calls, len(repos))
	}
}
