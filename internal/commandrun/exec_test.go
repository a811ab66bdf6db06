package commandrun

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/policy"
)

// fakeGitHub is the executor's GitHub in memory. The check and promotion services' calls are left to the
// embedded nil interface: the fake services below never make them.
type fakeGitHub struct {
	GitHub
	cfg         *repoconfig.Config
	cfgErr      error
	configReads int
	permission  map[string]repoconfig.Permission
	permErr     error
	pr          *github.PullRequest
	reactions   []string
	comments    []string
}

func (f *fakeGitHub) Config(context.Context, string, string, string) (*repoconfig.Config, error) {
	f.configReads++
	return f.cfg, f.cfgErr
}

func (f *fakeGitHub) ReactToComment(_ context.Context, _, _ string, _ int64, content string) error {
	f.reactions = append(f.reactions, content)
	return nil
}

func (f *fakeGitHub) CreateComment(_ context.Context, _, _ string, _ int, body string) error {
	f.comments = append(f.comments, body)
	return nil
}

func (f *fakeGitHub) DeleteComment(context.Context, string, string, int64) error { return nil }

func (f *fakeGitHub) PullRequest(context.Context, string, string, int) (*github.PullRequest, error) {
	if f.pr == nil {
		return nil, errors.New("no such PR")
	}
	return f.pr, nil
}

func (f *fakeGitHub) Permission(_ context.Context, _, _, user string) (repoconfig.Permission, error) {
	if f.permErr != nil {
		return "", f.permErr
	}
	if p, ok := f.permission[user]; ok {
		return p, nil
	}
	return "none", nil
}

func (f *fakeGitHub) GoGitHub() *github.Client { return nil }

// fakeChecks records the evaluations asked for; the change of every PR is apm@8.1.0 in the PR's channel.
type fakeChecks struct {
	checked int
}

func (f *fakeChecks) CheckPR(context.Context, prcheck.GitHub, repoctx.Repo, *github.PullRequest) (prcheck.Outcome, error) {
	f.checked++
	return prcheck.Outcome{Channel: "staging", Conclusion: policy.ConclusionSuccess}, nil
}

func (f *fakeChecks) ChangeOf(_ context.Context, _ prcheck.GitHub, repo repoctx.Repo, pr *github.PullRequest) (prcheck.Change, bool, error) {
	ch, ok := repo.Config.ChannelByBranch(pr.GetBase().GetRef())
	if !ok {
		return prcheck.Change{}, false, nil
	}
	return prcheck.Change{Channel: ch, Input: policy.Input{Changes: []policy.Change{
		{Package: "apm", Version: "8.1.0", Kind: policy.Modified, Tree: "1234567890abcdef1234567890abcdef12345678"},
	}}}, true, nil
}

// fakePromotions resolves the target as the promotion service does for a version in snapshot (the channel
// above it, unless named) and asks Authorize before writing, as the real one does.
type fakePromotions struct {
	promoted []string
}

func (f *fakePromotions) Promote(_ context.Context, _ promotion.Repo, req promotion.PromoteRequest) (promotion.PromoteResult, error) {
	target := req.Target
	if target == "" {
		target = "staging"
	}
	if err := req.Authorize(target); err != nil {
		return promotion.PromoteResult{Target: target}, &promotion.NotAuthorizedError{Target: target, Reason: err.Error()}
	}
	f.promoted = append(f.promoted, target)
	return promotion.PromoteResult{
		PR: promotion.PRRef{Number: 7, Branch: "storagebot/promote/" + target + "/x"}, Target: target, Source: "snapshot",
	}, nil
}

func (f *fakePromotions) AddedBy(context.Context, promotion.Repo, *github.PullRequest) ([]commandparse.VersionRef, error) {
	return []commandparse.VersionRef{{Package: "apm", Version: "8.1.0"}}, nil
}

func commentEvent(user, body string, isPR bool) *github.IssueCommentEvent {
	issue := &github.Issue{Number: github.Int(5)}
	if isPR {
		issue.PullRequestLinks = &github.PullRequestLinks{URL: github.String("https://example/pulls/5")}
	}
	return &github.IssueCommentEvent{
		Action: github.String("created"),
		Repo: &github.Repository{Name: github.String("package-storage"), DefaultBranch: github.String("main"),
			Owner: &github.User{Login: github.String("storage-org")}},
		Issue:   issue,
		Comment: &github.IssueComment{ID: github.Int64(42), Body: github.String(body), User: &github.User{Login: github.String(user), Type: github.String("User")}},
	}
}

func prInto(base string) *github.PullRequest {
	return &github.PullRequest{Number: github.Int(5), State: github.String("open"),
		Base: &github.PullRequestBranch{Ref: github.String(base)}, Head: &github.PullRequestBranch{SHA: github.String("abcdef1234567890")}}
}

// TestPermissionGating: every command is gated by the commenter's repository permission per command and
// target channel (built-in defaults: /recheck triage, /promote to staging write and to production maintain,
// /allow maintain), a refusal names the permission needed and the one held, and nothing is written.
func TestPermissionGating(t *testing.T) {
	tests := []struct {
		name       string
		permission repoconfig.Permission
		body       string
		base       string // the PR's base branch
		want       string // in the reply
		promoted   []string
		checked    int
	}{
		{"recheck needs triage", repoconfig.Read, "/recheck", "staging", "`/recheck` needs the `triage` repository permission; @u has `read`", nil, 0},
		{"recheck with triage", repoconfig.Triage, "/recheck", "staging", "✅ `storage-policy` ran again on abcdef1", nil, 1},
		{"promote to staging needs write", repoconfig.Triage, "/promote apm@8.1.0", "snapshot", "promoting to `staging` needs the `write` repository permission; @u has `triage`", nil, 0},
		{"promote to staging with write", repoconfig.Write, "/promote apm@8.1.0", "snapshot", "✅ Opened promotion PR #7 to `staging`", []string{"staging"}, 0},
		{"promote to production needs maintain", repoconfig.Write, "/promote apm@8.1.0 to production", "snapshot", "promoting to `production` needs the `maintain` repository permission; @u has `write`", nil, 0},
		{"promote to production with maintain", repoconfig.Maintain, "/promote apm@8.1.0 to production", "snapshot", "✅ Opened promotion PR #7 to `production`", []string{"production"}, 0},
		{"promote by a non-collaborator", "none", "/promote apm@8.1.0", "snapshot", "@u has `none`", nil, 0},
		{"allow needs maintain", repoconfig.Write, "/allow overwrite apm@8.1.0 reviewed", "staging", "`/allow` needs the `maintain` repository permission; @u has `write`", nil, 0},
		{"allow in staging with maintain", repoconfig.Maintain, "/allow overwrite apm@8.1.0 reviewed", "staging", "✅ Allowed `overwrite` for `apm@8.1.0` (tree 1234567)", nil, 1},
		{"allow in production, even for admin", repoconfig.Admin, "/allow overwrite apm@8.1.0 reviewed", "production", "`overwrite` takes no exceptions in `production`", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gh := &fakeGitHub{cfg: repoconfig.Default(), permission: map[string]repoconfig.Permission{"u": tc.permission}, pr: prInto(tc.base)}
			checks, promotions := &fakeChecks{}, &fakePromotions{}
			e := &Executor{Checks: checks, Promotions: promotions}
			if err := e.Handle(context.Background(), gh, commentEvent("u", tc.body, true)); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if len(gh.comments) != 1 {
				t.Fatalf("replies = %q, want one", gh.comments)
			}
			if reply := gh.comments[0]; !strings.HasPrefix(reply, "> "+tc.body+"\n\n") || !strings.Contains(reply, tc.want) {
				t.Errorf("reply = %q, want it to quote %q and say %q", reply, tc.body, tc.want)
			}
			if strings.Join(promotions.promoted, ",") != strings.Join(tc.promoted, ",") {
				t.Errorf("promoted to %v, want %v", promotions.promoted, tc.promoted)
			}
			if checks.checked != tc.checked {
				t.Errorf("check ran %d times, want %d", checks.checked, tc.checked)
			}
			if len(gh.reactions) != 1 || gh.reactions[0] != "eyes" {
				t.Errorf("reactions = %v, want one 👀", gh.reactions)
			}
			if gh.configReads != 1 {
				t.Errorf("configuration read %d times, want once per comment", gh.configReads)
			}
		})
	}
}

// TestCommentsThatRunNothing: bots, edits and comments without commands run nothing and read nothing; an
// invalid configuration answers once and runs nothing.
func TestCommentsThatRunNothing(t *testing.T) {
	edited := commentEvent("u", "/recheck", true)
	edited.Action = github.String("edited")
	tests := []struct {
		name    string
		ev      *github.IssueCommentEvent
		cfgErr  error
		replies int
		want    string
	}{
		{"edited comment", edited, nil, 0, ""},
		{"bot author", commentEvent("storagebot[bot]", "/recheck", true), nil, 0, ""},
		{"no command", commentEvent("u", "looks good", true), nil, 0, ""},
		{"invalid configuration", commentEvent("u", "/recheck", true), &repoconfig.Error{Line: 3, Field: "channels", Msg: "bad"}, 1, "the repository configuration is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gh := &fakeGitHub{cfg: repoconfig.Default(), cfgErr: tc.cfgErr, permission: map[string]repoconfig.Permission{"u": repoconfig.Admin}, pr: prInto("staging")}
			checks := &fakeChecks{}
			e := &Executor{Checks: checks, Promotions: &fakePromotions{}}
			if err := e.Handle(context.Background(), gh, tc.ev); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if len(gh.comments) != tc.replies || (tc.replies > 0 && !strings.Contains(gh.comments[0], tc.want)) {
				t.Errorf("replies = %q, want %d saying %q", gh.comments, tc.replies, tc.want)
			}
			if checks.checked != 0 {
				t.Errorf("check ran %d times, want none", checks.checked)
			}
		})
	}
}

// TestGitHubFailingBeforeTheCommandsRunIsAnswered: when GitHub fails to give what every command needs (the
// configuration, the commenter's permission), nothing runs, the failure is returned (and logged), and the
// author still gets a reply saying so: neither GitHub nor the reconciler runs a comment's commands again.
func TestGitHubFailingBeforeTheCommandsRunIsAnswered(t *testing.T) {
	outage := errors.New("GET https://api.github.com/repos/storage-org/package-storage/collaborators/u/permission: 502 Bad Gateway")
	tests := []struct {
		name            string
		cfgErr, permErr error
		want            string
	}{
		{"configuration unreadable", outage, nil, "could not read the repository configuration from GitHub ("},
		{"permission unreadable", nil, outage, "could not read @u's repository permission from GitHub ("},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gh := &fakeGitHub{cfg: repoconfig.Default(), cfgErr: tc.cfgErr, permErr: tc.permErr, pr: prInto("snapshot")}
			promotions := &fakePromotions{}
			e := &Executor{Checks: &fakeChecks{}, Promotions: promotions}
			err := e.Handle(context.Background(), gh, commentEvent("u", "/promote apm@8.1.0", true))
			if !errors.Is(err, outage) {
				t.Errorf("Handle = %v, want the outage returned", err)
			}
			if len(gh.comments) != 1 || !strings.Contains(gh.comments[0], "❌ No command ran: storagebot "+tc.want) ||
				!strings.Contains(gh.comments[0], "502 Bad Gateway") || !strings.Contains(gh.comments[0], "comment the command again") {
				t.Errorf("replies = %q, want one saying %q and how to retry", gh.comments, tc.want)
			}
			if len(promotions.promoted) != 0 {
				t.Errorf("promoted %v while GitHub failed", promotions.promoted)
			}
		})
	}
}
