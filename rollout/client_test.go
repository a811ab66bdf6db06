package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/rollout/rollouttest"
)

// TestClientIdlePassAgainstTheFake runs passes through the go-github seam against the fake GitHub with every
// distribution up to date, and reports the API calls they cost (docs/benchmarks-rollout.md): the first pass
// of a process also reads each newest deployment's state; later ones only revalidate the branch heads and the
// deployments list.
func TestClientIdlePassAgainstTheFake(t *testing.T) {
	ctx := context.Background()
	st := rollouttest.NewStorage(t, t.Logf, []string{"production", "staging", "snapshot"}, nil)
	s, repo, gh := st.Fake, st.Repo, st.GH
	const config = `
distributions:
  - {name: production, image: r/p, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: staging, image: r/s, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: snapshot, image: r/n, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
`
	cfg := rollouttest.Config(t, config)
	c := &Client{GH: gh, Owner: "storage-org", Repo: "package-storage", States: NewStateCache()}
	// Record every distribution as deployed at its branch head on its base's deployment.
	var base int64
	for _, d := range cfg.Distributions {
		p := Payload{Distribution: d.Name, Ref: repo.BranchSHA(d.Branch), Base: d.Base, BaseDeployment: base, Image: d.Image + ":x"}
		dep, err := c.CreateDeployment(ctx, d.Name, d.Branch, p)
		if err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		if err := c.SetDeploymentState(ctx, dep.ID, StateSuccess, "live", ""); err != nil {
			t.Fatal(err)
		}
		base = dep.ID
	}
	// The idle passes come a while after the last rollout: final states are cached only once their second is
	// over (stateSettle).
	later := func() time.Time { return time.Now().Add(stateSettle) }
	c.States.now = later
	ctrl := &Controller{Target: func(GitHub, repoconfig.Distribution) (Target, error) {
		t.Fatal("an idle pass rolled something out")
		return nil, nil
	}}
	pass := func(name string) int {
		t.Helper()
		s.ResetCalls()
		steps, err := ctrl.Pass(ctx, Repo{GitHub: c, Config: cfg})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, st := range steps {
			if st.Action != ActionUpToDate {
				t.Errorf("%s: %s: %s, want up to date", name, st.Distribution, st.Action)
			}
		}
		total := 0
		for route, n := range s.CallCounts() {
			t.Logf("%s: %3d  %s", name, n, route)
			total += n
		}
		t.Logf("%s: %d API calls for %d distributions", name, total, len(cfg.Distributions))
		return total
	}
	if total := pass("first idle pass"); total > 2+len(cfg.Distributions) {
		t.Errorf("first idle pass made %d calls, want at most 2 and one state read per distribution", total)
	}
	for i := 0; i < 2; i++ {
		if total := pass("idle pass"); total > len(cfg.Distributions) {
			t.Errorf("idle pass made %d calls, want at most 1 per distribution", total)
		}
	}

	// Through the service, as the reconciler and the webhooks trigger it, a pass also revalidates the
	// configuration on the default branch: one more call, still at most one per distribution.
	if _, err := repo.Commit("main", "config", map[string]*githubfake.File{repoconfig.Path: {Content: []byte(config)}}); err != nil {
		t.Fatal(err)
	}
	svc := NewService(ctx, ctrl, nil)
	svc.States.now = later
	ghRepo := &github.Repository{Owner: &github.User{Login: github.String("storage-org")}, Name: github.String("package-storage"),
		FullName: github.String("storage-org/package-storage"), DefaultBranch: github.String("main")}
	for i, name := range []string{"first service pass", "service pass"} {
		s.ResetCalls()
		steps, err := svc.Pass(ctx, gh, ghRepo)
		if err != nil || len(steps) != 3 || steps[2].Action != ActionUpToDate {
			t.Fatalf("%s: %v %+v", name, err, steps)
		}
		total := 0
		for route, n := range s.CallCounts() {
			t.Logf("%s: %3d  %s", name, n, route)
			total += n
		}
		t.Logf("%s: %d API calls for %d distributions", name, total, len(cfg.Distributions))
		if i == 1 && total > len(cfg.Distributions) {
			t.Errorf("idle service pass made %d calls, want at most 1 per distribution", total)
		}
	}

	// A change made behind the controller's back (a webhook it never got) is still seen by the next pass.
	if _, err := repo.Commit("staging", "direct push", map[string]*githubfake.File{"README.md": {Content: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	ctrl.Target = func(GitHub, repoconfig.Distribution) (Target, error) { return nil, errors.New("not reached") }
	steps, err := ctrl.Pass(ctx, Repo{GitHub: c, Config: cfg})
	if err != nil {
		t.Fatalf("pass after a push: %v", err)
	}
	if steps[1].Action != ActionFailed || !strings.Contains(steps[1].Detail, "the build could not be started") {
		t.Errorf("staging after a push nobody announced: %s (%s), want a build claimed and its dispatch refused (no build workflow)", steps[1].Action, steps[1].Detail)
	}
}

// TestClientFinalStateOutlivesALateInProgress: an in-progress status that lands after the deployment's
// success (a pass's late write, racing the replica that rolled the build out) does not put the deployment back
// in flight: the pass reads the final state underneath, so nobody waits on a rollout nobody is doing.
func TestClientFinalStateOutlivesALateInProgress(t *testing.T) {
	ctx := context.Background()
	st := rollouttest.NewStorage(t, t.Logf, []string{"production"}, nil)
	c := &Client{GH: st.GH, Owner: "storage-org", Repo: "package-storage", States: NewStateCache()}
	head := st.Repo.BranchSHA("production")
	p := Payload{Distribution: "production", Ref: head, Image: "r/p:" + head}
	dep, err := c.CreateDeployment(ctx, "production", "production", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, state := range []string{StateInProgress, StateSuccess, StateInProgress} {
		if err := c.SetDeploymentState(ctx, dep.ID, state, state, ""); err != nil {
			t.Fatal(err)
		}
	}
	deps, err := c.Deployments(ctx, []string{"production"})
	if err != nil {
		t.Fatal(err)
	}
	if got := deps["production"]; len(got) != 1 || got[0].State != StateSuccess {
		t.Fatalf("deployments = %+v, want the one deployment %s", got, StateSuccess)
	}
	// GitHub shows it final again.
	for _, d := range st.Repo.Deployments() {
		if d.ID == dep.ID && d.States[len(d.States)-1] != StateSuccess {
			t.Errorf("deployment %d states on GitHub = %v, want success again last", dep.ID, d.States)
		}
	}

	// A deployment only in progress stays in progress.
	other, err := c.CreateDeployment(ctx, "production", "production", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeploymentState(ctx, other.ID, StateInProgress, "rolling out", ""); err != nil {
		t.Fatal(err)
	}
	deps, err = c.Deployments(ctx, []string{"production"})
	if err != nil {
		t.Fatal(err)
	}
	if got := deps["production"]; len(got) != 2 || got[0].ID != other.ID || got[0].State != StateInProgress {
		t.Fatalf("deployments = %+v, want %d in progress first", got, other.ID)
	}
}

// TestClientPutsALateInProgressBehindTheLiveOneToRest: a late in-progress status can land on a deployment
// after a newer one went live. A reading that stopped at the newest success would never see it again, and it
// would show in flight on GitHub for good; the reader looks a few deployments past that success and puts it
// back to its final state.
func TestClientPutsALateInProgressBehindTheLiveOneToRest(t *testing.T) {
	ctx := context.Background()
	st := rollouttest.NewStorage(t, t.Logf, []string{"production"}, nil)
	c := &Client{GH: st.GH, Owner: "storage-org", Repo: "package-storage", States: NewStateCache()}
	head := st.Repo.BranchSHA("production")
	p := Payload{Distribution: "production", Ref: head, Image: "r/p:" + head}
	var ids []int64
	for i := 0; i < 2; i++ {
		dep, err := c.CreateDeployment(ctx, "production", "production", p)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetDeploymentState(ctx, dep.ID, StateSuccess, "live", ""); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, dep.ID)
	}
	// The older one went inactive when the newer went live; then a write from its rollout lands.
	if err := c.SetDeploymentState(ctx, ids[0], StateInProgress, "late", ""); err != nil {
		t.Fatal(err)
	}
	for _, envs := range [][]string{{"production"}, {"production", "staging"}} {
		deps, err := c.Deployments(ctx, envs)
		if err != nil {
			t.Fatal(err)
		}
		got := deps["production"]
		if len(got) != 2 || got[0].ID != ids[1] || got[0].State != StateSuccess || got[1].ID != ids[0] || got[1].State != StateInactive {
			t.Fatalf("Deployments(%v) = %+v, want %d success then %d inactive", envs, got, ids[1], ids[0])
		}
	}
	for _, d := range st.Repo.Deployments() {
		if d.ID == ids[0] && d.States[len(d.States)-1] != StateInactive {
			t.Errorf("deployment %d states on GitHub = %v, want inactive again last", ids[0], d.States)
		}
	}
}

// TestClientFindsTheLiveDeploymentBehindManyFailedClaims: more failed claims than one page of an environment
// do not hide the deployment that runs.
func TestClientFindsTheLiveDeploymentBehindManyFailedClaims(t *testing.T) {
	ctx := context.Background()
	st := rollouttest.NewStorage(t, t.Logf, []string{"production"}, nil)
	c := &Client{GH: st.GH, Owner: "storage-org", Repo: "package-storage", States: NewStateCache()}
	head := st.Repo.BranchSHA("production")
	p := Payload{Distribution: "production", Ref: head, Image: "r/p:" + head}
	for i := 0; i < deploymentsRead+5; i++ {
		dep, err := c.CreateDeployment(ctx, "production", "production", p)
		if err != nil {
			t.Fatal(err)
		}
		state := StateFailure
		if i == 0 {
			state = StateSuccess
		}
		if err := c.SetDeploymentState(ctx, dep.ID, state, state, ""); err != nil {
			t.Fatal(err)
		}
	}
	deps, err := c.Deployments(ctx, []string{"production"})
	if err != nil {
		t.Fatal(err)
	}
	got := deps["production"]
	if len(got) != deploymentsRead+5 || got[len(got)-1].State != StateSuccess {
		t.Fatalf("read %d deployments, the last %+v; want all %d down to the successful one", len(got), got[len(got)-1], deploymentsRead+5)
	}
}

// TestStartRolloutPutsBackWhatItsLateMarkCovered: a pass whose in-progress mark goes unanswered (its client
// gave up; GitHub goes on and applies it) while another pass finishes the rollout waits until the mark has
// landed and sets the final state back: nothing else would, as GitHub sends no event a pass waits for.
func TestStartRolloutPutsBackWhatItsLateMarkCovered(t *testing.T) {
	ctx := context.Background()
	st := rollouttest.NewStorage(t, t.Logf, []string{"production"}, nil)
	done := &Client{GH: st.GH, Owner: "storage-org", Repo: "package-storage"}
	head := st.Repo.BranchSHA("production")
	dep, err := done.CreateDeployment(ctx, "production", "production", Payload{Distribution: "production", Ref: head, Image: "r/p:" + head})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := done.StartRollout(ctx, dep.ID, "rolling out"); err != nil || !first {
		t.Fatalf("first StartRollout = %v, %v; want true", first, err)
	}
	// The late pass's client gives up after 200 ms; GitHub answers, and applies its mark, after 400 ms —
	// after the first pass marked the deployment successful.
	impatient := github.NewClient(&http.Client{Transport: st.GH.Client().Transport, Timeout: 200 * time.Millisecond})
	impatient.BaseURL = st.GH.BaseURL
	late := &Client{GH: impatient, Owner: "storage-org", Repo: "package-storage", WriteSettle: 800 * time.Millisecond}
	st.Fake.InjectFault(githubfake.Fault{Route: "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", Latency: 400 * time.Millisecond, Times: 1})
	finished := time.AfterFunc(100*time.Millisecond, func() {
		if err := done.SetDeploymentState(ctx, dep.ID, StateSuccess, "live", ""); err != nil {
			t.Error(err)
		}
	})
	defer finished.Stop()
	if first, err := late.StartRollout(ctx, dep.ID, "rolling out"); err == nil || first {
		t.Fatalf("unanswered StartRollout = %v, %v; want false and the error", first, err)
	}
	states := func() []string { return st.Repo.Deployments()[0].States }
	for deadline := time.Now().Add(2 * time.Second); len(states()) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the mark lands
	}
	if got := states(); len(got) < 3 || got[len(got)-1] != StateSuccess {
		t.Errorf("deployment states on GitHub = %v, want the late in_progress, then success again", got)
	}
}

// TestStartRolloutAfterTheBuildWentLive: a pass whose in-progress mark lands after another pass finished the
// rollout is told not to roll out, and the deployment shows its final state again on GitHub.
func TestStartRolloutAfterTheBuildWentLive(t *testing.T) {
	ctx := context.Background()
	st := rollouttest.NewStorage(t, t.Logf, []string{"production"}, nil)
	c := &Client{GH: st.GH, Owner: "storage-org", Repo: "package-storage", States: NewStateCache()}
	head := st.Repo.BranchSHA("production")
	dep, err := c.CreateDeployment(ctx, "production", "production", Payload{Distribution: "production", Ref: head, Image: "r/p:" + head})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := c.StartRollout(ctx, dep.ID, "rolling out"); err != nil || !first {
		t.Fatalf("first StartRollout = %v, %v; want true", first, err)
	}
	if err := c.SetDeploymentState(ctx, dep.ID, StateSuccess, "live", "https://registry.example"); err != nil {
		t.Fatal(err)
	}
	if first, err := c.StartRollout(ctx, dep.ID, "rolling out"); err != nil || first {
		t.Fatalf("late StartRollout = %v, %v; want false", first, err)
	}
	for _, d := range st.Repo.Deployments() {
		if d.ID == dep.ID && d.States[len(d.States)-1] != StateSuccess {
			t.Errorf("deployment states on GitHub = %v, want success last again", d.States)
		}
	}
}

// TestServiceReportsPassesRunning: OnRunning follows the pass loop of each repository (the metric an
// operator, and the chaos test, reads to know the rollouts idle).
func TestServiceReportsPassesRunning(t *testing.T) {
	st := rollouttest.NewStorage(t, rollouttest.Quiet, nil, nil)
	var mu sync.Mutex
	var seen []int
	svc := NewService(context.Background(), &Controller{}, nil)
	svc.OnRunning = func(n int) { mu.Lock(); seen = append(seen, n); mu.Unlock() }
	repo := &github.Repository{Owner: &github.User{Login: github.String("storage-org")}, Name: github.String("package-storage"),
		FullName: github.String("storage-org/package-storage"), DefaultBranch: github.String("main")}
	svc.Trigger(st.GH, repo)
	svc.Wait()
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[1 0]" {
		t.Errorf("passes running reported %v, want [1 0]", seen)
	}
}
