package prcheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// fakeGitHub is the check service's GitHub in memory: it records the runs written, and fails where a test
// says GitHub fails.
type fakeGitHub struct {
	reader      storage.Reader
	commentsErr error
	created     []github.CreateCheckRunOptions
	updates     []github.UpdateCheckRunOptions
	titles      []string
}

func (f *fakeGitHub) GitData(string, string) storage.Reader { return f.reader }

func (f *fakeGitHub) CreateCheckRun(_ context.Context, _, _ string, opts github.CreateCheckRunOptions) (*github.CheckRun, error) {
	f.created = append(f.created, opts)
	return &github.CheckRun{ID: github.Int64(int64(len(f.created)))}, nil
}

func (f *fakeGitHub) UpdateCheckRun(_ context.Context, _, _ string, _ int64, opts github.UpdateCheckRunOptions) error {
	f.updates = append(f.updates, opts)
	return nil
}

func (f *fakeGitHub) CheckRuns(context.Context, string, string, string, github.ListCheckRunsOptions) ([]*github.CheckRun, error) {
	return nil, nil
}

func (f *fakeGitHub) IssueComments(context.Context, string, string, int) ([]*github.IssueComment, error) {
	return nil, f.commentsErr
}

func (f *fakeGitHub) EditTitle(_ context.Context, _, _ string, _ int, title string) error {
	f.titles = append(f.titles, title)
	return nil
}

// failingReader resolves revisions but fails every tree read: GitHub going away in the middle of an
// evaluation, after the run was created.
type failingReader struct{}

func (failingReader) ResolveRevision(_ context.Context, rev string) (storage.Commit, error) {
	return storage.Commit{SHA: rev + "-commit", TreeSHA: rev + "-tree"}, nil
}
func (failingReader) MergeBase(_ context.Context, a, _ string) (string, error) { return a, nil }
func (failingReader) Tree(context.Context, string, bool) ([]storage.TreeEntry, error) {
	return nil, errors.New("GET /git/trees: 502 Bad Gateway")
}
func (failingReader) Blob(context.Context, string) ([]byte, error) {
	return nil, errors.New("GET /git/blobs: 502 Bad Gateway")
}

// TestCouldNotEvaluate: when GitHub fails once the run exists, the run is completed as a failure that says
// it could not evaluate and how to retry (never left spinning), and the caller gets the error.
func TestCouldNotEvaluate(t *testing.T) {
	tests := []struct {
		name     string
		gh       *fakeGitHub
		botLogin func(context.Context) (string, error)
		want     string
	}{
		{"git data fails", &fakeGitHub{reader: failingReader{}}, okBot, "502 Bad Gateway"},
		{"comments fail", &fakeGitHub{reader: failingReader{}, commentsErr: errors.New("GET /issues/5/comments: 500")}, okBot, "GET /issues/5/comments: 500"},
		{"bot login unknown", &fakeGitHub{reader: failingReader{}}, func(context.Context) (string, error) { return "", errors.New("GET /app: 401") }, "GET /app: 401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := &Service{BotLogin: tc.botLogin, Now: func() time.Time { return time.Unix(1700000000, 0) }}
			repo := repoctx.Repo{Owner: "o", Name: "r", DefaultBranch: "main", Config: repoconfig.Default()}
			out, err := svc.CheckPR(context.Background(), tc.gh, repo, testPR("staging"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one saying %q", err, tc.want)
			}
			if len(tc.gh.created) != 1 || len(tc.gh.updates) != 1 {
				t.Fatalf("runs created %d, updates %d; want one run, completed once", len(tc.gh.created), len(tc.gh.updates))
			}
			u := tc.gh.updates[0]
			if u.GetStatus() != "completed" || u.GetConclusion() != policy.ConclusionFailure {
				t.Errorf("run completed as %q/%q, want completed/failure", u.GetStatus(), u.GetConclusion())
			}
			if got := u.Output.GetTitle(); got != "storagebot could not evaluate this change" {
				t.Errorf("title = %q", got)
			}
			if s := u.Output.GetSummary(); !strings.Contains(s, tc.want) || !strings.Contains(s, "/recheck") {
				t.Errorf("summary = %q, want the cause and how to retry", s)
			}
			if out.CheckRunID != 1 || len(tc.gh.titles) != 0 {
				t.Errorf("outcome %+v, titles edited %v; want the run's ID and no other write", out, tc.gh.titles)
			}
		})
	}
}

// TestInvalidConfigFailsWithoutEvaluating: an invalid configuration (in the repository context) fails the
// check with where to fix it, and reads no git data.
func TestInvalidConfigFailsWithoutEvaluating(t *testing.T) {
	gh := &fakeGitHub{reader: nil}
	svc := &Service{BotLogin: okBot}
	repo := repoctx.Repo{Owner: "o", Name: "r", ConfigErr: &repoconfig.Error{File: repoconfig.Path, Line: 4, Field: "channels", Msg: "bad"}}
	out, err := svc.CheckPR(context.Background(), gh, repo, testPR("staging"))
	if err != nil {
		t.Fatal(err)
	}
	if out.Conclusion != policy.ConclusionFailure || len(gh.updates) != 1 || !strings.Contains(gh.updates[0].Output.GetSummary(), repoconfig.Path) {
		t.Errorf("outcome %+v, updates %+v; want a failure naming %s", out, gh.updates, repoconfig.Path)
	}
	if out, err := svc.CheckPR(context.Background(), gh, repo, testPR("feature")); err != nil || !out.Skipped {
		t.Errorf("PR into a branch that is no default channel: %+v, %v; want skipped", out, err)
	}
}

func okBot(context.Context) (string, error) { return "storagebot[bot]", nil }

func testPR(base string) *github.PullRequest {
	repo := &github.Repository{ID: github.Int64(1), FullName: github.String("o/r")}
	return &github.PullRequest{
		Number: github.Int(5), Title: github.String("[" + base + "] change"),
		Base: &github.PullRequestBranch{Ref: github.String(base), Repo: repo},
		Head: &github.PullRequestBranch{Ref: github.String("topic"), SHA: github.String("headsha"), Repo: repo},
	}
}
