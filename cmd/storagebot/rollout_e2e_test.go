package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/rollout/rollouttest"
)

// rolloutRegistry is a package registry that serves the versions it is told to, and records what was asked.
type rolloutRegistry struct {
	*httptest.Server
	mu     sync.Mutex
	asked  []string
	served map[string]bool
}

func newRolloutRegistry(t *testing.T) *rolloutRegistry {
	r := &rolloutRegistry{served: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.asked = append(r.asked, req.URL.Path)
		if !r.served[req.URL.Path] {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(r.Close)
	return r
}

// setupRollout writes the distribution config on the default branch and the build and deploy workflows on
// every channel branch.
func setupRollout(h *harness, registry string) {
	h.commit("main", "storagebot config", map[string]*githubfake.File{".github/storagebot.yml": {Content: []byte(`
distributions:
  - {name: production, image: ghcr.io/o/production, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}, verify: {registry: "` + registry + `"}}
  - {name: staging, image: ghcr.io/o/staging, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}, verify: {registry: "` + registry + `"}}
  - {name: snapshot, image: ghcr.io/o/snapshot, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
`)}})
	for _, b := range []string{"production", "staging", "snapshot"} {
		h.commit(b, "CI", map[string]*githubfake.File{
			".github/workflows/build.yml":  {Content: []byte(rollouttest.BuildWorkflow())},
			".github/workflows/deploy.yml": {Content: []byte(rollouttest.DeployWorkflow)},
		})
	}
}

// runFor waits for the run whose title starts with prefix and is not in done, and returns it.
func (h *harness) runFor(prefix string, done map[int64]bool) githubfake.WorkflowRun {
	h.t.Helper()
	var run githubfake.WorkflowRun
	h.waitFor("a run "+prefix, func() bool {
		for _, r := range h.repo.WorkflowRuns() {
			if strings.HasPrefix(r.DisplayTitle, prefix) && !done[r.ID] {
				run = r
				return true
			}
		}
		return false
	})
	done[run.ID] = true
	return run
}

// driveChain plays GitHub Actions for one rollout of the three distributions: each build and deploy run
// the bot dispatches succeeds. It returns the distributions in the order their builds were dispatched.
func (h *harness) driveChain(done map[int64]bool) []string {
	h.t.Helper()
	var order []string
	for _, dist := range []string{"production", "staging", "snapshot"} {
		build := h.runFor("storagebot build ", done)
		order = append(order, build.Inputs["distribution"])
		if err := h.repo.CompleteRun(build.ID, "success"); err != nil {
			h.t.Fatal(err)
		}
		deploy := h.runFor("storagebot deploy ", done)
		if deploy.Inputs["distribution"] != dist {
			h.t.Fatalf("deploy run for %q, want %q", deploy.Inputs["distribution"], dist)
		}
		if err := h.repo.CompleteRun(deploy.ID, "success"); err != nil {
			h.t.Fatal(err)
		}
		h.waitFor(dist+" deployment success", func() bool {
			ds := h.repo.Deployments()
			for i := len(ds) - 1; i >= 0; i-- {
				if ds[i].Environment == dist {
					return len(ds[i].States) > 0 && ds[i].States[len(ds[i].States)-1] == "success"
				}
			}
			return false
		})
	}
	return order
}

func TestRolloutProductionMergeBuildsDeploysAndVerifiesTheChainInOrder(t *testing.T) {
	reg := newRolloutRegistry(t)
	h := newHarness(t)
	setupRollout(h, reg.URL)
	h.restart() // the reconciler at start finds distributions never deployed and builds them
	done := map[int64]bool{}
	if diff := cmp.Diff([]string{"production", "staging", "snapshot"}, h.driveChain(done)); diff != "" {
		t.Fatalf("initial builds (-want +got):\n%s", diff)
	}

	reg.mu.Lock()
	reg.served["/package/foo/1.0.0/"] = true
	reg.mu.Unlock()
	pr := h.openPR("production", "add-foo", "[production] Add foo 1.0.0", pkgFiles("foo", "1.0.0", 3, "v1"))
	start := time.Now()
	if _, err := h.repo.MergePullRequest(pr.Number, "merge"); err != nil {
		t.Fatal(err)
	}
	peek := map[int64]bool{}
	for id := range done {
		peek[id] = true
	}
	h.runFor("storagebot build production@", peek)
	t.Logf("merge → build dispatched: %s", time.Since(start))
	if diff := cmp.Diff([]string{"production", "staging", "snapshot"}, h.driveChain(done)); diff != "" {
		t.Fatalf("builds after the merge (-want +got):\n%s", diff)
	}
	reply := h.botReply(pr.Number, "Now live on **production**")
	if !strings.Contains(reply.Body, "foo@1.0.0") {
		t.Errorf("live comment does not name foo@1.0.0:\n%s", reply.Body)
	}
	// Every deployment was created with auto_merge off and no required contexts (the fake answers 409
	// otherwise), and records what it was built on.
	var staging struct {
		Ref            string `json:"ref"`
		BaseDeployment int64  `json:"base_deployment"`
		BaseImage      string `json:"base_image"`
	}
	var prodID int64
	for _, d := range h.repo.Deployments() {
		switch d.Environment {
		case "production":
			prodID = d.ID
		case "staging":
			if err := json.Unmarshal(d.Payload, &staging); err != nil {
				t.Fatal(err)
			}
		}
	}
	if staging.BaseDeployment != prodID || !strings.HasPrefix(staging.BaseImage, "ghcr.io/o/production:") {
		t.Errorf("staging built on %d (%s), want production's newest deployment %d", staging.BaseDeployment, staging.BaseImage, prodID)
	}
	h.settle()
	builds := 0
	for _, r := range h.repo.WorkflowRuns() {
		if strings.HasPrefix(r.DisplayTitle, "storagebot build ") {
			builds++
		}
	}
	if builds != 6 {
		t.Errorf("%d builds in all, want 6 (three at start, three after the merge)", builds)
	}
}

func TestRolloutBuildFailureStopsTheChainAndRebuildRetries(t *testing.T) {
	reg := newRolloutRegistry(t)
	h := newHarness(t)
	h.repo.SetPermission("maintainer", "maintain")
	h.repo.SetPermission("writer", "write")
	setupRollout(h, reg.URL)
	h.restart()
	done := map[int64]bool{}
	h.driveChain(done)

	pr := h.openPR("production", "add-bar", "[production] Add bar 1.0.0", pkgFiles("bar", "1.0.0", 3, "v1"))
	if _, err := h.repo.MergePullRequest(pr.Number, "merge"); err != nil {
		t.Fatal(err)
	}
	build := h.runFor("storagebot build production@", done)
	if err := h.repo.CompleteRun(build.ID, "failure"); err != nil {
		t.Fatal(err)
	}
	report := h.botReply(pr.Number, "was not rolled out")
	if !strings.Contains(report.Body, "ended failure") || !strings.Contains(report.Body, "/rebuild production") {
		t.Errorf("failure report does not say what failed and how to retry:\n%s", report.Body)
	}
	h.settle()
	for _, r := range h.repo.WorkflowRuns() {
		if !done[r.ID] {
			t.Errorf("run %q dispatched after a failed build; the chain must stop", r.DisplayTitle)
		}
	}

	if _, err := h.repo.Comment(pr.Number, "writer", "/rebuild production"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "needs the `maintain` repository permission")
	if _, err := h.repo.Comment(pr.Number, "maintainer", "/rebuild production"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "Build of **production**")
	reg.mu.Lock()
	reg.served["/package/bar/1.0.0/"] = true
	reg.mu.Unlock()
	if diff := cmp.Diff([]string{"production", "staging", "snapshot"}, h.driveChain(done)); diff != "" {
		t.Fatalf("builds after /rebuild (-want +got):\n%s", diff)
	}
	h.botReply(pr.Number, "Now live on **production**")
}
