package promotion

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/botcomment"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
)

// mergedPromotion promotes foo@1.2.3 and bar@2.0.0 from snapshot to staging, then edits the snapshot copy of
// bar@2.0.0, then merges the promotion PR. It returns the merged PR as the API shows it.
func mergedPromotion(t *testing.T, e *env) *github.PullRequest {
	t.Helper()
	e.put(t, "snapshot", 4, "", "foo@1.2.3", "bar@2.0.0")
	res, err := e.svc.Promote(context.Background(), e.r, PromoteRequest{Versions: refs("foo@1.2.3", "bar@2.0.0"), Target: "staging"})
	if err != nil || len(res.Refusals) > 0 {
		t.Fatalf("Promote: %v %v", err, res.Refusals)
	}
	e.put(t, "snapshot", 4, "edited after the promotion", "bar@2.0.0")
	if _, err := e.repo.MergePullRequest(res.PR.Number, "merge"); err != nil {
		t.Fatalf("merge #%d: %v", res.PR.Number, err)
	}
	return e.pr(t, res.PR.Number)
}

func TestAddedBy(t *testing.T) {
	e := newEnv(t)
	e.checkAddedBy(t, mergedPromotion(t, e), "bar@2.0.0", "foo@1.2.3")
}

func TestFollowUpOpensOneRemovalPR(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	merged := mergedPromotion(t, e)
	n := merged.GetNumber()
	calls := []struct {
		name string
		svc  *Service
		repo Repo
	}{
		{name: "first delivery", svc: e.svc, repo: e.r},
		{name: "redelivery", svc: e.svc, repo: e.r},
		{name: "second redelivery", svc: e.svc, repo: e.r},
		{name: "after a restart", svc: &Service{Seal: testSeal}, repo: e.restarted()},
	}
	var first []FollowUpResult
	for i, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.svc.FollowUp(ctx, c.repo, merged)
			if err != nil {
				t.Fatalf("FollowUp: %v", err)
			}
			if len(got) != 1 {
				t.Fatalf("results = %+v, want one (snapshot)", got)
			}
			if i == 0 {
				first = got
				if !got[0].Created || len(got[0].Skipped) != 1 || got[0].Skipped[0].Version.String() != "bar@2.0.0" ||
					!strings.Contains(got[0].Skipped[0].Reason, "differs") {
					t.Errorf("first result = %+v, want created, bar@2.0.0 skipped as different", got[0])
				}
				return
			}
			if got[0].Created || got[0].PR != first[0].PR {
				t.Errorf("result = %+v, want the existing PR %+v, not created", got[0], first[0].PR)
			}
			if diff := cmp.Diff(refs("foo@1.2.3"), got[0].Removed); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
		})
	}
	prs := e.prsFrom(RemoveBranchPrefix)
	if len(prs) != 1 {
		t.Fatalf("removal PRs = %+v, want exactly one", prs)
	}
	pr := prs[0]
	wantTitle := "[snapshot] Remove packages promoted to staging in #1 (foo@1.2.3)"
	if pr.Head != "storagebot/remove/snapshot/pr-1" || pr.Base != "snapshot" || pr.Title != wantTitle || n != 1 {
		t.Errorf("removal PR head %q base %q title %q, want storagebot/remove/snapshot/pr-1 into snapshot titled %q", pr.Head, pr.Base, pr.Title, wantTitle)
	}
	if diff := cmp.Diff([]string{RemovalLabel}, pr.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if !strings.Contains(pr.Body, "#1 merged") || !strings.Contains(pr.Body, "`bar@2.0.0`") {
		t.Errorf("body does not link #1 or explain the skipped version:\n%s", pr.Body)
	}
	if got := e.treeAt(t, pr.HeadSHA, "foo@1.2.3"); got != "" {
		t.Errorf("removal PR head still holds foo@1.2.3 (%s)", got)
	}
	if e.treeAt(t, pr.HeadSHA, "bar@2.0.0") != e.treeAt(t, "snapshot", "bar@2.0.0") {
		t.Errorf("removal PR touched the differing bar@2.0.0")
	}

	// Closed by a person: still never opened again.
	if _, _, err := e.gh.PullRequests.Edit(ctx, owner, name, pr.Number, &github.PullRequest{State: github.String("closed")}); err != nil {
		t.Fatalf("close #%d: %v", pr.Number, err)
	}
	if _, err := (&Service{Seal: testSeal}).FollowUp(ctx, e.restarted(), merged); err != nil {
		t.Fatalf("FollowUp after close: %v", err)
	}
	if got := e.prsFrom(RemoveBranchPrefix); len(got) != 1 {
		t.Errorf("removal PRs after closing = %d, want still 1", len(got))
	}
}

func TestFollowUpIgnoresNonChannelBase(t *testing.T) {
	e := newEnv(t)
	pr := &github.PullRequest{Number: github.Int(9), Merged: github.Bool(true), MergeCommitSHA: github.String(e.repo.BranchSHA("snapshot")),
		Base: &github.PullRequestBranch{Ref: github.String("feature")}}
	got, err := e.svc.FollowUp(context.Background(), e.r, pr)
	if err != nil || got != nil {
		t.Errorf("FollowUp into a non-channel branch = %+v, %v; want nothing", got, err)
	}
}

func TestMergeRemovalIfReady(t *testing.T) {
	tests := []struct {
		name       string
		autoMerge  bool
		prepare    func(t *testing.T, e *env, pr int, head string)
		wantMerged bool
		wantReason string
	}{
		{name: "auto-merge off", autoMerge: false, wantReason: "auto_merge_removals is off"},
		{name: "no policy check yet", autoMerge: true, wantReason: "waiting for the storage-policy check"},
		{
			name: "policy check failed", autoMerge: true,
			prepare:    func(t *testing.T, e *env, _ int, head string) { checkRun(t, e, head, "storage-policy", "failure") },
			wantReason: "the storage-policy check concluded failure",
		},
		{
			name: "another check failed", autoMerge: true,
			prepare: func(t *testing.T, e *env, _ int, head string) {
				checkRun(t, e, head, "storage-policy", "success")
				checkRun(t, e, head, "build", "failure")
			},
			wantReason: `check "build" concluded failure`,
		},
		{
			name: "a person pushed to the branch", autoMerge: true,
			prepare: func(t *testing.T, e *env, pr int, _ string) {
				head, err := e.repo.PushToPullRequest(pr, "tweak", version("extra", "1.0.0", 1, ""))
				if err != nil {
					t.Fatalf("push: %v", err)
				}
				checkRun(t, e, head, "storage-policy", "success")
			},
			wantReason: "someone pushed to storagebot/remove/snapshot/pr-1",
		},
		{
			name: "checks passed", autoMerge: true,
			prepare:    func(t *testing.T, e *env, _ int, head string) { checkRun(t, e, head, "storage-policy", "success") },
			wantMerged: true, wantReason: "merged #2 (squash)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			cfg := repoconfig.Default()
			cfg.AutoMergeRemovals = tc.autoMerge
			e.r.Config = cfg
			results, err := e.svc.FollowUp(ctx, e.r, mergedPromotion(t, e))
			if err != nil || len(results) != 1 {
				t.Fatalf("FollowUp: %+v %v", results, err)
			}
			number := results[0].PR.Number
			if tc.prepare != nil {
				tc.prepare(t, e, number, e.repo.PullRequest(number).HeadSHA)
			}
			e.checkMergeGate(t, number, tc.wantMerged, tc.wantReason)
			if tc.wantMerged && e.treeAt(t, "snapshot", "foo@1.2.3") != "" {
				t.Errorf("snapshot still holds foo@1.2.3 after the merge")
			}
		})
	}
}

func checkRun(t *testing.T, e *env, sha, name, conclusion string) {
	t.Helper()
	_, _, err := e.gh.Checks.CreateCheckRun(context.Background(), owner, "package-storage", github.CreateCheckRunOptions{
		Name: name, HeadSHA: sha, Status: github.String("completed"), Conclusion: github.String(conclusion),
	})
	if err != nil {
		t.Fatalf("create check run %s: %v", name, err)
	}
}

// TestReconcileRunsTheMergedPRsFollowUp covers the race between the reconciler and the merge event: the
// reconciler, running before the event is handled, opens the merged PR's own follow-up (branch pr-<N>), so
// the event's follow-up finds that PR instead of opening a second one beside a reconcile-<key> PR.
func TestReconcileRunsTheMergedPRsFollowUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "snapshot", 3, "", "foo@1.2.3")
	number := e.promoteAndMerge(t, "foo@1.2.3")
	// The reconciler runs before the merge event is handled.
	rec, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil {
		t.Fatal(err)
	}
	wantBranch := fmt.Sprintf("%ssnapshot/pr-%d", RemoveBranchPrefix, number)
	if len(rec.Removals) != 1 || !rec.Removals[0].Created || rec.Removals[0].PR.Branch != wantBranch {
		t.Fatalf("reconcile removals = %+v, want one created on %s", rec.Removals, wantBranch)
	}
	if diff := cmp.Diff([]int{number}, rec.FollowedUp); diff != "" {
		t.Errorf("followed up (-want +got):\n%s", diff)
	}
	results, err := e.svc.FollowUp(ctx, e.r, e.pr(t, number))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Created || results[0].PR.Number != rec.Removals[0].PR.Number {
		t.Errorf("follow-up results = %+v, want the reconciler's PR #%d found", results, rec.Removals[0].PR.Number)
	}
	got := e.prsFrom(RemoveBranchPrefix)
	if len(got) != 1 {
		t.Fatalf("removal PRs = %+v, want exactly one", got)
	}
	want := fmt.Sprintf("[snapshot] Remove packages promoted to staging in #%d (foo@1.2.3)", number)
	if got[0].Title != want {
		t.Errorf("title = %q, want %q", got[0].Title, want)
	}
}

// TestReconcileSplitsMergedFromPushed: duplicates a merged PR explains go to its follow-up; the others (pushed
// straight to both branches) to one reconcile PR.
func TestReconcileSplitsMergedFromPushed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	merged := mergedPromotion(t, e) // foo@1.2.3 (identical) and bar@2.0.0 (edited in snapshot since)
	e.put(t, "snapshot", 3, "", "baz@1.0.0")
	e.put(t, "staging", 3, "", "baz@1.0.0")
	rec, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil {
		t.Fatal(err)
	}
	byBranch := map[string][]string{}
	for _, rm := range rec.Removals {
		for _, v := range rm.Removed {
			byBranch[rm.PR.Branch] = append(byBranch[rm.PR.Branch], v.String())
		}
	}
	want := map[string][]string{
		fmt.Sprintf("%ssnapshot/pr-%d", RemoveBranchPrefix, merged.GetNumber()): {"foo@1.2.3"},
		RemoveBranchPrefix + "snapshot/reconcile-baz-1.0.0":                     {"baz@1.0.0"},
	}
	if diff := cmp.Diff(want, byBranch); diff != "" {
		t.Errorf("removal PRs by branch (-want +got):\n%s", diff)
	}
	if n := len(e.prsFrom(RemoveBranchPrefix)); n != 2 {
		t.Errorf("removal PRs = %d, want 2", n)
	}
	again, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil {
		t.Fatal(err)
	}
	for _, rm := range again.Removals {
		if rm.Created {
			t.Errorf("second pass created %+v, want only PRs found", rm)
		}
	}
	if n := len(e.prsFrom(RemoveBranchPrefix)); n != 2 {
		t.Errorf("removal PRs after a second pass = %d, want 2", n)
	}
}

// TestNoteFollowUpOnceWhenTwoPost: two replicas both find no note and both post (the posts are slowed so
// that both look first); exactly one note stays, the first.
func TestNoteFollowUpOnceWhenTwoPost(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	merged := mergedPromotion(t, e)
	n := merged.GetNumber()
	bot := func(context.Context) (string, error) { return "storagebot[bot]", nil }
	replicas := []*Service{{BotLogin: bot, Seal: testSeal}, {BotLogin: bot, Seal: testSeal}}
	key := MarkerKey(testSeal, e.repo.FullName())
	e.fake.InjectFault(githubfake.Fault{Route: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments", Latency: 300 * time.Millisecond, Times: 2})
	note := FollowUpNote([]FollowUpResult{{Channel: "snapshot", PR: PRRef{Number: 99}, Removed: refs("foo@1.2.3")}}, n, key)
	errs := make(chan error, len(replicas))
	for _, svc := range replicas {
		go func(svc *Service, repo Repo) { errs <- svc.NoteFollowUp(ctx, repo, n, note) }(svc, e.restarted())
	}
	for range replicas {
		if err := <-errs; err != nil {
			t.Fatalf("NoteFollowUp: %v", err)
		}
	}
	assertOneFollowUpNote(t, e, n, key)
	if posts := e.fake.Calls("POST /repos/{owner}/{repo}/issues/{issue_number}/comments"); posts != 2 {
		t.Errorf("notes posted = %d, want 2 (the race this test is about did not happen)", posts)
	}
	// A later run (a redelivery, the reconciler) finds the note and posts nothing.
	if err := replicas[0].NoteFollowUp(ctx, e.r, n, note); err != nil {
		t.Fatal(err)
	}
	if got := len(e.repo.IssueComments(n)); got != 1 {
		t.Errorf("comments after a redelivery = %d, want 1", got)
	}
}

// assertOneFollowUpNote fails t unless exactly one comment on PR n carries its follow-up note's marker.
func assertOneFollowUpNote(t *testing.T, e *env, n int, key seal.Key) {
	t.Helper()
	var notes []int64
	for _, c := range e.repo.IssueComments(n) {
		if strings.Contains(c.Body, FollowUpNoteMarker(n, key)) {
			notes = append(notes, c.ID)
		}
	}
	if len(notes) != 1 {
		t.Fatalf("follow-up notes = %v, want exactly one", notes)
	}
}

// TestNoteFollowUpLandingLate: one replica's post is answered 502 and applied only later, after the other
// replica has looked, found nothing and posted; the first replica watches for its post, sees both and deletes
// the later. Exactly one note stays, and nobody posts a third.
func TestNoteFollowUpLandingLate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	merged := mergedPromotion(t, e)
	n := merged.GetNumber()
	bot := func(context.Context) (string, error) { return "storagebot[bot]", nil }
	w := botcomment.Writer{Settle: 3 * time.Second}
	late, prompt := &Service{BotLogin: bot, Seal: testSeal, Notes: w}, &Service{BotLogin: bot, Seal: testSeal, Notes: w}
	key := MarkerKey(testSeal, e.repo.FullName())
	route := "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
	e.fake.InjectFault(githubfake.Fault{Route: route, DropResponse: true, Status: http.StatusBadGateway, ApplyAfter: time.Second, Times: 1})
	note := FollowUpNote([]FollowUpResult{{Channel: "snapshot", PR: PRRef{Number: 99}, Removed: refs("foo@1.2.3")}}, n, key)
	done := make(chan error, 1)
	go func() { done <- late.NoteFollowUp(ctx, e.r, n, note) }()
	deadline := time.Now().Add(30 * time.Second)
	for e.fake.Calls(route) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first replica did not post within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := prompt.NoteFollowUp(ctx, e.r, n, note); err != nil {
		t.Fatalf("the prompt replica: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the replica whose post landed late: %v", err)
	}
	if e.fake.LateWrites() != 0 {
		t.Fatal("the late post had not landed when its writer returned")
	}
	assertOneFollowUpNote(t, e, n, key)
	if posts := e.fake.Calls(route); posts != 2 {
		t.Errorf("notes posted = %d, want 2 (one each)", posts)
	}
}

// TestOverlappingRemovalYieldsToOlder: when two actors wrote different removal branches for the same copy
// (a reconcile PR while a follow-up the reconciler could not attribute was in flight), the PR opened second
// closes itself and points at the first; the first stays.
func TestOverlappingRemovalYieldsToOlder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "snapshot", 3, "", "foo@1.2.3")
	e.put(t, "staging", 3, "", "foo@1.2.3")
	ch, _ := e.r.config().ChannelByName("snapshot")
	lh, err := branchHead(ctx, e.r, ch)
	if err != nil {
		t.Fatal(err)
	}
	remove := []removal{{Version: refs("foo@1.2.3")[0], Tree: e.treeAt(t, "snapshot", "foo@1.2.3"), Higher: "staging"}}
	first, err := e.svc.openRemoval(ctx, e.r, lh, RemoveBranchPrefix+"snapshot/reconcile-foo-1.2.3", "[snapshot] Remove foo@1.2.3", "intro", remove, nil, 0)
	if err != nil || !first.Created {
		t.Fatalf("first removal = %+v, %v; want created", first, err)
	}
	second, err := e.svc.openRemoval(ctx, e.r, lh, RemoveBranchPrefix+"snapshot/pr-7", "[snapshot] Remove packages promoted to staging in #7 (foo@1.2.3)", "intro", remove, nil, 7)
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.PR.Number != first.PR.Number {
		t.Errorf("second removal = %+v, want the first one (#%d) returned, not created", second, first.PR.Number)
	}
	var open []githubfake.PullRequest
	for _, pr := range e.prsFrom(RemoveBranchPrefix) {
		if pr.State == "open" {
			open = append(open, pr)
		} else if pr.Head != RemoveBranchPrefix+"snapshot/pr-7" {
			t.Errorf("closed %s, want only the newer pr-7 closed", pr.Head)
		} else if cs := e.repo.IssueComments(pr.Number); len(cs) != 1 || !strings.Contains(cs[0].Body, fmt.Sprintf("#%d", first.PR.Number)) {
			t.Errorf("comments on the closed duplicate = %+v, want one pointing at #%d", cs, first.PR.Number)
		}
	}
	if len(open) != 1 || open[0].Number != first.PR.Number {
		t.Errorf("open removal PRs = %+v, want only #%d", open, first.PR.Number)
	}
}
