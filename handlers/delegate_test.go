package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/commandrun"
	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/policy"
)

// fakeGitHub is the handlers' GitHub in memory; calls the handlers do not make themselves are left to the
// embedded nil interface (the fake services below make none).
type fakeGitHub struct {
	commandrun.GitHub
	configReads int
	open        []*github.PullRequest
	prs         map[int]*github.PullRequest
}

func (f *fakeGitHub) Config(context.Context, string, string, string) (*repoconfig.Config, error) {
	f.configReads++
	return repoconfig.Default(), nil
}

func (f *fakeGitHub) OpenPullRequests(context.Context, string, string, string) ([]*github.PullRequest, error) {
	return f.open, nil
}

func (f *fakeGitHub) PullRequest(_ context.Context, _, _ string, n int) (*github.PullRequest, error) {
	if pr, ok := f.prs[n]; ok {
		return pr, nil
	}
	return nil, fmt.Errorf("no PR #%d", n)
}

func (f *fakeGitHub) GoGitHub() *github.Client { return nil }

// calls records what the handlers delegated, in order.
type calls struct {
	log        []string
	conclusion string
}

func (c *calls) CheckPR(_ context.Context, _ prcheck.GitHub, repo repoctx.Repo, pr *github.PullRequest) (prcheck.Outcome, error) {
	c.log = append(c.log, fmt.Sprintf("check #%d (config loaded: %v)", pr.GetNumber(), repo.Config != nil))
	return prcheck.Outcome{Conclusion: c.conclusion}, nil
}

func (c *calls) HandleMerged(_ context.Context, _ promotion.Repo, pr *github.PullRequest) error {
	c.log = append(c.log, fmt.Sprintf("follow-up #%d", pr.GetNumber()))
	return nil
}

func (c *calls) AutoMergeRemoval(_ context.Context, _ promotion.Repo, number int, headRef string) error {
	c.log = append(c.log, fmt.Sprintf("auto-merge #%d %s", number, headRef))
	return nil
}

func (c *calls) Handle(_ context.Context, _ commandrun.GitHub, ev *github.IssueCommentEvent) error {
	c.log = append(c.log, "commands "+ev.GetComment().GetBody())
	return nil
}

type fixedBot struct{}

func (fixedBot) Login(context.Context) (string, error) { return "storagebot[bot]", nil }

var testRepo = &github.Repository{ID: github.Int64(1), Name: github.String("package-storage"), FullName: github.String("o/package-storage"),
	DefaultBranch: github.String("main"), Owner: &github.User{Login: github.String("o")}}

func pr(number int, base, headRef, headSHA string, fork bool) *github.PullRequest {
	head := testRepo
	if fork {
		head = &github.Repository{ID: github.Int64(2), FullName: github.String("m/package-storage")}
	}
	return &github.PullRequest{Number: github.Int(number), State: github.String("open"), Title: github.String("t"),
		Base: &github.PullRequestBranch{Ref: github.String(base), Repo: testRepo},
		Head: &github.PullRequestBranch{Ref: github.String(headRef), SHA: github.String(headSHA), Repo: head}}
}

func merged(p *github.PullRequest) *github.PullRequest {
	p.Merged, p.State = github.Bool(true), github.String("closed")
	return p
}

// TestHandlersDelegate: each handler decodes its event, decides which service it concerns, builds the
// repository context once, and delegates; nothing else.
func TestHandlersDelegate(t *testing.T) {
	removal := pr(3, "snapshot", promotion.RemoveBranchPrefix+"snapshot/pr-2", "aaa", false)
	tests := []struct {
		name        string
		event       string
		payload     any
		conclusion  string
		gh          *fakeGitHub
		want        []string
		configReads int
	}{
		{"opened: check", "pull_request", github.PullRequestEvent{Action: github.String("opened"), Number: github.Int(1), Repo: testRepo, PullRequest: pr(1, "snapshot", "topic", "aaa", false)},
			policy.ConclusionFailure, &fakeGitHub{}, []string{"check #1 (config loaded: true)"}, 1},
		{"removal PR passes: check, then auto-merge", "pull_request", github.PullRequestEvent{Action: github.String("synchronize"), Number: github.Int(3), Repo: testRepo, PullRequest: removal},
			policy.ConclusionSuccess, &fakeGitHub{}, []string{"check #3 (config loaded: true)", "auto-merge #3 " + removal.GetHead().GetRef()}, 1},
		{"fork PR passes: check only", "pull_request", github.PullRequestEvent{Action: github.String("opened"), Number: github.Int(4), Repo: testRepo, PullRequest: pr(4, "snapshot", "topic", "aaa", true)},
			policy.ConclusionSuccess, &fakeGitHub{}, []string{"check #4 (config loaded: true)"}, 1},
		{"body edit: nothing", "pull_request", github.PullRequestEvent{Action: github.String("edited"), Number: github.Int(1), Repo: testRepo, PullRequest: pr(1, "snapshot", "topic", "aaa", false),
			Changes: &github.EditChange{Body: &github.EditBody{From: github.String("old")}}}, "", &fakeGitHub{}, nil, 0},
		{"title edit: check", "pull_request", github.PullRequestEvent{Action: github.String("edited"), Number: github.Int(1), Repo: testRepo, PullRequest: pr(1, "snapshot", "topic", "aaa", false),
			Changes: &github.EditChange{Title: &github.EditTitle{From: github.String("old")}}}, "", &fakeGitHub{}, []string{"check #1 (config loaded: true)"}, 1},
		{"merged: follow-up", "pull_request", github.PullRequestEvent{Action: github.String("closed"), Number: github.Int(2), Repo: testRepo, PullRequest: merged(pr(2, "staging", "topic", "aaa", false))},
			"", &fakeGitHub{}, []string{"follow-up #2"}, 1},
		{"closed unmerged: nothing", "pull_request", github.PullRequestEvent{Action: github.String("closed"), Number: github.Int(2), Repo: testRepo, PullRequest: pr(2, "staging", "topic", "aaa", false)},
			"", &fakeGitHub{}, nil, 0},
		{"re-run of a fork PR's run: found by head SHA", "check_run", github.CheckRunEvent{Action: github.String("rerequested"), Repo: testRepo,
			CheckRun: &github.CheckRun{Name: github.String(policy.CheckName), HeadSHA: github.String("bbb")}},
			"", &fakeGitHub{open: []*github.PullRequest{pr(5, "snapshot", "x", "aaa", true), pr(6, "snapshot", "y", "bbb", true)},
				prs: map[int]*github.PullRequest{6: pr(6, "snapshot", "y", "bbb", true)}}, []string{"check #6 (config loaded: true)"}, 1},
		{"re-run of another check: nothing", "check_run", github.CheckRunEvent{Action: github.String("rerequested"), Repo: testRepo,
			CheckRun: &github.CheckRun{Name: github.String("ci"), HeadSHA: github.String("bbb")}}, "", &fakeGitHub{}, nil, 0},
		{"suite completed: auto-merge its PRs", "check_suite", github.CheckSuiteEvent{Action: github.String("completed"), Repo: testRepo,
			CheckSuite: &github.CheckSuite{PullRequests: []*github.PullRequest{removal}}}, "", &fakeGitHub{}, []string{"auto-merge #3 " + removal.GetHead().GetRef()}, 1},
		{"comment created: commands", "issue_comment", github.IssueCommentEvent{Action: github.String("created"), Repo: testRepo,
			Issue: &github.Issue{Number: github.Int(1)}, Comment: &github.IssueComment{Body: github.String("/help")}}, "", &fakeGitHub{}, []string{"commands /help"}, 0},
		{"comment edited: nothing", "issue_comment", github.IssueCommentEvent{Action: github.String("edited"), Repo: testRepo,
			Issue: &github.Issue{Number: github.Int(1)}, Comment: &github.IssueComment{Body: github.String("/help"), User: &github.User{Login: github.String("u")}},
			Sender: &github.User{Login: github.String("u")}}, "", &fakeGitHub{}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &calls{conclusion: tc.conclusion}
			app := &App{
				gitHub:     func(int64) (GitHub, error) { return tc.gh, nil },
				checks:     c,
				promotions: c,
				commands:   c,
				bot:        fixedBot{},
			}
			payload, err := json.Marshal(tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			var handled bool
			for _, h := range app.Handlers() {
				for _, ev := range h.Handles() {
					if ev == tc.event {
						handled = true
						if err := h.Handle(context.Background(), tc.event, "delivery", payload); err != nil {
							t.Fatalf("Handle: %v", err)
						}
					}
				}
			}
			if !handled {
				t.Fatalf("no handler for %s", tc.event)
			}
			if diff := cmp.Diff(tc.want, c.log); diff != "" {
				t.Errorf("delegated (-want +got):\n%s", diff)
			}
			if tc.gh.configReads != tc.configReads {
				t.Errorf("configuration read %d times, want %d", tc.gh.configReads, tc.configReads)
			}
		})
	}
}
