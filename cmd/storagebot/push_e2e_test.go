package main

import (
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/rollout/rollouttest"
)

// TestStackVersionTagThroughServe pushes tags on the fake and lets serve answer the push events: a stack
// version on production builds the production image with that tag; a v-prefixed one is refused on its commit.
func TestStackVersionTagThroughServe(t *testing.T) {
	h := newHarness(t)
	setupRollout(h, "")
	head := h.commit("production", "build takes a tag", map[string]*githubfake.File{".github/workflows/build.yml": {Content: []byte(rollouttest.BuildWorkflow("tag"))}})

	if err := h.repo.PushTag("8.12.0", head, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := h.repo.PushTag("v8.12.1", head, "alice"); err != nil {
		t.Fatal(err)
	}
	var answers map[string]githubfake.CheckRun
	h.waitFor("both tags answered by stack-version check runs", func() bool {
		answers = map[string]githubfake.CheckRun{}
		for _, r := range h.repo.CheckRuns(head) {
			if r.Name == "stack-version" {
				answers[r.ExternalID] = r
			}
		}
		return len(answers) == 2
	})
	if r := answers["8.12.0"]; r.Conclusion != "success" || !strings.Contains(r.Title, "ghcr.io/o/production:8.12.0") {
		t.Errorf("8.12.0: %s %q, want success naming ghcr.io/o/production:8.12.0", r.Conclusion, r.Title)
	}
	if r := answers["v8.12.1"]; r.Conclusion != "failure" || !strings.Contains(r.Summary, "`8.12.1`") {
		t.Errorf("v8.12.1: %s %q, want failure telling to push 8.12.1", r.Conclusion, r.Summary)
	}
	var tagged []string
	for _, r := range h.repo.WorkflowRuns() {
		if r.Inputs["tag"] != "" {
			tagged = append(tagged, r.Inputs["tag"]+"@"+r.Inputs["ref"])
		}
	}
	if len(tagged) != 1 || tagged[0] != "8.12.0@"+head {
		t.Errorf("tagged builds %v, want one of 8.12.0 at %s", tagged, head)
	}
}

// TestRegistryVersionSyncThroughServe merges a registry upgrade into production and waits for serve to open
// the PRs bringing staging and snapshot to it.
func TestRegistryVersionSyncThroughServe(t *testing.T) {
	h := newHarness(t)
	setupRollout(h, "")
	pr := h.openPR("production", "registry-1.16", "[production] Update package-registry to v1.16.0", map[string]*githubfake.File{
		"Dockerfile": {Content: []byte("ARG PACKAGE_REGISTRY=v1.16.0\nFROM docker.elastic.co/package-registry/package-registry:${PACKAGE_REGISTRY}\n")},
		"go.mod":     {Content: []byte("module github.com/elastic/package-storage\n\ngo 1.19\n\nrequire github.com/elastic/package-registry v1.16.0\n")},
	})
	if _, err := h.repo.MergePullRequest(pr.Number, "squash"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"staging":  "[staging] Update package-registry to v1.16.0",
		"snapshot": "[snapshot] Update package-registry to v1.16.0",
	}
	h.waitFor("registry version PRs into staging and snapshot", func() bool {
		found := 0
		for _, p := range h.repo.PullRequests() {
			if want[p.Base] != "" && p.Title == want[p.Base] {
				found++
			}
		}
		return found == 2
	})
	h.settle()
	for _, p := range h.repo.PullRequests() {
		if want[p.Base] == "" {
			continue
		}
		gomod, err := h.repo.ReadFile(p.HeadSHA, "go.mod")
		if err != nil || !strings.Contains(string(gomod), "github.com/elastic/package-registry v1.16.0") {
			t.Errorf("#%d go.mod = %q (%v), want v1.16.0", p.Number, gomod, err)
		}
		// Its storage-policy check passes: Dockerfile and go.mod agree.
		if r := h.completedRun(p.HeadSHA); r.Conclusion != "success" {
			t.Errorf("#%d storage-policy %s: %s", p.Number, r.Conclusion, r.Summary)
		}
	}
}
