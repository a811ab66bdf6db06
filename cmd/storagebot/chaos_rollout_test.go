package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palantir/go-githubapp/githubapp"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/rollout"
	"github.com/storagebot/storagebot/rollout/rollouttest"
)

// The chaos repository's distributions, bases first: production is built on the registry image, staging FROM
// production's image, snapshot FROM staging's.
var chaosDistributions = []string{"production", "staging", "snapshot"}

// chaosRolloutFaultRoutes are the rollout's requests faults are injected on: its claims and their statuses,
// the builds and deploys it dispatches, and the listings its decisions rest on.
var chaosRolloutFaultRoutes = []string{
	chaosClaimRoute,
	"GET /repos/{owner}/{repo}/deployments",
	"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
	"GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
	"GET /repos/{owner}/{repo}/git/matching-refs/{ref}",
}

// chaosClaimRoute is where the rollout claims a build.
const chaosClaimRoute = "POST /repos/{owner}/{repo}/deployments"

// setupChaosRollout configures the three distributions, each verified against registry (deploy workflows
// for targets), and puts the build and deploy workflows on every channel branch.
func setupChaosRollout(h *harness, registry string) {
	var cfg strings.Builder
	cfg.WriteString("distributions:\n")
	for _, d := range chaosDistributions {
		verify := `, verify: {registry: "` + registry + `"}`
		fmt.Fprintf(&cfg, "  - {name: %s, image: ghcr.io/o/%s, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}%s}\n", d, d, verify)
	}
	h.commit("main", "storagebot config", map[string]*githubfake.File{".github/storagebot.yml": {Content: []byte(cfg.String())}})
	for _, b := range chaosDistributions {
		h.commit(b, "CI", map[string]*githubfake.File{
			".github/workflows/build.yml":  {Content: []byte(rollouttest.BuildWorkflow())},
			".github/workflows/deploy.yml": {Content: []byte(rollouttest.DeployWorkflow)},
		})
	}
}

// servingRegistry is a package registry serving every version: verification passes as soon as it asks.
func servingRegistry(h *harness) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	h.t.Cleanup(srv.Close)
	return srv.URL
}

// chaosActions plays GitHub Actions for a chaos group: every queued run completes a few milliseconds later,
// successfully unless the scenario asked for failures.
type chaosActions struct {
	repo *githubfake.Repo

	mu       sync.Mutex
	failNext int // how many of the next runs to complete with "failure"
	failed   int // runs failed so far
	stop     chan struct{}
	done     chan struct{}
}

func startChaosActions(repo *githubfake.Repo) *chaosActions {
	a := &chaosActions{repo: repo, stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *chaosActions) run() {
	defer close(a.done)
	tick := time.NewTicker(3 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-tick.C:
		}
		for _, run := range a.repo.WorkflowRuns() {
			if run.Status != "completed" {
				_ = a.repo.CompleteRun(run.ID, a.conclusion()) // only fails for a run already completed
			}
		}
	}
}

// conclusion is the next run's conclusion.
func (a *chaosActions) conclusion() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failNext > 0 {
		a.failNext--
		a.failed++
		return "failure"
	}
	return "success"
}

// failRuns makes the next n runs fail (builds and deploys alike: either failure stops the chain).
func (a *chaosActions) failRuns(n int) {
	a.mu.Lock()
	a.failNext = n
	a.mu.Unlock()
}

func (a *chaosActions) close() {
	close(a.stop)
	<-a.done
}

// chaosDeployment is a deployment of the fake with its payload read.
type chaosDeployment struct {
	githubfake.Deployment
	payload rollout.Payload
}

func (d chaosDeployment) state() string {
	if len(d.States) == 0 {
		return ""
	}
	return d.States[len(d.States)-1]
}

// inFlight: a claim still building or rolling out (as rollout.Deployment.InFlight).
func (d chaosDeployment) inFlight() bool {
	switch d.state() {
	case "", rollout.StateQueued, rollout.StatePending, rollout.StateInProgress:
		return true
	}
	return false
}

// succeededBefore reports whether d was marked successful before the fake handed out id.
func (d chaosDeployment) succeededBefore(id int64) bool {
	for i, st := range d.States {
		if st == rollout.StateSuccess && d.StatusIDs[i] < id {
			return true
		}
	}
	return false
}

// rolloutWorld is a snapshot of what the rollouts did: deployments by id and environment (newest first),
// build runs by claim, deploy runs by deployment.
type rolloutWorld struct {
	byID   map[int64]chaosDeployment
	byEnv  map[string][]chaosDeployment
	builds map[int64][]githubfake.WorkflowRun
	deploy map[string][]githubfake.WorkflowRun
	runs   []githubfake.WorkflowRun
}

func readRolloutWorld(repo *githubfake.Repo) (rolloutWorld, error) {
	w := rolloutWorld{byID: map[int64]chaosDeployment{}, byEnv: map[string][]chaosDeployment{},
		builds: map[int64][]githubfake.WorkflowRun{}, deploy: map[string][]githubfake.WorkflowRun{}}
	deps := repo.Deployments()
	for i := len(deps) - 1; i >= 0; i-- {
		d := chaosDeployment{Deployment: deps[i]}
		if err := json.Unmarshal(d.Payload, &d.payload); err != nil {
			return w, fmt.Errorf("deployment %d: payload %s: %v", d.ID, d.Payload, err)
		}
		w.byID[d.ID] = d
		w.byEnv[d.Environment] = append(w.byEnv[d.Environment], d)
	}
	w.runs = repo.WorkflowRuns()
	for _, r := range w.runs {
		switch r.Workflow {
		case "build.yml":
			if _, claim, ok := rollout.ParseBuildKey(r.Inputs["build_key"]); ok {
				w.builds[claim] = append(w.builds[claim], r)
			}
		case "deploy.yml":
			w.deploy[r.Inputs["deployment_id"]] = append(w.deploy[r.Inputs["deployment_id"]], r)
		}
	}
	return w, nil
}

// history lists env's deployments from deployment from on, oldest first, each with its key, its statuses
// (with the IDs that order them among every write) and its build runs.
func (w rolloutWorld) history(env string, from int64) string {
	var parts []string
	deps := w.byEnv[env]
	for i := len(deps) - 1; i >= 0; i-- {
		d := deps[i]
		if d.ID < from {
			continue
		}
		var states []string
		for j, st := range d.States {
			states = append(states, fmt.Sprintf("%s#%d", st, d.StatusIDs[j]))
		}
		var runs []string
		for _, r := range w.builds[d.ID] {
			runs = append(runs, fmt.Sprintf("run#%d %s", r.ID, r.Conclusion))
		}
		parts = append(parts, fmt.Sprintf("%d %s [%s] %v", d.ID, d.payload.Key(), strings.Join(states, " "), runs))
	}
	return strings.Join(parts, "; ")
}

// current is where env's rollout stands: its newest deployment not retired (as the controller's current).
func (w rolloutWorld) current(env string) (chaosDeployment, bool) {
	for _, d := range w.byEnv[env] {
		if d.state() != rollout.StateInactive {
			return d, true
		}
	}
	return chaosDeployment{}, false
}

// busy says what is still in flight: a run not completed or a claim not finished ("" when nothing is).
func (w rolloutWorld) busy() string {
	for _, r := range w.runs {
		if r.Status != "completed" {
			return fmt.Sprintf("run %d %q is %s", r.ID, r.DisplayTitle, r.Status)
		}
	}
	for _, env := range chaosDistributions {
		for _, d := range w.byEnv[env] {
			if d.inFlight() {
				newer := 0
				for _, o := range w.byEnv[env] {
					if o.ID > d.ID {
						newer++
					}
				}
				return fmt.Sprintf("deployment %d of %s at %.7s is %q (states %v; builds: %d; %d newer deployments of %s)",
					d.ID, env, d.payload.Ref, d.state(), d.States, len(w.builds[d.ID]), newer, env)
			}
		}
	}
	return ""
}

// inFlightUpTo reports whether env, or a distribution it is built on, has a claim in flight: /rebuild would
// answer that it is busy.
func (w rolloutWorld) inFlightUpTo(env string) bool {
	for _, e := range chaosDistributions {
		for _, d := range w.byEnv[e] {
			if d.inFlight() {
				return true
			}
		}
		if e == env {
			return false
		}
	}
	return false
}

// firstFailed is the highest distribution whose rollout stopped on a failure: /rebuild retries it.
func (w rolloutWorld) firstFailed() (string, bool) {
	for _, env := range chaosDistributions {
		if cur, ok := w.current(env); ok && (cur.state() == rollout.StateFailure || cur.state() == rollout.StateError) {
			return env, true
		}
	}
	return "", false
}

// stale says how the deployed state differs from the newest heads ("" when it does not): every distribution's
// current deployment is live, at its branch head, built on its base's current deployment.
func (w rolloutWorld) stale(repo *githubfake.Repo) string {
	var base chaosDeployment
	for i, env := range chaosDistributions {
		cur, ok := w.current(env)
		switch {
		case !ok:
			return env + " was never deployed"
		case cur.state() != rollout.StateSuccess:
			return fmt.Sprintf("%s's current deployment %d is %q", env, cur.ID, cur.state())
		case cur.payload.Ref != repo.BranchSHA(env):
			return fmt.Sprintf("%s runs %.7s (deployment %d), its branch is at %.7s", env, cur.payload.Ref, cur.ID, repo.BranchSHA(env))
		case i > 0 && cur.payload.BaseDeployment != base.ID:
			return fmt.Sprintf("%s (deployment %d) is built on %s deployment %d, which runs deployment %d", env, cur.ID, chaosDistributions[i-1], cur.payload.BaseDeployment, base.ID)
		}
		base = cur
	}
	return ""
}

// chaosRollouts drives a chaos group's rollouts to rest and checks them.
type chaosRollouts struct {
	c       *chaosCluster
	actions *chaosActions
	// nudge runs one rollout pass here, as a replica's periodic reconcile would: a pass whose trigger was lost
	// (a delivery to a dead replica) is caught by the next one.
	nudge func() error
}

func newChaosRollouts(c *chaosCluster, clients githubapp.ClientCreator) *chaosRollouts {
	h := c.h
	ctx, cancel := context.WithCancel(context.Background())
	svc := rollout.NewService(ctx, &rollout.Controller{
		Target:      (&rollout.Targets{Poll: 20 * time.Millisecond}).For,
		Registry:    &rollout.HTTPRegistry{FirstDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
		WriteSettle: chaosSettle,
	}, nil)
	h.t.Cleanup(func() { cancel(); svc.Wait() })
	repo := h.repository()
	r := &chaosRollouts{c: c, actions: startChaosActions(h.repo)}
	h.t.Cleanup(r.actions.close)
	r.nudge = func() error {
		client, err := clients.NewInstallationClient(h.fake.InstallationID())
		if err != nil {
			return err
		}
		_, err = svc.Pass(ctx, client, repo)
		return err
	}
	return r
}

// settle lets every rollout finish with nothing failing: it nudges passes while nothing moves, and
// comments /rebuild (as a maintainer, on issue) on the highest distribution that stopped on a failure,
// until the deployed state matches the newest heads. It returns why it could not, "" when it could.
func (r *chaosRollouts) settle(issue int) (rebuilds int, _ string) {
	h := r.c.h
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		r.c.settle()
		w, err := readRolloutWorld(h.repo)
		if err != nil {
			return rebuilds, err.Error()
		}
		env, failed := w.firstFailed()
		if busy := w.busy(); busy != "" && (!failed || w.inFlightUpTo(env)) {
			// A replica waits for a run whose completion it was not told about, or its pass was lost. (A
			// dependent's claim in flight behind a failed base waits for the base's /rebuild.)
			_ = r.nudge()
			continue
		}
		if failed {
			if rebuilds == 6 {
				return rebuilds, fmt.Sprintf("%s still failed after %d /rebuild comments", env, rebuilds)
			}
			rebuilds++
			if _, err := h.repo.Comment(issue, "maintainer", "/rebuild "+env); err != nil {
				return rebuilds, err.Error()
			}
			r.waitForReply(issue, "> /rebuild "+env, rebuilds)
			continue
		}
		if w.stale(h.repo) == "" {
			return rebuilds, ""
		}
		if err := r.nudge(); err != nil {
			h.t.Logf("rollout pass: %v", err)
		}
		if w, err = readRolloutWorld(h.repo); err == nil && w.busy() == "" {
			if _, failed := w.firstFailed(); !failed {
				if stale := w.stale(h.repo); stale != "" {
					return rebuilds, "after a pass with nothing failing: " + stale
				}
			}
		}
	}
	w, _ := readRolloutWorld(h.repo)
	return rebuilds, fmt.Sprintf("rollouts did not settle within 90s: %s; %s", w.busy(), w.stale(h.repo))
}

// waitForReply waits until issue holds n bot replies quoting quote (or the cluster is idle without one: a
// /rebuild that found the build busy is answered too, and the loop looks again).
func (r *chaosRollouts) waitForReply(issue int, quote string, n int) {
	h := r.c.h
	h.waitFor("the reply to "+quote, func() bool {
		replies := 0
		for _, cm := range h.repo.IssueComments(issue) {
			if strings.HasSuffix(cm.User, "[bot]") && strings.Contains(cm.Body, quote) {
				replies++
			}
		}
		return replies >= n
	})
}

// check states the rollout invariants over everything the group's rollouts did; each violation is passed to
// fail.
func checkRollouts(repo *githubfake.Repo, mergedPRs []int, fail func(format string, args ...any)) {
	w, err := readRolloutWorld(repo)
	if err != nil {
		fail("%v", err)
		return
	}
	checkBuiltOnce(w, fail)
	checkBuildOrder(w, fail)
	checkNothingStuck(w, repo, mergedPRs, fail)
	if stale := w.stale(repo); stale != "" {
		fail("deployed state does not match the newest heads: %s", stale)
	}
}

// checkBuiltOnce: no claim was dispatched twice, a Key was built again only by /rebuild, and no deployment
// was rolled out (its deploy workflow dispatched) twice.
func checkBuiltOnce(w rolloutWorld, fail func(string, ...any)) {
	byKey := map[rollout.Key][]int64{}
	for claim, runs := range w.builds {
		if len(runs) > 1 {
			fail("claim %d was dispatched %d times: %s", claim, len(runs), runTitles(runs))
		}
		d, ok := w.byID[claim]
		if !ok {
			fail("build run %q names claim %d, which is no deployment", runs[0].DisplayTitle, claim)
			continue
		}
		byKey[d.payload.Key()] = append(byKey[d.payload.Key()], claim)
	}
	for key, claims := range byKey {
		sort.Slice(claims, func(i, j int) bool { return claims[i] < claims[j] })
		for i, claim := range claims[1:] {
			d := w.byID[claim]
			earlier := w.byID[claims[i]]
			if !d.payload.Rebuild {
				fail("%s was built twice without /rebuild: claims %v (claim %d after claim %d, which ended %q); %s since: %s",
					key, claims, claim, earlier.ID, earlier.state(), key.Distribution, w.history(key.Distribution, earlier.ID))
			}
		}
	}
	for id, runs := range w.deploy {
		if len(runs) > 1 {
			fail("deployment %s was rolled out %d times: %s", id, len(runs), runTitles(runs))
		}
	}
}

// checkBuildOrder: a dependent's build was claimed, and so dispatched, only after the deployment of its base
// it is built on was live.
func checkBuildOrder(w rolloutWorld, fail func(string, ...any)) {
	for claim := range w.builds {
		d := w.byID[claim]
		if d.payload.Base == "" {
			continue
		}
		base, ok := w.byID[d.payload.BaseDeployment]
		switch {
		case !ok || base.Environment != d.payload.Base:
			fail("%s claim %d is built on %s deployment %d, which does not exist", d.Environment, claim, d.payload.Base, d.payload.BaseDeployment)
		case !base.succeededBefore(claim):
			fail("%s claim %d was built before its base %s (deployment %d, states %v) was live", d.Environment, claim, d.payload.Base, base.ID, base.States)
		}
	}
}

// checkNothingStuck: every claim finished — live, failed, or retired — and every live one has its build; a
// failed build of a merged pull request was reported on it.
func checkNothingStuck(w rolloutWorld, repo *githubfake.Repo, mergedPRs []int, fail func(string, ...any)) {
	if busy := w.busy(); busy != "" {
		fail("stuck: %s", busy)
	}
	merges := map[string]int{}
	for _, n := range mergedPRs {
		merges[repo.PullRequest(n).MergeCommitSHA] = n
	}
	for _, d := range w.byID {
		switch d.state() {
		case rollout.StateSuccess, rollout.StateInactive:
			if d.state() == rollout.StateSuccess && len(w.builds[d.ID]) == 0 {
				fail("%s deployment %d is live without a build", d.Environment, d.ID)
			}
		case rollout.StateFailure, rollout.StateError:
			pr, ok := merges[d.payload.Ref]
			if !ok || d.payload.PreviousRef == d.payload.Ref {
				continue
			}
			marker := fmt.Sprintf("<!-- storagebot:rollout:failed:%s:%d -->", d.Environment, d.ID)
			if !hasBotComment(repo, pr, marker) {
				fail("%s deployment %d of #%d's merge failed, and #%d was not told", d.Environment, d.ID, pr, pr)
			}
		}
	}
}

func hasBotComment(repo *githubfake.Repo, number int, marker string) bool {
	for _, cm := range repo.IssueComments(number) {
		if strings.HasSuffix(cm.User, "[bot]") && strings.Contains(cm.Body, marker) {
			return true
		}
	}
	return false
}

func runTitles(runs []githubfake.WorkflowRun) string {
	titles := make([]string, len(runs))
	for i, r := range runs {
		titles[i] = fmt.Sprintf("%d %q", r.ID, r.DisplayTitle)
	}
	return strings.Join(titles, ", ")
}

// rolloutPlan is the rollout part of a seed's plan: faults on the rollout's requests, and runs that fail.
type rolloutPlan struct {
	faults   []githubfake.Fault
	faultAt  []int
	failRuns int
}

func drawRolloutPlan(rng *rand.Rand, steps int) rolloutPlan {
	var p rolloutPlan
	for i, n := 0, rng.Intn(3); i < n; i++ {
		f := randomFault(rng)
		f.Route = chaosRolloutFaultRoutes[rng.Intn(len(chaosRolloutFaultRoutes))]
		if f.Route == chaosClaimRoute && (f.DropResponse || f.Latency > chaosDeadline) {
			// A claim GitHub recorded but whose answer was lost is left out: nobody dispatches its build, and
			// the controller fails it only after runAppearDeadline (5 minutes), longer than a scenario.
			f.DropResponse, f.ApplyAfter, f.Latency, f.Status = false, 0, 0, http.StatusBadGateway
		}
		p.faults = append(p.faults, f)
		p.faultAt = append(p.faultAt, rng.Intn(steps))
	}
	if rng.Intn(4) == 0 {
		p.failRuns = 1 + rng.Intn(2)
	}
	return p
}

// TestRolloutOnceWhenTwoPassesFinishOneBuild: two replicas' passes that find the same build run done at once
// roll it out once — one deploy run — and the other pass leaves it to the first. A chaos failure (seed 1 of
// the first run with rollout: "deployment 1057 was rolled out 2 times"), made deterministic: each pass waits
// for the other at the two listings between which it decides, so both decide on the same state.
func TestRolloutOnceWhenTwoPassesFinishOneBuild(t *testing.T) {
	h := newFakeHarness(t)
	setupChaosRollout(h, servingRegistry(h))
	client, err := h.fake.InstallationClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg, err := repoconfig.Load(ctx, client, "storage-org", "package-storage", "main")
	if err != nil {
		t.Fatal(err)
	}
	controller := &rollout.Controller{Target: (&rollout.Targets{Poll: 5 * time.Millisecond}).For}
	gh := func() *rollout.Client {
		return &rollout.Client{GH: client, Owner: "storage-org", Repo: "package-storage"}
	}
	// The first pass claims production's build; nothing runs it yet.
	if _, err := controller.Pass(ctx, rollout.Repo{GitHub: gh(), Config: cfg}); err != nil {
		t.Fatal(err)
	}
	runs := h.repo.WorkflowRuns()
	if len(runs) != 1 || runs[0].Workflow != "build.yml" {
		t.Fatalf("runs after the first pass = %+v, want production's build", runs)
	}
	if err := h.repo.CompleteRun(runs[0].ID, "success"); err != nil {
		t.Fatal(err)
	}
	actions := startChaosActions(h.repo) // completes every deploy run dispatched
	defer actions.close()

	meet := newRendezvous()
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer meet.leave(i)
			repo := rollout.Repo{GitHub: &meetingGitHub{Client: gh(), meet: meet, side: i}, Config: cfg}
			if _, err := controller.Pass(ctx, repo); err != nil {
				t.Errorf("pass %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	var deploys []string
	for _, r := range h.repo.WorkflowRuns() {
		if r.Workflow == "deploy.yml" {
			deploys = append(deploys, r.DisplayTitle)
		}
	}
	if len(deploys) != 1 {
		t.Errorf("deploy runs = %q, want one", deploys)
	}
}

// meetingGitHub makes its pass wait for the other one at each of the listings where a pass decides what to do
// with a finished build: the build's runs (after it read the deployment's state) and the deploy runs (after it
// marked the deployment in progress). A pass that has returned is waited for no more.
type meetingGitHub struct {
	*rollout.Client
	meet *rendezvous
	side int
}

func (m *meetingGitHub) WorkflowRuns(ctx context.Context, workflow, branch string) ([]rollout.Run, error) {
	m.meet.arrive(m.side, workflow)
	return m.Client.WorkflowRuns(ctx, workflow, branch)
}

// rendezvous lets two goroutines wait for each other at named points, once per point.
type rendezvous struct {
	mu      sync.Mutex
	arrived map[string]*[2]chan struct{}
	left    [2]chan struct{}
}

func newRendezvous() *rendezvous {
	return &rendezvous{arrived: map[string]*[2]chan struct{}{}, left: [2]chan struct{}{make(chan struct{}), make(chan struct{})}}
}

// arrive waits, the first time side reaches point, until the other side reaches it too or leaves.
func (r *rendezvous) arrive(side int, point string) {
	r.mu.Lock()
	at := r.arrived[point]
	if at == nil {
		at = &[2]chan struct{}{make(chan struct{}), make(chan struct{})}
		r.arrived[point] = at
	}
	select {
	case <-at[side]:
		r.mu.Unlock()
		return // met here before
	default:
	}
	close(at[side])
	r.mu.Unlock()
	select {
	case <-at[1-side]:
	case <-r.left[1-side]:
	}
}

func (r *rendezvous) leave(side int) { close(r.left[side]) }
