package promotion

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/internal/testkit"
)

const routeTree = "GET /repos/{owner}/{repo}/git/trees/{tree_sha}"

// readPath is one of the service's read-heavy paths: prepare does, unmeasured, what it needs first and
// returns the path itself.
type readPath struct {
	name    string
	prepare func(t *testing.T, l *latencyEnv) func(ctx context.Context, repo Repo) error
}

// readPaths are /promote (6 versions, target implied), the follow-up of a merged promotion of 6 versions, and
// a reconcile pass over a storage without duplicates.
var readPaths = []readPath{
	{name: "promote", prepare: func(t *testing.T, l *latencyEnv) func(context.Context, Repo) error {
		versions := l.take(t, 6)
		return func(ctx context.Context, repo Repo) error {
			res, err := l.svc.Promote(ctx, repo, PromoteRequest{Versions: refs(versions...)})
			if err == nil && (len(res.Refusals) > 0 || res.PR.Number == 0 || len(res.Versions) != 6) {
				err = fmt.Errorf("promote %v: %+v, want one PR of 6 versions", versions, res)
			}
			return err
		}
	}},
	{name: "follow-up", prepare: func(t *testing.T, l *latencyEnv) func(context.Context, Repo) error {
		merged := l.pr(t, l.promoteAndMergeTo(t, l.take(t, 6)))
		return func(ctx context.Context, repo Repo) error {
			results, err := l.svc.FollowUp(ctx, repo, merged)
			if err == nil && (len(results) != 1 || len(results[0].Removed) != 6 || !results[0].Created) {
				err = fmt.Errorf("follow-up of #%d: %+v, want one new removal PR of 6 versions", merged.GetNumber(), results)
			}
			return err
		}
	}},
	{name: "reconcile", prepare: func(t *testing.T, l *latencyEnv) func(context.Context, Repo) error {
		return func(ctx context.Context, repo Repo) error {
			res, err := l.svc.ReconcileRemovals(ctx, repo)
			if err == nil && (len(res.Removals) > 0 || len(res.Conflicts) > 0) {
				err = fmt.Errorf("reconcile of a storage without duplicates: %+v", res)
			}
			return err
		}
	}},
}

// TestReadsOverlapWithinTheBound: each path's reads overlap, never more in flight than the bound; a bound of 1
// reads one after another.
func TestReadsOverlapWithinTheBound(t *testing.T) {
	for _, p := range readPaths {
		for _, bound := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/bound=%d", p.name, bound), func(t *testing.T) {
				l := newLatencyEnv(t, 12)
				op := p.prepare(t, l)
				repo := l.cold(bound)
				l.fake.ResetCalls()
				l.fake.SetLatency(20*time.Millisecond, 10*time.Millisecond, 7)
				err := op(context.Background(), repo)
				l.fake.SetLatency(0, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				got := l.fake.MaxInFlight()
				if got > bound {
					t.Errorf("%d requests in flight at once, over the bound of %d", got, bound)
				}
				if bound > 1 && got < 2 {
					t.Errorf("at most %d request in flight with a bound of %d: the reads did not overlap", got, bound)
				}
				t.Logf("%d calls, at most %d in flight", l.apiCalls(), got)
			})
		}
	}
}

// TestFailedReadCancelsTheOthers: the first read that fails stops the path's other reads (none starts
// after it), and the error returned is that read's, not the cancellation it caused.
func TestFailedReadCancelsTheOthers(t *testing.T) {
	const bound = 3
	for _, p := range readPaths {
		t.Run(p.name, func(t *testing.T) {
			l := newLatencyEnv(t, 12)
			op := p.prepare(t, l)
			repo := l.cold(bound)
			l.fake.ResetCalls()
			l.fake.SetLatency(20*time.Millisecond, 0, 1)
			l.fake.InjectFault(githubfake.Fault{Route: routeTree, Status: http.StatusForbidden, Times: 1})
			err := op(context.Background(), repo)
			l.fake.SetLatency(0, 0, 0)
			var ghErr *github.ErrorResponse
			if !errors.As(err, &ghErr) || ghErr.Response.StatusCode != http.StatusForbidden || !strings.Contains(err.Error(), "read tree") {
				t.Fatalf("error = %v, want the refused tree read (403) as the cause", err)
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("error = %v: the cancellation of the other reads, not their cause", err)
			}
			// Reads in flight when the refusal came (at most the bound, the refused one included) may still
			// arrive; none starts afterwards. A whole run reads several times as many trees.
			if n := l.fake.Calls(routeTree); n > 2*bound {
				t.Errorf("%d tree reads after the first one was refused: the others were not cancelled", n)
			}
			t.Logf("%v", err)
		})
	}
}

// TestSecondaryLimitOneSharedWait: a secondary rate limit met by one of a path's overlapped reads backs every
// worker off together (ghclient's one wait per installation): no read is sent twice while the limit holds,
// and only those already on their way when it began reach GitHub during it.
func TestSecondaryLimitOneSharedWait(t *testing.T) {
	for _, p := range readPaths {
		t.Run(p.name, func(t *testing.T) {
			l := newLatencyEnv(t, 12)
			op := p.prepare(t, l)
			l.gh = testkit.ServeClient(t, l.fake, ghclient.Options{})
			if _, _, err := l.gh.Repositories.Get(context.Background(), owner, name); err != nil {
				t.Fatal(err) // the installation token, outside the measure
			}
			repo := l.cold(0)
			l.fake.SetLatency(30*time.Millisecond, 10*time.Millisecond, 3)
			l.fake.InjectFault(githubfake.Fault{Route: routeTree, RateLimit: githubfake.SecondaryLimit, RetryAfter: "1", Times: 1})
			start := time.Now()
			err := op(context.Background(), repo)
			l.fake.SetLatency(0, 0, 0)
			if err != nil {
				t.Fatalf("%s across a one-second secondary limit: %v", p.name, err)
			}
			for path, n := range l.fake.RequestsWhileLimitedByPath() {
				if n > 1 {
					t.Errorf("%s sent %d times while the limit held, want at most once", path, n)
				}
			}
			if n := l.fake.RequestsWhileLimited(); n > storage.DefaultReadConcurrency-1 {
				t.Errorf("%d requests sent while the limit held, more than the %d others that can be in flight", n, storage.DefaultReadConcurrency-1)
			}
			t.Logf("%v elapsed, %d requests while limited", time.Since(start), l.fake.RequestsWhileLimited())
		})
	}
}
