package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/palantir/go-githubapp/githubapp"
	"gopkg.in/yaml.v3"

	"github.com/storagebot/storagebot/handlers"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/reconcile"
	"github.com/storagebot/storagebot/internal/seal"
)

// chaosArgs are the serve flags of a chaos replica: a deadline per GitHub request short enough that a slow
// answer is a timeout within the test's time, yet far above what a loaded machine (or -race) takes to
// answer, so only the injected timeouts time out; a wait budget that covers the injected rate limits; a
// shutdown that abandons work in flight (a killed pod); and a reconciler that evaluates PRs at once.
var chaosArgs = []string{"--github-timeout", chaosDeadline.String(), "--github-max-wait", "10s", "--shutdown-timeout", "20ms",
	"--reconcile-interval", "0", "--reconcile-grace", "0", "--github-write-settle", chaosSettle.String()}

// The chaos world's times. A timeout fault answers chaosSlow after the request arrived, past the replicas'
// deadline chaosDeadline; GitHub finishes every request within chaosLateWrite of its arrival (a timed-out
// write lands at chaosSlow, one whose answer was dropped within ApplyAfter ≤ chaosLateWrite); replicas watch
// for a post whose answer was lost for chaosSettle, with a margin over chaosLateWrite for a loaded machine.
const (
	chaosDeadline  = 2 * time.Second
	chaosSlow      = chaosDeadline + 500*time.Millisecond
	chaosLateWrite = chaosSlow
	chaosSettle    = 2 * chaosLateWrite
)

// TestChaos runs seeded end-to-end scenarios with two serve replicas on one fake GitHub while faults are
// injected at random: server errors, secondary rate limits (403 and 429 with Retry-After) and primary ones
// (403 and 429), timeouts, writes applied whose answer is lost (at once, or landing up to chaosLateWrite
// later, as GitHub finishes a request its client gave up on), duplicate, delayed (out-of-order) and repeated
// deliveries to either replica, malformed deliveries, a replica killed mid-work and restarted, and reconciler
// runs at random moments. A secondary limit without Retry-After is left out: GitHub then asks for at least a
// minute's wait, which the client honours (tested on its own in ghclient). Every scenario also rolls out
// (see chaosRollout): the repository has three distributions (production, staging built on it, snapshot on
// staging), merges to a channel branch start builds and deploys, the test plays GitHub Actions (failing a run
// or two in some seeds), and faults hit the rollout's requests too (a claim whose answer is lost is left out:
// the controller fails it only after runAppearDeadline, 5 minutes). After each scenario the rollouts settle with nothing failing —
// a reconcile-time rollout pass when nothing moves, /rebuild by a maintainer for the highest distribution that
// failed — and one reconcile runs with nothing failing; then:
//
//   - every merged promotion has exactly one removal PR into the lower channel and one follow-up note;
//   - no /promote opened two promotion PRs or branches; no command got two replies, and one got none only when
//     its delivery was lost with a replica (GitHub does not redeliver, and the reconciler runs no commands);
//   - the newest storage-policy run of this App on every open PR head is completed with the conclusion the
//     change deserves, and repeats no annotation;
//   - a second reconcile finds nothing left to write (the rollout's writes are judged below);
//   - each distribution is built at most once per change it must build for: no build key (a claim) is
//     dispatched twice, a (distribution, head, base deployment) is built again only by /rebuild, across both
//     replicas and their restarts, and no deployment's deploy workflow is dispatched twice;
//   - dependents are built in order: a staging or snapshot build is claimed only after the base deployment it
//     is built on went live;
//   - nothing is stuck: no claim is in flight and no run unfinished, every live deployment has its build, and
//     a failed build of a merged promotion PR is reported on it;
//   - the deployed state matches the newest heads: every distribution is live at its branch head, built on
//     its base's live deployment.
//
// A seed fixes the plan (faults, routes, timings); the goroutine interleaving is the machine's. 200 seeds run
// in go test ./... (-short leaves them out). A failure prints the commands that replay its seed alone and
// with the seeds that ran before it on the same fake:
//
//	go test ./cmd/storagebot -run 'TestChaos$' -seed N
//	go test ./cmd/storagebot -run 'TestChaos$' -seeds 10 -first-seed G
//
// Run many with: go test ./cmd/storagebot -run 'TestChaos$' -seeds 2000 -timeout 60m (or
// STORAGEBOT_CHAOS_SEEDS=2000), in parts with -first-seed; -chaos-groups sets how many groups of 10 seeds
// run at once.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos scenarios take minutes; -short leaves them out")
	}
	seeds := seedList(t, 200, "STORAGEBOT_CHAOS_SEEDS")
	if *chaosGroups < 1 {
		t.Fatalf("-chaos-groups %d: want at least 1", *chaosGroups)
	}
	// The package's other tests run after this one within the same -timeout (10 minutes by default). On a
	// machine so loaded that the seeds would not fit in half the time left, the seeds not yet started are
	// left out — said in the log, never a timing failure — and a longer -timeout runs them all.
	stopAt := time.Time{}
	if deadline, ok := t.Deadline(); ok {
		stopAt = time.Now().Add(time.Until(deadline) / 2)
	}
	var mu sync.Mutex
	var totals chaosStats
	// Groups share nothing (each has its own fake GitHub and replicas) and mostly wait on timers and on each
	// other's requests, so many run at once whatever -parallel says (it counts cores, not waits).
	running := make(chan struct{}, *chaosGroups)
	var wg sync.WaitGroup
	for len(seeds) > 0 {
		n := min(chaosSeedsPerRepo, len(seeds))
		group := seeds[:n]
		running <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-running }()
			if !stopAt.IsZero() && time.Now().After(stopAt) {
				mu.Lock()
				totals.unstarted += n
				mu.Unlock()
				return
			}
			t.Run(fmt.Sprintf("seeds-%d-%d", group[0], group[n-1]), func(t *testing.T) {
				st := chaosGroup(t, group, stopAt)
				mu.Lock()
				totals.add(st)
				mu.Unlock()
			})
		}()
		seeds = seeds[n:]
	}
	wg.Wait()
	t.Logf("chaos totals: %s", totals)
	if totals.unstarted > 0 {
		t.Logf("chaos: %d of %d seeds not started, to leave the package's other tests their share of -timeout on this slow machine; run them with: go test ./cmd/storagebot -run 'TestChaos$' -timeout 60m",
			totals.unstarted, totals.unstarted+totals.seeds)
	}
}

// chaosSeedsPerRepo is how many seeds run one after the other on one fake GitHub: a fresh one every few seeds
// keeps every reconcile's listing of open PRs, whose number grows with every seed, short.
const chaosSeedsPerRepo = 10

var chaosGroups = flag.Int("chaos-groups", 10, "TestChaos: how many groups of 10 seeds run at once")

// chaosRollout adds the rollout to every scenario; on by default. -chaos-rollout=false (or
// STORAGEBOT_CHAOS_ROLLOUT=0) leaves it out, to tell a rollout failure from one of the rest.
var chaosRollout = flag.Bool("chaos-rollout", os.Getenv("STORAGEBOT_CHAOS_ROLLOUT") != "0", "TestChaos: roll out distributions in every scenario, with faults on the rollout's requests")

// chaosStats counts what the scenarios injected and what the bot did, for the benchmark record.
type chaosStats struct {
	seeds, faults, faultsHit, late, kills, reconciles, duplicates, delayed, lost, merged, commands int
	builds, rolloutFaults, failedRuns, rebuilds                                                    int
	unstarted                                                                                      int // left out to fit -timeout
}

func (s *chaosStats) add(o chaosStats) {
	s.seeds += o.seeds
	s.faults += o.faults
	s.faultsHit += o.faultsHit
	s.late += o.late
	s.unstarted += o.unstarted
	s.kills += o.kills
	s.reconciles += o.reconciles
	s.duplicates += o.duplicates
	s.delayed += o.delayed
	s.lost += o.lost
	s.merged += o.merged
	s.commands += o.commands
	s.builds += o.builds
	s.rolloutFaults += o.rolloutFaults
	s.failedRuns += o.failedRuns
	s.rebuilds += o.rebuilds
}

func (s chaosStats) String() string {
	return fmt.Sprintf("%d seeds; %d faults injected (%d hit a request; %d of them answers lost to writes landing late; %d on rollout requests); %d replica kills; %d reconcile runs; deliveries: %d duplicated, %d delayed, %d lost to a dead replica; %d promotions merged; %d /promote commands; rollout: %d builds, %d runs failed on purpose, %d /rebuild comments",
		s.seeds, s.faults, s.faultsHit, s.late, s.rolloutFaults, s.kills, s.reconciles, s.duplicates, s.delayed, s.lost, s.merged, s.commands, s.builds, s.failedRuns, s.rebuilds)
}

// chaosReplica is one serve process of the pair; it is replaced by a new process (new port, nothing in
// memory) when killed.
type chaosReplica struct {
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// chaosCluster is two replicas behind a webhook router that decides, per delivery and from the seed, which
// replica gets it, whether both do, and whether it is held back so later deliveries overtake it.
type chaosCluster struct {
	h      *harness
	config string // the serve configuration file naming this cluster's fake GitHub and App

	mu       sync.Mutex
	rng      *rand.Rand
	replicas [2]*chaosReplica // nil while dead
	past     []recordedDelivery
	stats    *chaosStats
	held     int // delayed deliveries not yet sent (guarded by mu; a WaitGroup would race its Add against settle's Wait)
	// firstSeed is the group's first seed, for the replay command.
	firstSeed int64
	rollouts  *chaosRollouts
}

type recordedDelivery struct {
	header http.Header
	body   []byte
}

// random runs f with the seed's generator.
func (c *chaosCluster) random(f func(r *rand.Rand)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.rng)
}

func (c *chaosCluster) startReplica(i int) {
	r := &chaosReplica{logs: &syncBuffer{}}
	r.addr, r.cancel, r.done = c.h.launch(r.logs, append([]string{"--config", c.config}, chaosArgs...)...)
	c.mu.Lock()
	c.replicas[i] = r
	c.mu.Unlock()
}

// kill stops replica i with work possibly in flight (the short shutdown timeout abandons it) and starts a new
// process in its place, whose reconciler runs at once.
func (c *chaosCluster) kill(i int) {
	c.mu.Lock()
	r := c.replicas[i]
	c.replicas[i] = nil
	c.stats.kills++
	c.mu.Unlock()
	r.cancel()
	select {
	case <-r.done: // a non-zero exit is expected: the drain was cut short
	case <-time.After(30 * time.Second):
		c.h.t.Errorf("replica %s did not stop within 30s", r.addr)
	}
	c.startReplica(i)
}

func (c *chaosCluster) stopAll() {
	for i := range c.replicas {
		c.mu.Lock()
		r := c.replicas[i]
		c.replicas[i] = nil
		c.mu.Unlock()
		if r == nil {
			continue
		}
		r.cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			c.h.t.Errorf("replica %s did not stop within 30s", r.addr)
		}
	}
}

// forward sends a delivery to replica i; a dead replica loses it, as a pod gone between GitHub's connection
// and its answer does (GitHub does not redeliver on its own).
func (c *chaosCluster) forward(i int, header http.Header, body []byte) int {
	c.mu.Lock()
	r := c.replicas[i]
	if r == nil {
		c.stats.lost++
	}
	c.mu.Unlock()
	if r == nil {
		return http.StatusBadGateway
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+r.addr+"/api/github/hook", bytes.NewReader(body))
	if err != nil {
		return http.StatusBadGateway
	}
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.mu.Lock()
		c.stats.lost++
		c.mu.Unlock()
		return http.StatusBadGateway
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (c *chaosCluster) route(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	header := r.Header.Clone()
	var first int
	var both bool
	var delay time.Duration
	c.random(func(rng *rand.Rand) {
		first = rng.Intn(2)
		both = rng.Intn(8) == 0
		if rng.Intn(8) == 0 {
			delay = time.Duration(1+rng.Intn(40)) * time.Millisecond
		}
		c.past = append(c.past, recordedDelivery{header: header, body: body})
		if both {
			c.stats.duplicates++
		}
		if delay > 0 {
			c.stats.delayed++
			c.held++
		}
	})
	if delay > 0 {
		// Acknowledged now, handled later: the deliveries after it overtake it.
		go func() {
			defer func() {
				c.mu.Lock()
				c.held--
				c.mu.Unlock()
			}()
			time.Sleep(delay)
			c.forward(first, header, body)
		}()
		w.WriteHeader(http.StatusOK)
		return
	}
	if both {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); c.forward(1-first, header, body) }()
		code := c.forward(first, header, body)
		wg.Wait()
		w.WriteHeader(code)
		return
	}
	w.WriteHeader(c.forward(first, header, body))
}

// redeliverOne sends an earlier delivery again, to either replica, as GitHub's "Redeliver" does (same
// delivery ID), long after the events that followed it.
func (c *chaosCluster) redeliverOne() {
	var d recordedDelivery
	var to int
	ok := false
	c.random(func(rng *rand.Rand) {
		if len(c.past) == 0 {
			return
		}
		d, to, ok = c.past[rng.Intn(len(c.past))], rng.Intn(2), true
		c.stats.duplicates++
	})
	if ok {
		c.forward(to, d.header, d.body)
	}
}

// badDelivery sends replica i one malformed delivery of kind 0 (no signature), 1 (signed, not JSON) or 2
// (signed, a pull_request event without its pull request) and returns the status and the answer's text. A
// dead replica answers 0.
func (c *chaosCluster) badDelivery(i, kind int, seed int64) (int, string) {
	c.mu.Lock()
	r := c.replicas[i]
	c.mu.Unlock()
	if r == nil {
		return 0, ""
	}
	body := []byte(`{"action":"opened","number":1,"pull_request":null,"installation":{"id":` + fmt.Sprint(c.h.fake.InstallationID()) + `}}`)
	if kind == 1 {
		body = []byte(`{"action":"opened",`)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+r.addr+"/api/github/hook", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("chaos-bad-%d-%d", seed, kind))
	if kind != 0 {
		req.Header.Set("X-Hub-Signature-256", sign(c.h.fake.WebhookSecret(), body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error() // killed while answering
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// settle waits until no delivery is held back, no replica has an event or a rollout pass in flight, and the
// fake saw no request for a while (a replica's start-up reconcile runs outside any event).
func (c *chaosCluster) settle() { c.settleAll(false) }

// settleAll settles; with rechecks, it also waits until no replica has a late look for a duplicate comment
// pending (due the write-settle time after each post), as the invariants need.
func (c *chaosCluster) settleAll(rechecks bool) {
	h := c.h
	h.t.Helper()
	quietSince, lastCalls := time.Now(), -1
	h.waitFor("the chaos cluster to settle", func() bool {
		c.mu.Lock()
		replicas, held := c.replicas, c.held
		c.mu.Unlock()
		if held > 0 {
			quietSince, lastCalls = time.Now(), -1
			return false
		}
		for _, r := range replicas {
			if r != nil && (!eventsIdle(r.addr) || !rolloutsIdle(r.addr) || (rechecks && !rechecksIdle(r.addr))) {
				quietSince, lastCalls = time.Now(), -1
				return false
			}
		}
		calls := totalCalls(h.fake) + len(h.fake.Deliveries())
		if calls != lastCalls || h.fake.LateWrites() > 0 {
			quietSince, lastCalls = time.Now(), calls
			return false
		}
		return time.Since(quietSince) > 80*time.Millisecond
	})
}

func totalCalls(fake *githubfake.Server) int {
	n := 0
	for _, v := range fake.CallCounts() {
		n += v
	}
	return n
}

// writeCalls counts the requests that change something in the repository (an installation token is no
// change: the reconciler's client fetches a new one when it likes).
func writeCalls(fake *githubfake.Server) int {
	n := 0
	for route, v := range fake.CallCounts() {
		if !strings.HasPrefix(route, "GET ") && !notReconcileWrites[route] {
			n += v
		}
	}
	return n
}

// notReconcileWrites are requests that change nothing a reconcile answers for: tokens, GraphQL queries (the
// bot sends no mutations), and the Storage dashboard issue, which the replicas bring up to date on their own
// debounced schedule whenever a repository changed.
var notReconcileWrites = map[string]bool{
	"POST /app/installations/{installation_id}/access_tokens": true,
	"POST /graphql":                                     true,
	"POST /repos/{owner}/{repo}/issues":                 true,
	"PATCH /repos/{owner}/{repo}/issues/{issue_number}": true,
	// The rollout's writes: the replicas' passes may still mark a deployment already finished by the other
	// replica (a pass woken late), and the rollout invariants judge them on their own.
	"POST /repos/{owner}/{repo}/deployments":                                true,
	"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses":       true,
	"POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches": true,
}

// chaosFaultRoutes are the routes faults are injected on: every write the bot makes, and the reads its
// look-before-create decisions rest on.
var chaosFaultRoutes = []string{
	"POST /repos/{owner}/{repo}/check-runs",
	"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"POST /repos/{owner}/{repo}/pulls",
	"PATCH /repos/{owner}/{repo}/pulls/{pull_number}",
	"POST /repos/{owner}/{repo}/git/refs",
	"PATCH /repos/{owner}/{repo}/git/refs/{ref:.+}",
	"POST /repos/{owner}/{repo}/git/trees",
	"POST /repos/{owner}/{repo}/git/commits",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/labels",
	"POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
	"GET /repos/{owner}/{repo}/pulls",
	"GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
	"GET /repos/{owner}/{repo}/git/ref/{ref:.+}",
	"GET /repos/{owner}/{repo}/compare/{basehead}",
	"",
}

// randomFault draws one fault. Rate limits are rarer than the rest: each holds every request of the
// installation for a second or two, as GitHub's do.
func randomFault(rng *rand.Rand) githubfake.Fault {
	f := githubfake.Fault{Route: chaosFaultRoutes[rng.Intn(len(chaosFaultRoutes))], Times: 1}
	switch k := rng.Intn(40); {
	case k < 8:
		f.Status = []int{500, 502, 503}[rng.Intn(3)]
	case k < 18: // the write is applied, its answer lost: a 502 from a proxy, or the connection cut
		f.DropResponse = true
		if rng.Intn(2) == 0 {
			f.Status = http.StatusBadGateway
		}
		if rng.Intn(2) == 0 {
			// ... and GitHub finishes it only later: the next reads do not show it yet.
			f.ApplyAfter = time.Duration(1+rng.Intn(int(chaosLateWrite/time.Millisecond))) * time.Millisecond
		}
	case k < 26: // no answer within the replica's deadline
		f.Latency = chaosSlow
	case k < 30:
		f.Latency = time.Duration(20+rng.Intn(100)) * time.Millisecond
	case k < 36:
		f.Status = http.StatusBadGateway
		f.Latency = time.Duration(rng.Intn(50)) * time.Millisecond
	case k == 36:
		f.RateLimit, f.Status, f.RetryAfter = githubfake.SecondaryLimit, http.StatusForbidden, "1"
	case k == 37:
		f.RateLimit, f.Status, f.RetryAfter = githubfake.SecondaryLimit, http.StatusTooManyRequests, "1"
	case k == 38:
		f.RateLimit, f.Status, f.ResetIn = githubfake.PrimaryLimit, http.StatusTooManyRequests, time.Second
	default:
		f.RateLimit, f.Status, f.ResetIn = githubfake.PrimaryLimit, http.StatusForbidden, time.Second
	}
	return f
}

// chaosGroup runs seeds one after the other on one fake GitHub with two replicas.
func chaosGroup(t *testing.T, seeds []int64, stopAt time.Time) chaosStats {
	h := newFakeHarness(t)
	h.repo.SetPermission("writer", "write")
	h.repo.SetPermission("maintainer", "maintain")
	if *chaosRollout {
		setupChaosRollout(h, servingRegistry(h))
	}
	stats := chaosStats{}
	c := &chaosCluster{h: h, config: chaosConfig(t, h.fake), stats: &stats, rng: rand.New(rand.NewSource(0)), firstSeed: seeds[0]}
	c.startReplica(0)
	c.startReplica(1)
	t.Cleanup(c.stopAll)
	router := httptest.NewServer(http.HandlerFunc(c.route))
	t.Cleanup(router.Close)
	t.Cleanup(func() { h.fake.SetWebhookURL("") })
	h.fake.SetWebhookURL(router.URL + "/api/github/hook")
	clients := reconcileClients(t, "--config", c.config)
	if *chaosRollout {
		// The replicas' start-up reconciles build and roll out every distribution a first time.
		c.rollouts = newChaosRollouts(c, clients)
		if _, why := c.rollouts.settle(h.repo.OpenIssue("Rollouts of the chaos group", "", "alice")); why != "" {
			t.Fatalf("seeds %d-%d: the first rollouts, nothing failing: %s", seeds[0], seeds[len(seeds)-1], why)
		}
	}

	for i, seed := range seeds {
		if !stopAt.IsZero() && time.Now().After(stopAt) {
			stats.unstarted += len(seeds) - i
			break
		}
		if !chaosSeed(t, c, clients, seed) {
			break
		}
		stats.seeds++
	}
	if c.rollouts == nil {
		return stats
	}
	for _, r := range h.repo.WorkflowRuns() {
		if r.Workflow == "build.yml" {
			stats.builds++
		}
	}
	c.rollouts.actions.mu.Lock()
	stats.failedRuns = c.rollouts.actions.failed
	c.rollouts.actions.mu.Unlock()
	return stats
}

// chaosSeed runs one scenario; it returns false when the seed failed (the fake's state is then unreliable for
// the next seeds).
func chaosSeed(t *testing.T, c *chaosCluster, clients githubapp.ClientCreator, seed int64) bool {
	h := c.h
	c.mu.Lock()
	c.rng = rand.New(rand.NewSource(seed))
	c.past = nil
	c.mu.Unlock()
	replay := fmt.Sprintf("replay with: go test ./cmd/storagebot -run 'TestChaos$' -seed %d (alone), or -seeds %d -first-seed %d (after the seeds before it on the same fake)",
		seed, chaosSeedsPerRepo, c.firstSeed)
	failedBefore := t.Failed()

	// The plan, all drawn from the seed before anything runs.
	var plan struct {
		faults        []githubfake.Fault
		faultAt       []int // the step before which each fault is injected
		badPR         bool
		command       bool
		mergeCommand  bool
		kill          int // the step before which a replica is killed; -1 = none
		killWhich     int
		reconcileAt   []time.Duration
		redeliveries  int
		bad, badTo    int // a malformed delivery of this kind (see badDelivery) to this replica
		stepGaps      []time.Duration
		promoteMethod string
		rollout       rolloutPlan
	}
	const steps = 5
	c.random(func(rng *rand.Rand) {
		for i, n := 0, 1+rng.Intn(4); i < n; i++ {
			plan.faults = append(plan.faults, randomFault(rng))
			plan.faultAt = append(plan.faultAt, rng.Intn(steps))
		}
		plan.badPR = rng.Intn(2) == 0
		plan.command = rng.Intn(2) == 0
		plan.mergeCommand = rng.Intn(2) == 0
		plan.kill = -1
		if rng.Intn(3) == 0 {
			plan.kill, plan.killWhich = rng.Intn(steps), rng.Intn(2)
		}
		for i, n := 0, rng.Intn(3); i < n; i++ {
			plan.reconcileAt = append(plan.reconcileAt, time.Duration(rng.Intn(60))*time.Millisecond)
		}
		plan.redeliveries = rng.Intn(3)
		plan.bad, plan.badTo = rng.Intn(3), rng.Intn(2)
		for i := 0; i < steps; i++ {
			plan.stepGaps = append(plan.stepGaps, time.Duration(rng.Intn(15))*time.Millisecond)
		}
		plan.promoteMethod = []string{"merge", "squash", "rebase"}[rng.Intn(3)]
		plan.rollout = drawRolloutPlan(rng, steps) // drawn last: the plans of the seeds before rollout are kept
		if !*chaosRollout {
			plan.rollout = rolloutPlan{}
		}
	})

	fail := func(format string, args ...any) {
		t.Helper()
		var logs strings.Builder
		c.mu.Lock()
		for i, r := range c.replicas {
			if r != nil {
				fmt.Fprintf(&logs, "replica %d logs:\n%s\n", i, tail(r.logs.String(), 25))
			}
		}
		c.mu.Unlock()
		t.Errorf("seed %d: %s; %s\nplan: kill before step %d, faults %+v at steps %v, rollout faults %+v at steps %v, %d runs failing\n%s",
			seed, fmt.Sprintf(format, args...), replay, plan.kill, plan.faults, plan.faultAt, plan.rollout.faults, plan.rollout.faultAt, plan.rollout.failRuns, logs.String())
	}
	pkg := func(s string) string { return fmt.Sprintf("chaos%d%s", seed, s) }
	goodFiles := pkgFiles(pkg("a"), "1.0.0", 3, "")
	promoFiles := pkgFiles(pkg("p"), "1.0.0", 3, "")
	cmdFiles := pkgFiles(pkg("c"), "1.0.0", 3, "")
	badName := pkg("b")
	h.commit("snapshot", "add "+pkg("p"), promoFiles)
	h.commit("snapshot", "add "+pkg("c"), cmdFiles)
	if plan.badPR {
		h.commit("staging", "add "+badName, pkgFiles(badName, "1.0.0", 2, ""))
	}
	issue := h.repo.OpenIssue("Promotions of seed "+itoa(int(seed)), "", "alice")
	firstNumber := issue
	c.settle()
	h.fake.ResetCalls()
	c.mu.Lock()
	lostBefore := c.stats.lost
	c.mu.Unlock()
	if c.rollouts != nil {
		c.rollouts.actions.failRuns(plan.rollout.failRuns)
	}

	var bg sync.WaitGroup
	start := time.Now()
	for _, at := range plan.reconcileAt {
		bg.Add(1)
		go func(at time.Duration) {
			defer bg.Done()
			time.Sleep(time.Until(start.Add(at)))
			c.mu.Lock()
			c.stats.reconciles++
			c.mu.Unlock()
			// Errors are expected while faults are injected; the final reconcile must succeed.
			_ = chaosReconciler(t, h.fake, clients, false).RunOnce(context.Background())
		}(at)
	}

	type openPR struct {
		number int
		want   string // expected conclusion of the newest run
	}
	var open []openPR
	var merged []int // promotion PRs merged into staging
	var commandID int64
	for step := 0; step < steps; step++ {
		for i, f := range plan.faults {
			if plan.faultAt[i] == step {
				h.fake.InjectFault(f)
				c.mu.Lock()
				c.stats.faults++
				if f.ApplyAfter > 0 || f.Latency > chaosDeadline {
					c.stats.late++
				}
				c.mu.Unlock()
			}
		}
		for i, f := range plan.rollout.faults {
			if plan.rollout.faultAt[i] == step {
				h.fake.InjectFault(f)
				c.mu.Lock()
				c.stats.faults++
				c.stats.rolloutFaults++
				c.mu.Unlock()
			}
		}
		if plan.kill == step {
			bg.Add(1)
			go func() { defer bg.Done(); c.kill(plan.killWhich) }()
		}
		time.Sleep(plan.stepGaps[step])
		switch step {
		case 0:
			pr := h.openPR("snapshot", pkg("a"), "[snapshot] Add "+pkg("a")+"@1.0.0", goodFiles)
			open = append(open, openPR{pr.Number, "success"})
		case 1:
			if plan.command {
				cm, err := h.repo.Comment(issue, "writer", "/promote "+pkg("c")+"@1.0.0")
				if err != nil {
					t.Fatalf("seed %d: comment: %v", seed, err)
				}
				commandID = cm.ID
				c.mu.Lock()
				c.stats.commands++
				c.mu.Unlock()
			}
		case 2:
			// Bad input: the sender is told what is wrong (a 4xx with a reason, or, for a payload only the
			// handler can judge, an acceptance followed by a logged refusal), and the replica keeps serving.
			code, msg := c.badDelivery(plan.badTo, plan.bad, seed)
			switch {
			case code == 0, code == http.StatusServiceUnavailable && strings.Contains(msg, "shutting down"):
				// The replica was being killed: refused (503, redeliver later) or gone.
			case plan.bad < 2 && (code < 400 || code >= 500 || strings.TrimSpace(msg) == ""):
				fail("malformed delivery (kind %d) answered %d %q, want a 4xx saying what is wrong", plan.bad, code, msg)
			case plan.bad == 2 && code >= 500 && code != http.StatusServiceUnavailable:
				fail("a pull_request delivery without its pull request answered %d %q", code, msg)
			}
			if plan.badPR {
				// An edit of a version staging already holds: the overwrite rule fails it.
				pr := h.openPR("staging", pkg("b"), "[staging] Edit "+badName+"@1.0.0", map[string]*githubfake.File{
					"packages/" + badName + "/1.0.0/data_stream/ds1/fields/fields.yml": {Content: []byte("- name: changed\n")},
				})
				open = append(open, openPR{pr.Number, "failure"})
			}
		case 3:
			pr := h.openPR("staging", pkg("p"), "[staging] Promote "+pkg("p")+"@1.0.0", promoFiles)
			if _, err := h.repo.MergePullRequest(pr.Number, plan.promoteMethod); err != nil {
				t.Fatalf("seed %d: merge #%d: %v", seed, pr.Number, err)
			}
			merged = append(merged, pr.Number)
		case 4:
			if plan.command && plan.mergeCommand {
				// The bot's promotion PR, when it is already there: merged like any reviewed promotion.
				for _, pr := range h.pullsInto("staging", promotion.PromoteBranchPrefix) {
					if pr.State == "open" && strings.Contains(pr.Title, pkg("c")+"@1.0.0") {
						if _, err := h.repo.MergePullRequest(pr.Number, "merge"); err == nil {
							merged = append(merged, pr.Number)
						}
					}
				}
			}
		}
	}
	for i := 0; i < plan.redeliveries; i++ {
		c.redeliverOne()
	}
	bg.Wait()
	c.mu.Lock()
	c.stats.merged += len(merged)
	c.mu.Unlock()
	hit := len(plan.faults) + len(plan.rollout.faults) - h.fake.PendingFaults()
	c.mu.Lock()
	c.stats.faultsHit += hit
	c.mu.Unlock()

	// Faults end; whatever they left undone, one reconcile (every in-progress run counts as abandoned: nothing
	// is evaluating any more) finishes.
	h.fake.ClearFaults()
	c.settle()
	if c.rollouts != nil {
		c.rollouts.actions.failRuns(0)
		rebuilds, why := c.rollouts.settle(issue)
		if why != "" {
			fail("rollouts did not come to rest: %s", why)
		}
		c.mu.Lock()
		c.stats.rebuilds += rebuilds
		c.mu.Unlock()
	}
	if err := chaosReconciler(t, h.fake, clients, true).RunOnce(context.Background()); err != nil {
		fail("final reconcile: %v", err)
	}
	c.settleAll(true) // the late looks for duplicate replies too

	// Exactly one removal PR per merged promotion, named after it, and one follow-up note on it.
	var removals []githubfake.PullRequest
	for _, pr := range h.pullsInto("snapshot", promotion.RemoveBranchPrefix) {
		if pr.Number > firstNumber {
			removals = append(removals, pr)
		}
	}
	if len(removals) != len(merged) {
		fail("removal PRs = %s, want one for each merged promotion %v", prList(removals), merged)
	}
	for _, m := range merged {
		want := promotion.RemoveBranchPrefix + "snapshot/pr-" + itoa(m)
		n := 0
		for _, rm := range removals {
			if rm.Head == want {
				n++
				open = append(open, openPR{rm.Number, "success"})
			}
		}
		if n != 1 {
			fail("removal PRs for #%d (%s) = %d, want 1; all: %s", m, want, n, prList(removals))
		}
		notes := 0
		for _, cm := range h.repo.IssueComments(m) {
			if strings.HasSuffix(cm.User, "[bot]") && strings.Contains(cm.Body, fmt.Sprintf("<!-- storagebot:followup pr-%d ", m)) {
				notes++
			}
		}
		if notes != 1 {
			fail("follow-up notes on #%d = %d, want 1", m, notes)
		}
	}

	// No duplicate promotion PRs or branches, no duplicate replies.
	if plan.command {
		var promos []githubfake.PullRequest
		for _, pr := range h.pullsInto("staging", promotion.PromoteBranchPrefix) {
			if pr.Number > firstNumber {
				promos = append(promos, pr)
			}
		}
		if len(promos) > 1 {
			fail("promotion PRs for one /promote = %s, want at most one", prList(promos))
		}
		for _, pr := range promos {
			if pr.State == "open" {
				open = append(open, openPR{pr.Number, "success"})
			}
		}
		if branches := refsWithPrefix(t, h.repo, "refs/heads/"+promotion.PromoteBranchPrefix+"staging/"+pkg("c")); len(branches) > 1 {
			fail("promotion branches for one /promote = %v, want at most one", branches)
		}
		replies := 0
		for _, cm := range h.repo.IssueComments(issue) {
			if strings.HasSuffix(cm.User, "[bot]") && strings.Contains(cm.Body, "> /promote "+pkg("c")+"@1.0.0") {
				replies++
				if strings.Contains(cm.Body, "✅") && len(promos) != 1 {
					fail("the reply promises a promotion PR, but there are %d: %s", len(promos), prList(promos))
				}
			}
		}
		c.mu.Lock()
		lost := c.stats.lost > lostBefore
		c.mu.Unlock()
		switch {
		case replies > 1:
			fail("replies to comment %d = %d, want at most one", commandID, replies)
		case replies == 0 && plan.kill < 0 && !lost:
			// Only a delivery lost with a replica goes unanswered: GitHub does not redeliver it, nor does the
			// reconciler run commands.
			fail("replies to comment %d = 0, want one: no replica died and no delivery was lost", commandID)
		}
	}

	// The newest run of this App on every open PR's head: completed, right conclusion, no annotation twice.
	for _, o := range open {
		pr := h.repo.PullRequest(o.number)
		if pr.State != "open" {
			continue
		}
		run, ok := newestRun(h, pr.HeadSHA)
		switch {
		case !ok:
			fail("#%d (%s): no storage-policy run on %s", pr.Number, pr.Head, pr.HeadSHA[:7])
		case run.Status != "completed" || run.Conclusion != o.want:
			fail("#%d (%s): newest storage-policy run %d is %s/%s, want completed/%s: %s", pr.Number, pr.Head, run.ID, run.Status, run.Conclusion, o.want, run.Title)
		}
		seen := map[githubfake.Annotation]bool{}
		for _, a := range run.Annotations {
			if seen[a] {
				fail("#%d: run %d repeats annotation %+v", pr.Number, run.ID, a)
			}
			seen[a] = true
		}
	}

	// Nothing left undone: a second reconcile writes nothing.
	before, beforeCounts := writeCalls(h.fake), h.fake.CallCounts()
	if err := chaosReconciler(t, h.fake, clients, true).RunOnce(context.Background()); err != nil {
		fail("second reconcile: %v", err)
	}
	if n := writeCalls(h.fake) - before; n != 0 {
		wrote := map[string]int{}
		for route, v := range h.fake.CallCounts() {
			if d := v - beforeCounts[route]; d != 0 && !strings.HasPrefix(route, "GET ") && !notReconcileWrites[route] {
				wrote[route] = d
			}
		}
		fail("a second reconcile wrote %d times (%v); the first left work undone", n, wrote)
	}

	if c.rollouts != nil {
		checkRollouts(h.repo, merged, fail)
	}

	return t.Failed() == failedBefore
}

// newestRun is this App's newest storage-policy run on sha.
func newestRun(h *harness, sha string) (githubfake.CheckRun, bool) {
	var out githubfake.CheckRun
	found := false
	for _, r := range h.repo.CheckRuns(sha) {
		if r.Name == "storage-policy" && r.AppID == h.fake.AppID() && (!found || r.ID > out.ID) {
			out, found = r, true
		}
	}
	return out, found
}

func prList(prs []githubfake.PullRequest) string {
	parts := make([]string, 0, len(prs))
	for _, pr := range prs {
		parts = append(parts, fmt.Sprintf("#%d %s (%s) %q", pr.Number, pr.Head, pr.State, pr.Title))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// refsWithPrefix lists the repository's refs starting with prefix, read from its git storage.
func refsWithPrefix(t *testing.T, repo *githubfake.Repo, prefix string) []string {
	t.Helper()
	iter, err := repo.Storer().IterReferences()
	if err != nil {
		t.Fatalf("list refs: %v", err)
	}
	var out []string
	_ = iter.ForEach(func(r *plumbing.Reference) error {
		if strings.HasPrefix(r.Name().String(), prefix) {
			out = append(out, r.Name().String())
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// chaosReconciler is a reconciler as a replica has it, checks included. final makes it take every
// in-progress run for abandoned: it runs when nothing else is evaluating.
func chaosReconciler(t testing.TB, fake *githubfake.Server, clients githubapp.ClientCreator, final bool) *reconcile.Runner {
	markerKey, err := seal.FromPrivateKeyPEM(fake.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	app := handlers.New(handlers.Deps{Clients: clients, Seal: markerKey, AppID: fake.AppID()})
	r := reconcile.NewRunner(clients, app.Promotions(), app.Checks(), 0, nil)
	if final {
		r.StaleAfter = 0
	}
	return r
}

// TestCommandAnsweredOnce: a command comment delivered again (GitHub's Redeliver, the same delivery reaching
// both replicas) is answered once, and its commands do not run again.
func TestCommandAnsweredOnce(t *testing.T) {
	h, second, issue := promoteOnTwoReplicas(t)
	if _, err := h.repo.Comment(issue, "writer", "/promote foo@1.0.0"); err != nil {
		t.Fatal(err)
	}
	h.botReply(issue, "> /promote foo@1.0.0")
	h.settleAt(h.addr)
	h.settleAt(second.addr)
	var delivery githubfake.Delivery
	for _, d := range h.fake.Deliveries() {
		if d.Event == "issue_comment" && d.Action == "created" && strings.Contains(string(d.Body), "/promote foo@1.0.0") {
			delivery = d
		}
	}
	if code := h.redeliver(delivery); code != http.StatusOK {
		t.Fatalf("redelivery = %d", code)
	}
	h.settleAt(h.addr)
	h.settleAt(second.addr)
	replies := h.promoteReplies(issue)
	prs := h.pullsInto("staging", promotion.PromoteBranchPrefix)
	if len(prs) != 1 {
		t.Fatalf("promotion PRs = %s, want 1", prList(prs))
	}
	// Either replica's answer may be the one kept ("Opened" or "Found the existing"); both link the PR.
	if !strings.Contains(replies[0], "✅") || !strings.Contains(replies[0], "promotion PR #"+itoa(prs[0].Number)+" ") {
		t.Errorf("the reply does not link promotion PR #%d:\n%s", prs[0].Number, replies[0])
	}
}

// promoteOnTwoReplicas starts two replicas that each get every comment delivery at once, with a writer, a
// snapshot version foo@1.0.0 to promote and an issue to comment /promote on.
func promoteOnTwoReplicas(t *testing.T, args ...string) (h *harness, second *replica, issue int) {
	h = newHarness(t, args...)
	second = h.startReplica(args...)
	h.repo.SetPermission("writer", "write")
	h.commit("snapshot", "add foo", pkgFiles("foo", "1.0.0", 2, ""))
	issue = h.repo.OpenIssue("Promotions", "", "alice")
	h.routeWebhooks(func(event, action string) []string {
		if event == "issue_comment" {
			return []string{h.addr, second.addr}
		}
		return []string{h.addr}
	})
	return h, second, issue
}

// promoteReplies returns the bot's one reply to "/promote foo@1.0.0" on issue, failing the test when there
// are more or none.
func (h *harness) promoteReplies(issue int) []string {
	h.t.Helper()
	var replies []string
	for _, c := range h.repo.IssueComments(issue) {
		if strings.HasSuffix(c.User, "[bot]") && strings.Contains(c.Body, "> /promote foo@1.0.0") {
			replies = append(replies, c.Body)
		}
	}
	if len(replies) != 1 {
		h.t.Fatalf("replies = %d, want 1:\n%s", len(replies), strings.Join(replies, "\n----\n"))
	}
	return replies
}

// TestLateReplyAnsweredOnce: a reply whose answer is lost and which GitHub applies late — after the other
// replica, handling the same delivery, has looked and answered — leaves one reply; so does a reply GitHub
// never applied, posted again once it could no longer land. Each case is one of the chaos runs' failures,
// made deterministic.
func TestLateReplyAnsweredOnce(t *testing.T) {
	route := "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
	tests := []struct {
		name  string
		fault githubfake.Fault
	}{
		{"answered after the deadline", githubfake.Fault{Route: route, Latency: chaosSlow, Times: 1}},
		{"answer lost, applied later", githubfake.Fault{Route: route, DropResponse: true, Status: http.StatusBadGateway, ApplyAfter: chaosLateWrite, Times: 1}},
		{"answer lost, never applied", githubfake.Fault{Route: route, Status: http.StatusBadGateway, Times: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--github-timeout", chaosDeadline.String(), "--github-write-settle", chaosSettle.String()}
			h, second, issue := promoteOnTwoReplicas(t, args...)
			h.fake.InjectFault(tc.fault)
			if _, err := h.repo.Comment(issue, "writer", "/promote foo@1.0.0"); err != nil {
				t.Fatal(err)
			}
			h.botReply(issue, "> /promote foo@1.0.0")
			h.waitFor("every replica idle and every late write landed", func() bool {
				return eventsIdle(h.addr) && eventsIdle(second.addr) && h.fake.LateWrites() == 0
			})
			if h.fake.PendingFaults() != 0 {
				t.Fatalf("the fault on %s hit no request", route)
			}
			h.promoteReplies(issue) // exactly one
		})
	}
}

// chaosConfig writes a serve configuration file for fake's App. The App goes in a file, not the environment,
// so groups with their own fake GitHub run in parallel.
func chaosConfig(t *testing.T, fake *githubfake.Server) string {
	t.Helper()
	var cfg struct {
		GitHub githubapp.Config `yaml:"github"`
	}
	cfg.GitHub.V3APIURL, cfg.GitHub.WebURL = fake.URL(), fake.WebURL()
	cfg.GitHub.App.IntegrationID = fake.AppID()
	cfg.GitHub.App.PrivateKey = string(fake.PrivateKeyPEM())
	cfg.GitHub.App.WebhookSecret = fake.WebhookSecret()
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "storagebot.yml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
