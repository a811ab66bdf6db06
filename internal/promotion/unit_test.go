package promotion

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/botcomment"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/policy"
)

// The tests in this file run the promotion service against memGitHub, in memory: the key rules (exactly one
// follow-up, one note, the auto-merge gate, GitHub's limits) in milliseconds. The tests against the HTTP
// fake (env) keep the end-to-end view through go-github.

// memEnv is a storage repository with the three default channels in memory, and a Service.
type memEnv struct {
	gh   *memGitHub
	svc  *Service
	repo Repo
}

func newMemEnv(t *testing.T) *memEnv {
	t.Helper()
	gh := newMemGitHub(owner, name)
	head := gh.files(t, "snapshot", map[string]string{"README.md": "package storage\n"})
	gh.refs["staging"], gh.refs["production"] = head, head
	cfg := repoconfig.Default()
	cfg.AutoMergeRemovals = true
	return &memEnv{
		gh: gh,
		// A post without an answer is looked for until Settle has passed (botcomment): short here.
		svc: &Service{Seal: testSeal, AppID: gh.appID, BotLogin: func(context.Context) (string, error) { return gh.bot, nil },
			Notes: botcomment.Writer{Settle: 20 * time.Millisecond}},
		repo: Repo{Client: gh, Owner: owner, Name: name, Config: cfg},
	}
}

// put commits versions ("pkg@version") to a channel branch; salt makes two copies differ.
func (e *memEnv) put(t *testing.T, branch, salt string, list ...string) {
	t.Helper()
	files := map[string]string{}
	for _, ref := range list {
		pkg, v, _ := strings.Cut(ref, "@")
		for p, f := range version(pkg, v, 2, salt) {
			files[p] = string(f.Content)
		}
	}
	e.gh.files(t, branch, files)
}

// promoteAndMerge promotes versions from snapshot to staging and squash-merges the PR; it returns the merged
// PR as a handler reads it.
func (e *memEnv) promoteAndMerge(t *testing.T, list ...string) *github.PullRequest {
	t.Helper()
	ctx := context.Background()
	res, err := e.svc.Promote(ctx, e.repo, PromoteRequest{Versions: refs(list...), Target: "staging"})
	if err != nil || len(res.Refusals) > 0 {
		t.Fatalf("Promote: %v %v", err, res.Refusals)
	}
	pr, err := e.gh.PullRequest(ctx, owner, name, res.PR.Number)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.gh.MergePullRequest(ctx, owner, name, res.PR.Number, pr.GetHead().GetSHA(), "squash"); err != nil {
		t.Fatalf("merge #%d: %v", res.PR.Number, err)
	}
	if pr, err = e.gh.PullRequest(ctx, owner, name, res.PR.Number); err != nil {
		t.Fatal(err)
	}
	return pr
}

// removalPRs lists the removal PRs into branch, open or not.
func (e *memEnv) removalPRs(branch string) []*github.PullRequest {
	e.gh.mu.Lock()
	defer e.gh.mu.Unlock()
	var out []*github.PullRequest
	for _, pr := range e.gh.prs {
		if strings.HasPrefix(pr.GetHead().GetRef(), RemoveBranchPrefix) && pr.GetBase().GetRef() == branch {
			out = append(out, e.gh.view(pr, false))
		}
	}
	return out
}

// notes lists the IDs of the bot's follow-up notes on PR number.
func (e *memEnv) notes(t *testing.T, number int) []int64 {
	t.Helper()
	marked, err := noteThread{repo: e.repo, number: number, bot: e.gh.bot, key: e.svc.markerKey(e.repo)}.Marked(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(marked))
	for i, c := range marked {
		ids[i] = c.ID
	}
	return ids
}

// versionIn returns the tree of a version on a branch, "" when the branch does not hold it.
func (e *memEnv) versionIn(t *testing.T, branch, ref string) string {
	t.Helper()
	c, err := e.gh.GitData(owner, name).ResolveRevision(context.Background(), branch)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := versionTree(context.Background(), e.gh.GitData(owner, name), c.TreeSHA, refs(ref)[0])
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestUnitFollowUpExactlyOnce: one removal PR and one note per merged promotion, whatever is delivered again,
// restarted, left half done by a crash or answered with a lost response.
func TestUnitFollowUpExactlyOnce(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// before runs before the first HandleMerged; wantErr says the first call fails.
		before  func(t *testing.T, e *memEnv, merged *github.PullRequest)
		wantErr bool
	}{
		{name: "redelivered and restarted"},
		{name: "branch left by a crashed attempt holds the lower channel unchanged", before: func(t *testing.T, e *memEnv, merged *github.PullRequest) {
			branch := fmt.Sprintf("%ssnapshot/pr-%d", RemoveBranchPrefix, merged.GetNumber())
			if err := e.gh.CreateBranch(ctx, owner, name, branch, e.gh.refs["snapshot"]); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "the PR was opened but its answer lost", wantErr: true, before: func(t *testing.T, e *memEnv, _ *github.PullRequest) {
			e.gh.fail("CreatePullRequest", 1, true, http.StatusBadGateway)
		}},
		{name: "the note was posted but its answer lost (found again, no error)", before: func(t *testing.T, e *memEnv, _ *github.PullRequest) {
			e.gh.fail("CreateComment", 1, true, http.StatusBadGateway)
		}},
		{name: "GitHub failed the label", wantErr: true, before: func(t *testing.T, e *memEnv, _ *github.PullRequest) {
			e.gh.fail("AddLabels", 1, false, http.StatusBadGateway)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newMemEnv(t)
			e.put(t, "snapshot", "", "foo@1.2.3")
			merged := e.promoteAndMerge(t, "foo@1.2.3")
			if tc.before != nil {
				tc.before(t, e, merged)
			}
			err := e.svc.HandleMerged(ctx, e.repo, merged)
			if (err != nil) != tc.wantErr {
				t.Fatalf("first HandleMerged: %v, want error %v", err, tc.wantErr)
			}
			restarted := &Service{Seal: testSeal, AppID: e.gh.appID, BotLogin: e.svc.BotLogin}
			for i, svc := range []*Service{e.svc, e.svc, restarted} {
				if err := svc.HandleMerged(ctx, e.repo, merged); err != nil {
					t.Fatalf("HandleMerged again (%d): %v", i+1, err)
				}
			}
			prs := e.removalPRs("snapshot")
			if len(prs) != 1 {
				t.Fatalf("%d removal PRs into snapshot, want 1", len(prs))
			}
			pr := prs[0]
			if want := fmt.Sprintf("%ssnapshot/pr-%d", RemoveBranchPrefix, merged.GetNumber()); pr.GetHead().GetRef() != want || pr.GetState() != "open" {
				t.Errorf("removal PR from %s (%s), want open from %s", pr.GetHead().GetRef(), pr.GetState(), want)
			}
			if len(pr.Labels) != 1 || pr.Labels[0].GetName() != RemovalLabel {
				t.Errorf("labels = %v, want [%s]", pr.Labels, RemovalLabel)
			}
			if m, ok := ParseMarker(ctx, pr, e.svc.markerKey(e.repo)); !ok || m.Commit != pr.GetHead().GetSHA() || len(m.Versions) != 1 {
				t.Errorf("marker = %+v (%v), want the head commit %s and one version", m, ok, pr.GetHead().GetSHA())
			}
			if tree := e.versionIn(t, pr.GetHead().GetRef(), "foo@1.2.3"); tree != "" {
				t.Errorf("the removal branch still holds foo@1.2.3 (tree %s)", tree)
			}
			if n := len(e.notes(t, merged.GetNumber())); n != 1 {
				t.Errorf("%d follow-up notes on #%d, want 1", n, merged.GetNumber())
			}
		})
	}
}

// TestUnitNoteFollowUp: the note is recognised among the bot's comments only, posted once, and a duplicate
// (two replicas, or a post whose answer was lost) is deleted, the earliest kept.
func TestUnitNoteFollowUp(t *testing.T) {
	ctx := context.Background()
	const merged = 7
	tests := []struct {
		name      string
		setup     func(e *memEnv, note string)
		botErr    error
		wantErr   bool
		wantNotes int
		// wantKept is the index in the setup's comments of the note that must stay; -1 for one this call posts.
		wantKept int
		wantLeft int // comments left on the PR in all
	}{
		{name: "posted once", wantNotes: 1, wantKept: -1, wantLeft: 1},
		{name: "posted already", setup: func(e *memEnv, note string) { e.gh.comment(merged, e.gh.bot, note) },
			wantNotes: 1, wantKept: 0, wantLeft: 1},
		{name: "two replicas posted: the later goes", setup: func(e *memEnv, note string) {
			e.gh.comment(merged, e.gh.bot, note)
			e.gh.comment(merged, e.gh.bot, note)
		}, wantNotes: 1, wantKept: 0, wantLeft: 1},
		{name: "a forged note by another user is no note", setup: func(e *memEnv, note string) { e.gh.comment(merged, "mallory", note) },
			wantNotes: 1, wantKept: -1, wantLeft: 2},
		{name: "a lost answer: posted, then found and kept", setup: func(e *memEnv, _ string) { e.gh.fail("CreateComment", 1, true, http.StatusBadGateway) },
			wantNotes: 1, wantKept: -1, wantLeft: 1},
		{name: "a 502 not applied: posted again once the settle time passed", setup: func(e *memEnv, _ string) { e.gh.fail("CreateComment", 1, false, http.StatusBadGateway) },
			wantNotes: 1, wantKept: -1, wantLeft: 1},
		{name: "GitHub refused the post", setup: func(e *memEnv, _ string) { e.gh.fail("CreateComment", 1, false, http.StatusUnprocessableEntity) },
			wantErr: true, wantNotes: 0, wantLeft: 0},
		{name: "the bot login is unknown: nothing posted", botErr: errors.New("GET /app: 502"), wantErr: true, wantNotes: 0, wantLeft: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newMemEnv(t)
			if tc.botErr != nil {
				e.svc.BotLogin = func(context.Context) (string, error) { return "", tc.botErr }
			}
			note := FollowUpNote([]FollowUpResult{{Channel: "snapshot", PR: PRRef{Number: 99}, Removed: refs("foo@1.2.3")}}, merged, e.svc.markerKey(e.repo))
			if tc.setup != nil {
				tc.setup(e, note)
			}
			before := append([]int64(nil), e.notes(t, merged)...)
			err := e.svc.NoteFollowUp(ctx, e.repo, merged, note)
			if (err != nil) != tc.wantErr {
				t.Fatalf("NoteFollowUp: %v, want error %v", err, tc.wantErr)
			}
			got := e.notes(t, merged)
			if len(got) != tc.wantNotes {
				t.Fatalf("notes = %v, want %d", got, tc.wantNotes)
			}
			if tc.wantNotes == 1 && tc.wantKept >= 0 && got[0] != before[tc.wantKept] {
				t.Errorf("kept note %d, want the earliest %d", got[0], before[tc.wantKept])
			}
			if n := len(e.gh.comments[merged]); n != tc.wantLeft {
				t.Errorf("%d comments on #%d, want %d", n, merged, tc.wantLeft)
			}
			if !tc.wantErr {
				if err := e.svc.NoteFollowUp(ctx, e.repo, merged, note); err != nil || len(e.notes(t, merged)) != 1 {
					t.Errorf("again: %v, %d notes, want one note", err, len(e.notes(t, merged)))
				}
			}
		})
	}
}

// TestUnitAutoMergeGate: a removal PR merges only when its head is the bot's commit, this App's newest
// storage-policy run passed, nothing else failed and a higher channel still holds every removed copy.
func TestUnitAutoMergeGate(t *testing.T) {
	ctx := context.Background()
	const other = 7 // another App's ID
	tests := []struct {
		name       string
		setup      func(t *testing.T, e *memEnv, pr *github.PullRequest)
		wantMerged bool
		wantReason string
	}{
		{name: "everything passed", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, e.gh.appID, "success")
		}, wantMerged: true, wantReason: "merged"},
		{name: "auto-merge is off", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, e.gh.appID, "success")
			cfg := *e.repo.Config
			cfg.AutoMergeRemovals = false
			e.repo.Config = &cfg
		}, wantReason: "auto_merge_removals is off"},
		{name: "no policy run yet", wantReason: "waiting for the " + policy.CheckName + " check"},
		{name: "only another App's policy run passed", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, other, "success")
		}, wantReason: "waiting for the " + policy.CheckName + " check"},
		{name: "this App's newest run failed", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, e.gh.appID, "success")
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, e.gh.appID, "failure")
		}, wantReason: "concluded failure"},
		{name: "another App's policy run failed", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, e.gh.appID, "success")
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, other, "failure")
		}, wantReason: "of another App"},
		{name: "another check failed", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, e.gh.appID, "success")
			e.gh.checkRun(pr.GetHead().GetSHA(), "ci", other, "timed_out")
		}, wantReason: `check "ci" concluded timed_out`},
		{name: "a commit status failed", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, e.gh.appID, "success")
			e.gh.statuses[pr.GetHead().GetSHA()] = []*github.RepoStatus{{Context: github.String("jenkins"), State: github.String("error")}}
		}, wantReason: `status "jenkins" is error`},
		{name: "someone pushed to the removal branch", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			head := e.gh.files(t, pr.GetHead().GetRef(), map[string]string{"NOTES.md": "mine\n"})
			e.gh.checkRun(head, policy.CheckName, e.gh.appID, "success")
		}, wantReason: "someone pushed"},
		{name: "the higher copy changed since", setup: func(t *testing.T, e *memEnv, pr *github.PullRequest) {
			e.gh.checkRun(pr.GetHead().GetSHA(), policy.CheckName, e.gh.appID, "success")
			e.put(t, "staging", "edited in staging", "foo@1.2.3")
		}, wantReason: "not (or no longer identically) in a channel above snapshot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newMemEnv(t)
			e.put(t, "snapshot", "", "foo@1.2.3")
			merged := e.promoteAndMerge(t, "foo@1.2.3")
			if err := e.svc.HandleMerged(ctx, e.repo, merged); err != nil {
				t.Fatal(err)
			}
			removal := e.removalPRs("snapshot")[0]
			if tc.setup != nil {
				tc.setup(t, e, removal)
			}
			gotMerged, reason, err := e.svc.MergeRemovalIfReady(ctx, e.repo, removal.GetNumber())
			if err != nil {
				t.Fatalf("MergeRemovalIfReady: %v", err)
			}
			if gotMerged != tc.wantMerged || !strings.Contains(reason, tc.wantReason) {
				t.Errorf("merged=%v %q, want merged=%v and a reason containing %q", gotMerged, reason, tc.wantMerged, tc.wantReason)
			}
			after, _ := e.gh.PullRequest(ctx, owner, name, removal.GetNumber())
			if after.GetMerged() != tc.wantMerged {
				t.Errorf("PR merged = %v on GitHub, want %v", after.GetMerged(), tc.wantMerged)
			}
			if held := e.versionIn(t, "snapshot", "foo@1.2.3") != ""; held == tc.wantMerged {
				t.Errorf("snapshot holds foo@1.2.3: %v, want %v", held, !tc.wantMerged)
			}
		})
	}
}

// TestUnitPromoteLimits: what GitHub would refuse is never sent, and a refused request writes nothing.
func TestUnitPromoteLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("too many versions for one PR body: refused before any write", func(t *testing.T) {
		e := newMemEnv(t)
		var list []string
		for i := 0; i < 900; i++ {
			list = append(list, fmt.Sprintf("package_with_a_long_name_%03d@1.0.%d", i, i))
		}
		e.put(t, "snapshot", "", list...)
		res, err := e.svc.Promote(ctx, e.repo, PromoteRequest{Versions: refs(list...), Target: "staging"})
		if err != nil || len(res.Refusals) != len(list) || !strings.Contains(res.Refusals[0].Reason, "several commands of at most") {
			t.Fatalf("Promote: %v, %d refusals, want all %d refused with how many fit", err, len(res.Refusals), len(list))
		}
		if n := e.gh.writes(); n != 0 {
			t.Errorf("%d writes (%v), want none", n, e.gh.calls)
		}
	})
	t.Run("a long title is summarised to fit GitHub's 256 characters", func(t *testing.T) {
		e := newMemEnv(t)
		e.put(t, "snapshot", "", typicalVersions...)
		res, err := e.svc.Promote(ctx, e.repo, PromoteRequest{Versions: refs(typicalVersions...), Target: "staging"})
		if err != nil || len(res.Refusals) > 0 {
			t.Fatalf("Promote: %v %v", err, res.Refusals)
		}
		pr, _ := e.gh.PullRequest(ctx, owner, name, res.PR.Number)
		if n := utf8.RuneCountInString(pr.GetTitle()); n > MaxTitleLength || !strings.Contains(pr.GetTitle(), "and 13 more") {
			t.Errorf("title %q (%d characters), want a summary within %d", pr.GetTitle(), n, MaxTitleLength)
		}
	})
	t.Run("a PR GitHub refuses leaves no branch behind", func(t *testing.T) {
		e := newMemEnv(t)
		e.put(t, "snapshot", "", "foo@1.2.3")
		e.gh.fail("CreatePullRequest", 1, false, http.StatusUnprocessableEntity)
		if _, err := e.svc.Promote(ctx, e.repo, PromoteRequest{Versions: refs("foo@1.2.3"), Target: "staging"}); err == nil {
			t.Fatal("Promote succeeded through a refused PR")
		}
		for b := range e.gh.refs {
			if strings.HasPrefix(b, PromoteBranchPrefix) {
				t.Errorf("branch %s left behind", b)
			}
		}
	})
	t.Run("a repeated request finds its PR and writes nothing", func(t *testing.T) {
		e := newMemEnv(t)
		e.put(t, "snapshot", "", "foo@1.2.3", "bar@2.0.0")
		req := PromoteRequest{Versions: refs("foo@1.2.3", "bar@2.0.0"), Target: "staging"}
		first, err := e.svc.Promote(ctx, e.repo, req)
		if err != nil || len(first.Refusals) > 0 {
			t.Fatalf("Promote: %v %v", err, first.Refusals)
		}
		written := e.gh.writes()
		again, err := e.svc.Promote(ctx, e.repo, req)
		if err != nil || !again.Reused || again.PR != first.PR || len(again.Versions) != 2 {
			t.Errorf("again: %+v %v, want PR %+v reused with both versions", again, err, first.PR)
		}
		if n := e.gh.writes(); n != written {
			t.Errorf("the repeat wrote %d times, want nothing", n-written)
		}
	})
}

// TestUnitFollowUpTwoReplicasAtOnce: two replicas handling the same merge at the same moment (each with its
// own locks) converge on one removal PR and one note, whichever wins each race.
func TestUnitFollowUpTwoReplicasAtOnce(t *testing.T) {
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		e := newMemEnv(t)
		e.put(t, "snapshot", "", "foo@1.2.3", "bar@2.0.0")
		merged := e.promoteAndMerge(t, "foo@1.2.3", "bar@2.0.0")
		replicas := []*Service{
			{Seal: testSeal, AppID: e.gh.appID, BotLogin: e.svc.BotLogin},
			{Seal: testSeal, AppID: e.gh.appID, BotLogin: e.svc.BotLogin},
		}
		errs := make(chan error, len(replicas))
		for _, svc := range replicas {
			go func(svc *Service) { errs <- svc.HandleMerged(ctx, e.repo, merged) }(svc)
		}
		for range replicas {
			if err := <-errs; err != nil {
				t.Fatalf("run %d: HandleMerged: %v", i, err)
			}
		}
		prs := e.removalPRs("snapshot")
		if len(prs) != 1 || prs[0].GetState() != "open" {
			t.Fatalf("run %d: %d removal PRs into snapshot, want one open", i, len(prs))
		}
		if tree := e.versionIn(t, prs[0].GetHead().GetRef(), "bar@2.0.0"); tree != "" {
			t.Errorf("run %d: the removal branch still holds bar@2.0.0", i)
		}
		if n := len(e.notes(t, merged.GetNumber())); n != 1 {
			t.Errorf("run %d: %d follow-up notes, want 1", i, n)
		}
	}
}
