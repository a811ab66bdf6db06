package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palantir/go-githubapp/githubapp"

	"github.com/storagebot/storagebot/handlers"
	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/reconcile"
	"github.com/storagebot/storagebot/internal/seal"
)

var (
	raceSeed  = flag.Int64("seed", -1, "seeded tests (TestRemovalRace, TestChaos): replay only this seed")
	firstSeed = flag.Int64("first-seed", 1, "seeded tests: the first of the -seeds seeds (to run a long range in parts)")
	raceSeeds = flag.Int("seeds", 0, "seeded tests: how many seeds to run (TestRemovalRace: 30 or $STORAGEBOT_RACE_SEEDS; TestChaos: 200 or $STORAGEBOT_CHAOS_SEEDS)")
)

// seedList is the seeds a seeded test runs: -seed N alone, else -seeds (or the environment variable env, or
// def) of them starting at -first-seed (1).
func seedList(t *testing.T, def int, env string) []int64 {
	if *raceSeed >= 0 {
		return []int64{*raceSeed}
	}
	n := *raceSeeds
	if v := os.Getenv(env); n == 0 && v != "" {
		parsed, err := strconv.Atoi(v)
		if err != nil || parsed <= 0 {
			t.Fatalf("%s=%q: want a positive number", env, v)
		}
		n = parsed
	}
	if n == 0 {
		n = def
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = *firstSeed + int64(i)
	}
	return out
}

// TestRemovalRace merges a promotion while two serve replicas share the deliveries and reconcilers run at
// random moments: before the merge, during the follow-up, after it. Whatever the order, exactly one removal
// PR is opened for the promoted version, and exactly one follow-up note stays on the merged PR.
//
// A seed fixes the plan (which replica gets each delivery, whether the merge event also reaches the other
// replica, how many reconcile runs start and when); the goroutine interleaving is the machine's. Replay a
// failing seed with: go test ./cmd/storagebot -run TestRemovalRace -seed N
// Run many with: go test ./cmd/storagebot -run TestRemovalRace -seeds 500 (or STORAGEBOT_RACE_SEEDS=500).
func TestRemovalRace(t *testing.T) {
	seeds := seedList(t, 30, "STORAGEBOT_RACE_SEEDS")
	// A fresh fake every few seeds: the repository's PR count (and the fake's cost of listing PRs) grows
	// with every seed, which would make long runs quadratic.
	const seedsPerRepo = 10
	for len(seeds) > 0 {
		n := min(seedsPerRepo, len(seeds))
		t.Run(fmt.Sprintf("seeds-%d-%d", seeds[0], seeds[n-1]), func(t *testing.T) { removalRace(t, seeds[:n]) })
		seeds = seeds[n:]
	}
}

// removalRace runs the seeds one after the other on one fake GitHub with two replicas.
func removalRace(t *testing.T, seeds []int64) {
	h := newHarness(t)
	second := h.startReplica()
	addrs := []string{h.addr, second.addr}
	clients := reconcileClients(t)

	var mu sync.Mutex
	var rng *rand.Rand
	var onMergeEvent func() // starts a reconcile run as the merge event reaches a replica
	h.routeWebhooks(func(event, action string) []string {
		mu.Lock()
		defer mu.Unlock()
		if event == "pull_request" && action == "closed" && onMergeEvent != nil {
			onMergeEvent()
			onMergeEvent = nil
		}
		first := rng.Intn(2)
		if event == "pull_request" && action == "closed" && rng.Intn(2) == 0 {
			// The merge event reaches both replicas at once (a redelivery handled by the other pod).
			return []string{addrs[first], addrs[1-first]}
		}
		return []string{addrs[first]}
	})
	settleAll := func() {
		t.Helper()
		for {
			before := len(h.fake.Deliveries())
			for _, a := range addrs {
				h.settleAt(a)
			}
			if len(h.fake.Deliveries()) == before {
				return
			}
		}
	}

	var raced struct{ branch, note int }
	defer func() {
		t.Logf("%d seeds: %d with two actors writing the removal branch, %d with two notes posted", len(seeds), raced.branch, raced.note)
	}()
	for _, seed := range seeds {
		mu.Lock()
		rng = rand.New(rand.NewSource(seed))
		mu.Unlock()
		pkg := fmt.Sprintf("race%d", seed)
		files := pkgFiles(pkg, "1.0.0", 3, "")
		h.commit("snapshot", "add "+pkg, files)
		promo := h.openPR("staging", "promote-"+pkg, "[staging] Promote "+pkg+"@1.0.0", files)
		settleAll()

		// Plan the reconcile runs: each starts this long after the merge begins (the merge takes a few
		// milliseconds on this fake, the follow-up about as long again), and half the seeds start one more
		// at the very moment the merge event reaches a replica.
		mu.Lock()
		delays := make([]time.Duration, 1+rng.Intn(3))
		for i := range delays {
			delays[i] = time.Duration(rng.Intn(15_000)) * time.Microsecond
		}
		atMergeEvent := rng.Intn(2) == 0
		mu.Unlock()
		var runs sync.WaitGroup
		var errMu sync.Mutex
		var errs []error
		reconcileAt := func(what string) {
			if err := newReconciler(t, h.fake, clients).RunOnce(context.Background()); err != nil {
				errMu.Lock()
				errs = append(errs, fmt.Errorf("reconcile run %s: %w", what, err))
				errMu.Unlock()
			}
		}
		if atMergeEvent {
			runs.Add(1)
			mu.Lock()
			onMergeEvent = func() { go func() { defer runs.Done(); reconcileAt("at the merge event") }() }
			mu.Unlock()
		}
		start := time.Now()
		for _, d := range delays {
			runs.Add(1)
			go func(d time.Duration) {
				defer runs.Done()
				time.Sleep(time.Until(start.Add(d)))
				reconcileAt("at +" + d.String())
			}(d)
		}
		h.fake.ResetCalls()
		if _, err := h.repo.MergePullRequest(promo.Number, "merge"); err != nil {
			t.Fatalf("seed %d: merge #%d: %v", seed, promo.Number, err)
		}
		runs.Wait()
		settleAll()
		for _, err := range errs {
			t.Errorf("seed %d: %v", seed, err)
		}

		var removals []githubfake.PullRequest
		for _, pr := range h.pullsInto("snapshot", promotion.RemoveBranchPrefix) {
			if pr.Number > promo.Number {
				removals = append(removals, pr)
			}
		}
		if len(removals) != 1 {
			t.Fatalf("seed %d: removal PRs = %+v, want exactly one; replay with -seed %d\nreplica 1 logs:\n%s\nreplica 2 logs:\n%s",
				seed, removals, seed, tail(h.logs.String(), 30), tail(second.logs.String(), 30))
		}
		rm := removals[0]
		if want := promotion.RemoveBranchPrefix + "snapshot/pr-" + itoa(promo.Number); rm.Head != want {
			t.Errorf("seed %d: removal branch = %q, want %q (the merged PR's follow-up)", seed, rm.Head, want)
		}
		if tree, _ := h.repo.TreeSHA(rm.Head, "packages/"+pkg+"/1.0.0"); tree != "" {
			t.Errorf("seed %d: removal branch %s still holds %s@1.0.0", seed, rm.Head, pkg)
		}
		// Evidence that the seed raced: more than one actor tried to create the removal branch, or posted
		// the note.
		if h.fake.Calls("POST /repos/{owner}/{repo}/git/refs") > 1 {
			raced.branch++
		}
		if h.fake.Calls("POST /repos/{owner}/{repo}/issues/{issue_number}/comments") > 1 {
			raced.note++
		}
		notes := 0
		for _, c := range h.repo.IssueComments(promo.Number) {
			if strings.HasSuffix(c.User, "[bot]") && strings.Contains(c.Body, fmt.Sprintf("<!-- storagebot:followup pr-%d ", promo.Number)) {
				notes++
			}
		}
		if notes != 1 {
			t.Errorf("seed %d: follow-up notes on #%d = %d, want 1; replay with -seed %d", seed, promo.Number, notes, seed)
		}
		// Merge the removal so the next seed starts with no duplicate in the repository.
		if _, err := h.repo.MergePullRequest(rm.Number, "squash"); err != nil {
			t.Fatalf("seed %d: merge removal #%d: %v", seed, rm.Number, err)
		}
		settleAll()
	}
}

// reconcileClients builds the GitHub clients a replica's reconciler uses, from the environment the harness
// set (or the serve flags args, such as --config), exactly as serve does.
func reconcileClients(t *testing.T, args ...string) githubapp.ClientCreator {
	t.Helper()
	cfg, err := loadServeConfig(args, io.Discard, os.LookupEnv)
	if err != nil {
		t.Fatalf("serve config: %v", err)
	}
	key, err := cfg.PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	clients, err := ghclient.NewClientCreator(cfg.GitHub, key, ghclient.Options{UserAgent: "storagebot-race-test"})
	if err != nil {
		t.Fatal(err)
	}
	return clients
}

// newReconciler is a reconciler as a freshly started replica has it (nothing in memory, so its first run is
// due at once), wired like serve's: its marker key comes from the same App private key.
func newReconciler(t testing.TB, fake *githubfake.Server, clients githubapp.ClientCreator) *reconcile.Runner {
	markerKey, err := seal.FromPrivateKeyPEM(fake.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	app := handlers.New(handlers.Deps{Clients: clients, Seal: markerKey})
	return reconcile.NewRunner(clients, app.Promotions(), nil, 0, nil)
}
