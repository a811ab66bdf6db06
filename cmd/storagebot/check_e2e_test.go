package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/storagegen"
)

// openPR commits files on a new branch cut from base and opens a PR into base.
func (h *harness) openPR(base, branch, title string, files map[string]*githubfake.File) *githubfake.PullRequest {
	h.t.Helper()
	if err := h.repo.CreateBranch(branch, h.repo.BranchSHA(base)); err != nil {
		h.t.Fatal(err)
	}
	h.commit(branch, title, files)
	pr, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: branch, Base: base, Title: title, User: "alice"})
	if err != nil {
		h.t.Fatal(err)
	}
	return pr
}

func TestCheckFailsOnProductionEditWithAnnotation(t *testing.T) {
	h := newHarness(t)
	h.commit("production", "release foo 1.0.0", pkgFiles("foo", "1.0.0", 3, "v1"))
	edited := "packages/foo/1.0.0/data_stream/ds1/fields/fields.yml"
	pr := h.openPR("production", "edit-foo", "[production] Fix a field of foo 1.0.0", map[string]*githubfake.File{
		edited: {Content: []byte("- name: field1\n  type: long\n")},
	})
	run := h.completedRun(pr.HeadSHA)
	if run.Conclusion != "failure" {
		t.Fatalf("conclusion = %q, want failure; summary:\n%s", run.Conclusion, run.Summary)
	}
	found := false
	for _, a := range run.Annotations {
		if a.Path == edited && a.AnnotationLevel == "failure" {
			found = true
		}
	}
	if !found {
		t.Errorf("no failure annotation on %s; annotations: %+v", edited, run.Annotations)
	}
	if !strings.Contains(run.Summary, "overwrite") {
		t.Errorf("summary does not name the overwrite rule:\n%s", run.Summary)
	}
	if n := len(h.repo.CheckRuns(pr.HeadSHA)); n != 1 {
		t.Errorf("%d check runs on the head, want exactly 1", n)
	}
}

func TestCheckPassesCleanPromotion(t *testing.T) {
	h := newHarness(t)
	files := pkgFiles("foo", "1.1.0", 4, "v1")
	h.commit("snapshot", "foo 1.1.0", files)
	pr := h.openPR("staging", "promote-foo", "[staging] Promote foo@1.1.0", files)
	run := h.completedRun(pr.HeadSHA)
	if run.Conclusion != "success" {
		t.Fatalf("conclusion = %q, want success; summary:\n%s", run.Conclusion, run.Summary)
	}
	// A push that makes the staging copy differ from snapshot's turns it red on the new head.
	sha, err := h.repo.PushToPullRequest(pr.Number, "tweak", map[string]*githubfake.File{
		"packages/foo/1.1.0/manifest.yml": {Content: []byte("format_version: 1.0.0\nname: foo\nversion: 1.1.0\ntitle: changed\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	run = h.completedRun(sha)
	if run.Conclusion != "failure" || !strings.Contains(run.Summary, "promotion-source") {
		t.Errorf("after diverging push: conclusion %q, want failure naming promotion-source; summary:\n%s", run.Conclusion, run.Summary)
	}
}

func TestCheckEvaluatesPRPastFileListingLimit(t *testing.T) {
	h := newHarness(t)
	pr := h.openPR("snapshot", "big", "[snapshot] Add big 1.0.0", pkgFiles("big", "1.0.0", 3500, "x"))
	run := h.completedRun(pr.HeadSHA)
	if run.Conclusion != "success" {
		t.Fatalf("conclusion = %q, want success; summary:\n%s", run.Conclusion, run.Summary)
	}
	if n := h.fake.Calls("GET /repos/{owner}/{repo}/pulls/{pull_number}/files"); n != 0 {
		t.Errorf("the check listed PR files %d times; it must not depend on that listing", n)
	}
}

func TestCheckUsesDefaultBranchConfig(t *testing.T) {
	h := newHarness(t)
	h.commit("main", "storagebot config", map[string]*githubfake.File{
		".github/storagebot.yml": {Content: []byte("fix_titles: true\n")},
	})
	h.commit("staging", "foo 2.0.0", pkgFiles("foo", "2.0.0", 2, "v1"))
	// The PR relaxes the overwrite rule in its own copy of the config and edits a staging version.
	pr := h.openPR("staging", "relax", "Edit foo 2.0.0", map[string]*githubfake.File{
		".github/storagebot.yml":                               {Content: []byte("rules:\n  overwrite:\n    staging: off\n")},
		"packages/foo/2.0.0/data_stream/ds1/fields/fields.yml": {Content: []byte("- name: changed\n")},
	})
	run := h.completedRun(pr.HeadSHA)
	if run.Conclusion != "failure" || !strings.Contains(run.Summary, "overwrite") {
		t.Fatalf("conclusion = %q, want failure from overwrite (default branch config); summary:\n%s", run.Conclusion, run.Summary)
	}
	// fix_titles from the default branch: the bot prefixes the title.
	h.waitFor("title fixed", func() bool { return h.repo.PullRequest(pr.Number).Title == "[staging] Edit foo 2.0.0" })
}

func TestCheckReportsBrokenConfigLine(t *testing.T) {
	h := newHarness(t)
	h.commit("main", "broken config", map[string]*githubfake.File{
		".github/storagebot.yml": {Content: []byte("fix_titles: false\nrules:\n  overwrite:\n    staging: eror\n")},
	})
	pr := h.openPR("snapshot", "add-bar", "[snapshot] Add bar", pkgFiles("bar", "0.1.0", 2, "v1"))
	run := h.completedRun(pr.HeadSHA)
	if run.Conclusion != "failure" {
		t.Fatalf("conclusion = %q, want failure", run.Conclusion)
	}
	if !strings.Contains(run.Summary, "line 4") || !strings.Contains(run.Summary, "rules.overwrite.staging") {
		t.Errorf("summary does not name line 4 and the field:\n%s", run.Summary)
	}
	if len(run.Annotations) != 1 || run.Annotations[0].Path != ".github/storagebot.yml" || run.Annotations[0].StartLine != 4 {
		t.Errorf("annotations = %+v, want one on .github/storagebot.yml line 4", run.Annotations)
	}
}

// TestReconcileRunsMissedCheck: a PR whose opened delivery never arrived gets its check from the reconciler.
func TestReconcileRunsMissedCheck(t *testing.T) {
	h := newHarness(t)
	h.stop() // the bot is down: GitHub's delivery fails and is not redelivered
	h.commit("snapshot", "base", pkgFiles("qux", "0.9.0", 2, "v1"))
	if err := h.repo.CreateBranch("add-qux", h.repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	h.commit("add-qux", "qux 1.0.0", pkgFiles("qux", "1.0.0", 2, "v1"))
	pr, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: "add-qux", Base: "snapshot", Title: "[snapshot] Add qux 1.0.0", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if runs := h.repo.CheckRuns(pr.HeadSHA); len(runs) != 0 {
		t.Fatalf("runs before the bot is back: %+v", runs)
	}
	h.start("--reconcile-grace", "0") // reconcile runs at start; the PR was opened just now
	if run := h.completedRun(pr.HeadSHA); run.Conclusion != "success" {
		t.Errorf("reconciled check = %s:\n%s", run.Conclusion, run.Summary)
	}
}

// TestCheckCommandOnClone runs `storagebot check` as the README shows it, in a clone where a released
// production manifest was edited on a new branch: --head HEAD is that branch, so the check fails, and the
// output names the commit and branch HEAD resolved to.
func TestCheckCommandOnClone(t *testing.T) {
	src, err := storagegen.Generate(t.TempDir(), storagegen.Options{Bare: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "clone")
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "clone", "-q", src.Dir, dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v: %s", err, out)
	}
	git("checkout", "-q", "-b", "bad", "origin/production")
	if err := os.WriteFile(filepath.Join(dir, "packages", "pkg001", "1.0.0", "manifest.yml"), []byte("name: pkg001\nversion: 1.0.0\ntitle: edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("commit", "-q", "-am", "edit a released manifest")
	bad := git("rev-parse", "HEAD")

	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"check", "--repo", dir, "--channel", "production", "--base", "origin/production", "--head", "HEAD"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit status %d, want 1; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	for _, want := range []string{"HEAD = " + bad + " (refs/heads/bad)", "pkg001", "overwrite"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}
