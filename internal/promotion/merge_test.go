package promotion

import (
	"context"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/policy"
)

// TestMergeGateCountsOnlyThisAppsNewestPolicyRun: the auto-merge gate takes the storage-policy verdict from
// this App's newest run only; another App's run of that name never satisfies it.
func TestMergeGateCountsOnlyThisAppsNewestPolicyRun(t *testing.T) {
	other := func(e *env) githubfake.OtherApp {
		return githubfake.OtherApp{ID: e.fake.AppID() + 1, Slug: "github-actions"}
	}
	tests := []struct {
		name       string
		prepare    func(t *testing.T, e *env, head string)
		wantMerged bool
		wantReason string
	}{
		{
			name: "only another App's storage-policy passed",
			prepare: func(t *testing.T, e *env, head string) {
				if _, err := e.repo.CreateCheckRunAs(other(e), githubfake.CheckRunOptions{Name: policy.CheckName, HeadSHA: head, Conclusion: "success", Summary: "ok"}); err != nil {
					t.Fatal(err)
				}
			},
			wantReason: "waiting for the storage-policy check",
		},
		{
			name: "ours failed, another App's passed later",
			prepare: func(t *testing.T, e *env, head string) {
				checkRun(t, e, head, policy.CheckName, "failure")
				if _, err := e.repo.CreateCheckRunAs(other(e), githubfake.CheckRunOptions{Name: policy.CheckName, HeadSHA: head, Conclusion: "success", Summary: "ok"}); err != nil {
					t.Fatal(err)
				}
			},
			wantReason: "the storage-policy check concluded failure",
		},
		{
			name: "ours passed, then failed on a re-run",
			prepare: func(t *testing.T, e *env, head string) {
				checkRun(t, e, head, policy.CheckName, "success")
				checkRun(t, e, head, policy.CheckName, "failure")
			},
			wantReason: "the storage-policy check concluded failure",
		},
		{
			name: "ours failed, then passed on a re-run",
			prepare: func(t *testing.T, e *env, head string) {
				checkRun(t, e, head, policy.CheckName, "failure")
				checkRun(t, e, head, policy.CheckName, "success")
			},
			wantMerged: true, wantReason: "merged #2 (squash)",
		},
		{
			name: "ours passed, another App's storage-policy failed",
			prepare: func(t *testing.T, e *env, head string) {
				checkRun(t, e, head, policy.CheckName, "success")
				if _, err := e.repo.CreateCheckRunAs(other(e), githubfake.CheckRunOptions{Name: policy.CheckName, HeadSHA: head, Conclusion: "failure", Summary: "no"}); err != nil {
					t.Fatal(err)
				}
			},
			wantReason: `check "storage-policy" of another App (github-actions) concluded failure`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			cfg := repoconfig.Default()
			cfg.AutoMergeRemovals = true
			e.r.Config = cfg
			results, err := e.svc.FollowUp(ctx, e.r, mergedPromotion(t, e))
			if err != nil || len(results) != 1 {
				t.Fatalf("FollowUp: %+v %v", results, err)
			}
			number := results[0].PR.Number
			tc.prepare(t, e, e.repo.PullRequest(number).HeadSHA)
			e.checkMergeGate(t, number, tc.wantMerged, tc.wantReason)
		})
	}
}
