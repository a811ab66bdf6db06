package githubfake

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-github/v50/github"
)

// TestAutoInactiveMarksOnlyPriorDeployments: a success status makes the environment's prior successful
// deployments inactive, as GitHub documents auto_inactive, and leaves newer ones alone — a success landing
// late on an old deployment does not take down the one that replaced it. auto_inactive false marks nothing.
func TestAutoInactiveMarksOnlyPriorDeployments(t *testing.T) {
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	ctx := context.Background()
	head := repo.BranchSHA("snapshot")
	create := func(env string) int64 {
		t.Helper()
		d, _, err := gh.Repositories.CreateDeployment(ctx, "storage-org", "package-storage", &github.DeploymentRequest{
			Ref: github.String(head), Environment: github.String(env), RequiredContexts: &[]string{}, AutoMerge: github.Bool(false)})
		if err != nil {
			t.Fatal(err)
		}
		return d.GetID()
	}
	status := func(id int64, state string, autoInactive *bool) {
		t.Helper()
		if _, _, err := gh.Repositories.CreateDeploymentStatus(ctx, "storage-org", "package-storage", id,
			&github.DeploymentStatusRequest{State: github.String(state), AutoInactive: autoInactive}); err != nil {
			t.Fatal(err)
		}
	}
	states := func() map[int64]string {
		out := map[int64]string{}
		for _, d := range repo.Deployments() {
			out[d.ID] = strings.Join(d.States, ",")
		}
		return out
	}

	old, newer, other := create("staging"), create("staging"), create("snapshot")
	status(other, "success", nil)
	status(newer, "success", nil)
	status(old, "success", nil) // late: the newer deployment stays live
	if got := states(); got[newer] != "success" || got[old] != "success" || got[other] != "success" {
		t.Fatalf("after a late success on the older deployment: %v, want all three still success", got)
	}
	newest := create("staging")
	status(newest, "success", github.Bool(false))
	if got := states(); got[newer] != "success" || got[old] != "success" {
		t.Fatalf("auto_inactive false: %v, want the others untouched", got)
	}
	latest := create("staging")
	status(latest, "success", nil)
	got := states()
	for _, id := range []int64{old, newer, newest} {
		if !strings.HasSuffix(got[id], ",inactive") {
			t.Errorf("deployment %d: %q, want inactive after a newer deployment's success", id, got[id])
		}
	}
	if got[other] != "success" || got[latest] != "success" {
		t.Errorf("other environment %q, latest %q: want both success", got[other], got[latest])
	}
}
