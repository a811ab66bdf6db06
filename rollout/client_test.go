package rollout

import (
	"context"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
)

// TestClientIdlePassAgainstTheFake runs a pass through the go-github seam against the fake GitHub with every
// distribution up to date, and reports the API calls it costs (docs/benchmarks-rollout.md).
func TestClientIdlePassAgainstTheFake(t *testing.T) {
	ctx := context.Background()
	s := githubfake.New(githubfake.Options{Logf: t.Logf})
	t.Cleanup(s.Close)
	repo := s.CreateRepo("storage-org", "package-storage", "main")
	for _, b := range []string{"production", "staging", "snapshot"} {
		if err := repo.CreateBranch(b, repo.BranchSHA("main")); err != nil {
			t.Fatal(err)
		}
	}
	gh, err := s.InstallationClient()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := repoconfig.Parse([]byte(`
distributions:
  - {name: production, image: r/p, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: staging, image: r/s, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: snapshot, image: r/n, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{GH: gh, Owner: "storage-org", Repo: "package-storage"}
	// Record every distribution as deployed at its branch head on its base's deployment.
	var base int64
	for _, d := range cfg.Distributions {
		p := Payload{Distribution: d.Name, Ref: repo.BranchSHA(d.Branch), Base: d.Base, BaseDeployment: base, Image: d.Image + ":x", BuildRun: 1}
		dep, err := c.CreateDeployment(ctx, d.Name, d.Branch, p)
		if err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		if err := c.SetDeploymentState(ctx, dep.ID, StateSuccess, "live", ""); err != nil {
			t.Fatal(err)
		}
		base = dep.ID
	}
	ctrl := &Controller{Target: func(GitHub, repoconfig.Distribution) (Target, error) {
		t.Fatal("an idle pass rolled something out")
		return nil, nil
	}}
	s.ResetCalls()
	steps, err := ctrl.Pass(ctx, Repo{GitHub: c, Config: cfg})
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	for _, st := range steps {
		if st.Action != ActionUpToDate {
			t.Errorf("%s: %s, want up to date", st.Distribution, st.Action)
		}
	}
	total := 0
	for route, n := range s.CallCounts() {
		t.Logf("%3d  %s", n, route)
		total += n
	}
	t.Logf("idle pass: %d API calls for %d distributions", total, len(cfg.Distributions))
	if total > 4*len(cfg.Distributions) {
		t.Errorf("idle pass made %d calls, want at most 4 per distribution", total)
	}
}
