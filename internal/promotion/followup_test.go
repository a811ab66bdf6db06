package promotion

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/repoconfig"
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
	merged := mergedPromotion(t, e)
	got, err := e.svc.AddedBy(context.Background(), e.r, merged)
	if err != nil {
		t.Fatalf("AddedBy: %v", err)
	}
	if diff := cmp.Diff(refs("bar@2.0.0", "foo@1.2.3"), got); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
}

func TestFollowUpOpensOneRemovalPR(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	merged := mergedPromotion(t, e)
	n := merged.GetNumber()
	calls := []struct {
		name string
		svc  *Service
	}{
		{name: "first delivery", svc: e.svc},
		{name: "redelivery", svc: e.svc},
		{name: "second redelivery", svc: e.svc},
		{name: "after a restart", svc: &Service{Seal: testSeal}},
	}
	var first []FollowUpResult
	for i, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.svc.FollowUp(ctx, e.r, merged)
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
	if _, _, err := e.r.Client.PullRequests.Edit(ctx, owner, name, pr.Number, &github.PullRequest{State: github.String("closed")}); err != nil {
		t.Fatalf("close #%d: %v", pr.Number, err)
	}
	if _, err := (&Service{Seal: testSeal}).FollowUp(ctx, e.r, merged); err != nil {
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
			merged, reason, err := e.svc.MergeRemovalIfReady(ctx, e.r, number)
			if err != nil {
				t.Fatalf("MergeRemovalIfReady: %v", err)
			}
			if merged != tc.wantMerged || !strings.Contains(reason, tc.wantReason) {
				t.Errorf("merged=%v reason=%q, want merged=%v reason containing %q", merged, reason, tc.wantMerged, tc.wantReason)
			}
			if got := e.repo.PullRequest(number).Merged; got != tc.wantMerged {
				t.Errorf("PR merged = %v, want %v", got, tc.wantMerged)
			}
			if tc.wantMerged && e.treeAt(t, "snapshot", "foo@1.2.3") != "" {
				t.Errorf("snapshot still holds foo@1.2.3 after the merge")
			}
		})
	}
}

func checkRun(t *testing.T, e *env, sha, name, conclusion string) {
	t.Helper()
	_, _, err := e.r.Client.Checks.CreateCheckRun(context.Background(), owner, "package-storage", github.CreateCheckRunOptions{
		Name: name, HeadSHA: sha, Status: github.String("completed"), Conclusion: github.String(conclusion),
	})
	if err != nil {
		t.Fatalf("create check run %s: %v", name, err)
	}
}

// TestFollowUpSkipsVersionsReconcileAlreadyRemoves covers the race between the reconciler and the merge
// event: when a reconcile removal PR already removes the copy, the follow-up opens no second PR.
func TestFollowUpSkipsVersionsReconcileAlreadyRemoves(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.put(t, "snapshot", 3, "", "foo@1.2.3")
	res, err := e.svc.Promote(ctx, e.r, PromoteRequest{Versions: refs("foo@1.2.3"), Target: "staging"})
	if err != nil || len(res.Refusals) > 0 {
		t.Fatalf("promote: %v %+v", err, res.Refusals)
	}
	if _, err := e.repo.MergePullRequest(res.PR.Number, "merge"); err != nil {
		t.Fatal(err)
	}
	// The reconciler runs before the merge event is handled.
	rec, err := e.svc.Reconcile(ctx, e.r)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Removals) != 1 {
		t.Fatalf("reconcile removals = %+v, want one", rec.Removals)
	}
	results, err := e.svc.FollowUp(ctx, e.r, e.pr(t, res.PR.Number))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].PR.Number != 0 || len(results[0].Skipped) != 1 ||
		!strings.Contains(results[0].Skipped[0].Reason, "already removes it") {
		t.Errorf("follow-up results = %+v, want foo@1.2.3 skipped as already being removed", results)
	}
	if got := e.prsFrom(RemoveBranchPrefix); len(got) != 1 {
		t.Errorf("removal PRs = %+v, want the reconciler's one only", got)
	}
}
