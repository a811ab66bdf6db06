package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
)

// ourRuns are the storage-policy runs this App wrote on sha, oldest first.
func (h *harness) ourRuns(sha string) []githubfake.CheckRun {
	var out []githubfake.CheckRun
	for _, r := range h.repo.CheckRuns(sha) {
		if r.Name == "storage-policy" && r.AppID == h.fake.AppID() {
			out = append(out, r)
		}
	}
	return out
}

// waitRuns waits until this App wrote n storage-policy runs on sha and every one completed.
func (h *harness) waitRuns(sha string, n int) []githubfake.CheckRun {
	h.t.Helper()
	var runs []githubfake.CheckRun
	h.waitFor(itoa(n)+" completed storage-policy runs on "+sha[:7], func() bool {
		runs = h.ourRuns(sha)
		if len(runs) != n {
			return false
		}
		for _, r := range runs {
			if r.Status != "completed" {
				return false
			}
		}
		return true
	})
	return runs
}

func failureAnnotations(run githubfake.CheckRun) []githubfake.Annotation {
	var out []githubfake.Annotation
	for _, a := range run.Annotations {
		if a.AnnotationLevel == "failure" {
			out = append(out, a)
		}
	}
	return out
}

// otherApp is a second GitHub App owning a storage-policy run of its own: a CI job running `storagebot check`,
// or the bot under an older App registration.
func (h *harness) otherApp() githubfake.OtherApp {
	return githubfake.OtherApp{ID: h.fake.AppID() + 7, Slug: "github-actions"}
}

// TestRecheckAndAllowStartFreshRuns: every evaluation writes a run of its own, so a re-checked failure shows
// its annotation once, and after /allow the green run carries no failure annotation from before.
func TestRecheckAndAllowStartFreshRuns(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	pr := h.openOverwritePR("staging", "2.0.0")
	edited := "packages/foo/2.0.0/data_stream/ds1/fields/fields.yml"
	first := h.waitRuns(pr.HeadSHA, 1)[0]
	if first.Conclusion != "failure" || len(failureAnnotations(first)) != 1 {
		t.Fatalf("first run: %s with %+v, want failure with one failure annotation", first.Conclusion, first.Annotations)
	}

	for i := 0; i < 2; i++ {
		if _, err := h.repo.Comment(pr.Number, "maint", "/recheck"); err != nil {
			t.Fatal(err)
		}
		h.settle()
	}
	if err := h.repo.RerequestCheckRun(h.waitRuns(pr.HeadSHA, 3)[2].ID); err != nil { // the "Re-run" button
		t.Fatal(err)
	}
	runs := h.waitRuns(pr.HeadSHA, 4)
	for i, r := range runs {
		if r.Conclusion != "failure" || len(r.Annotations) != 1 || r.Annotations[0].Path != edited {
			t.Errorf("run %d of 4: %s with annotations %+v, want failure with exactly the one annotation on %s", i+1, r.Conclusion, r.Annotations, edited)
		}
	}

	if _, err := h.repo.Comment(pr.Number, "maint", "/allow overwrite foo@2.0.0 fixing a typo in the field docs"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "Allowed `overwrite`")
	h.settle()
	runs = h.waitRuns(pr.HeadSHA, 5)
	newest := runs[4]
	if newest.Conclusion != "success" || !strings.Contains(newest.Summary, "maint") || !strings.Contains(newest.Summary, "fixing a typo") {
		t.Errorf("after /allow: %s, want success saying who allowed what and why; summary:\n%s", newest.Conclusion, newest.Summary)
	}
	if fa := failureAnnotations(newest); len(fa) != 0 {
		t.Errorf("green run after /allow still carries failure annotations: %+v", fa)
	}
	if runs[3].Conclusion != "failure" || len(runs[3].Annotations) != 1 {
		t.Errorf("the run before /allow was changed: %s with %+v", runs[3].Conclusion, runs[3].Annotations)
	}
}

// TestCheckIgnoresAnotherAppsRun: a storage-policy run of another App on the head is neither reused (GitHub
// answers 403 to a PATCH of it) nor taken for this App's verdict.
func TestCheckIgnoresAnotherAppsRun(t *testing.T) {
	h := newHarness(t)
	h.commit("production", "release foo 1.0.0", pkgFiles("foo", "1.0.0", 3, "v1"))
	if err := h.repo.CreateBranch("edit-foo", h.repo.BranchSHA("production")); err != nil {
		t.Fatal(err)
	}
	head := h.commit("edit-foo", "edit", map[string]*githubfake.File{
		"packages/foo/1.0.0/data_stream/ds1/fields/fields.yml": {Content: []byte("- name: field1\n  type: long\n")},
	})
	theirs, err := h.repo.CreateCheckRunAs(h.otherApp(), githubfake.CheckRunOptions{
		Name: "storage-policy", HeadSHA: head, Conclusion: "success", Title: "ok", Summary: "a CI job's verdict",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: "edit-foo", Base: "production", Title: "[production] Edit foo", User: "alice"}); err != nil {
		t.Fatal(err)
	}
	ours := h.waitRuns(head, 1)[0]
	if ours.Conclusion != "failure" || len(failureAnnotations(ours)) != 1 {
		t.Errorf("this App's run: %s with %+v, want failure with the overwrite annotation", ours.Conclusion, ours.Annotations)
	}
	for _, r := range h.repo.CheckRuns(head) {
		if r.ID == theirs.ID && (r.Conclusion != "success" || r.Summary != "a CI job's verdict" || len(r.Annotations) != 0) {
			t.Errorf("the other App's run was changed: %+v", r)
		}
	}
	// A 403 as a status, not the digits inside a SHA, an ID or a delivery UUID.
	if regexp.MustCompile(`(^|[^0-9A-Za-z-])403([^0-9A-Za-z-]|$)`).MatchString(h.logs.String()) {
		t.Errorf("the bot tried to write the other App's run:\n%s", tail(h.logs.String(), 20))
	}
}

// TestReconcileIgnoresAnotherAppsRun: a completed storage-policy run of another App does not make the
// reconciler believe the head was checked.
func TestReconcileIgnoresAnotherAppsRun(t *testing.T) {
	h := newHarness(t)
	h.stop() // the PR's delivery is lost while the bot is down
	if err := h.repo.CreateBranch("add-qux", h.repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	head := h.commit("add-qux", "qux 1.0.0", pkgFiles("qux", "1.0.0", 2, "v1"))
	if _, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: "add-qux", Base: "snapshot", Title: "[snapshot] Add qux 1.0.0", User: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.repo.CreateCheckRunAs(h.otherApp(), githubfake.CheckRunOptions{Name: "storage-policy", HeadSHA: head, Conclusion: "failure", Summary: "old registration"}); err != nil {
		t.Fatal(err)
	}
	h.start("--reconcile-grace", "0") // reconcile at start, no PR is too fresh
	if run := h.waitRuns(head, 1)[0]; run.Conclusion != "success" {
		t.Errorf("reconciled check = %s:\n%s", run.Conclusion, run.Summary)
	}
}

// TestReconcileLeavesFreshPRToItsWebhook: the reconciler does not evaluate a PR updated within the grace
// period, so its delivery, arriving late, makes the only evaluation.
func TestReconcileLeavesFreshPRToItsWebhook(t *testing.T) {
	h := newHarness(t)
	h.stop()
	h.commit("production", "release foo 1.0.0", pkgFiles("foo", "1.0.0", 3, "v1"))
	pr := h.openPR("production", "edit-foo", "[production] Edit foo", map[string]*githubfake.File{
		"packages/foo/1.0.0/data_stream/ds1/fields/fields.yml": {Content: []byte("- name: field1\n  type: long\n")},
	})
	var opened githubfake.Delivery
	for _, d := range h.fake.Deliveries() {
		if d.Event == "pull_request" && d.Action == "opened" {
			opened = d
		}
	}
	h.start() // reconcile runs at start with the default grace
	h.waitFor("the reconciler to pass the fresh PR", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `storagebot_reconcile_repositories_total{result="check_left_to_webhook"} 1`)
	})
	if runs := h.ourRuns(pr.HeadSHA); len(runs) != 0 {
		t.Fatalf("the reconciler evaluated a PR updated seconds ago: %+v", runs)
	}
	if code := h.redeliver(opened); code != 200 {
		t.Fatalf("late delivery answered %d", code)
	}
	h.settle()
	runs := h.waitRuns(pr.HeadSHA, 1)
	if len(runs[0].Annotations) != 1 {
		t.Errorf("annotations = %+v, want the overwrite annotation once", runs[0].Annotations)
	}
}

// TestForkPRRerunFindsPRByHeadSHA: "Re-run" on a fork PR's run (whose check_run event lists no pull
// requests) evaluates the PR found by its head SHA, and a fork PR triggers no write but the check run.
func TestForkPRRerunFindsPRByHeadSHA(t *testing.T) {
	h := newHarness(t)
	h.commit("main", "config", map[string]*githubfake.File{
		".github/storagebot.yml": {Content: []byte("fix_titles: true\n")},
	})
	if err := h.repo.CreateBranch("mallory-bar", h.repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	head := h.commit("mallory-bar", "bar", pkgFiles("bar", "0.1.0", 2, "v1"))
	pr, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: "mallory-bar", Base: "snapshot", Title: "Add bar", User: "mallory", Fork: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	first := h.waitRuns(head, 1)[0]
	if first.Conclusion != "failure" || !strings.Contains(first.Summary, "title-prefix") {
		t.Errorf("fork PR run: %s, want failure asking the author to fix the title; summary:\n%s", first.Conclusion, first.Summary)
	}
	if err := h.repo.RerequestCheckRun(first.ID); err != nil {
		t.Fatal(err)
	}
	h.settle()
	runs := h.waitRuns(head, 2)
	if runs[1].Conclusion != "failure" {
		t.Errorf("re-run: %s, want failure", runs[1].Conclusion)
	}
	// "Re-run all checks": the check_suite event of a fork PR lists no pull requests either.
	repo := h.repository()
	suite := map[string]any{
		"action": "rerequested", "repository": repo, "installation": map[string]any{"id": h.fake.InstallationID()},
		"sender":      &github.User{Login: github.String("mallory")},
		"check_suite": map[string]any{"id": 1, "head_sha": head, "head_branch": nil, "status": "completed", "pull_requests": []any{}},
	}
	if code, err := h.fake.Deliver("check_suite", suite); err != nil || code != 200 {
		t.Fatalf("check_suite delivery: %d %v", code, err)
	}
	h.settle()
	h.waitRuns(head, 3)
	if got := h.repo.PullRequest(pr.Number).Title; got != "Add bar" {
		t.Errorf("fork PR title changed to %q: a fork PR must trigger no write but the check run", got)
	}
	for _, route := range []string{
		"PATCH /repos/{owner}/{repo}/pulls/{pull_number}", "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
		"PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", "POST /repos/{owner}/{repo}/git/refs",
	} {
		if n := h.fake.Calls(route); n != 0 {
			t.Errorf("%s called %d times for a fork PR", route, n)
		}
	}
}

// TestBodyEditDoesNotRecheck: editing only a PR's body changes nothing the policy reads; a title or base
// change does.
func TestBodyEditDoesNotRecheck(t *testing.T) {
	h := newHarness(t)
	pr := h.openPR("snapshot", "add-bar", "Add bar", pkgFiles("bar", "0.1.0", 2, "v1"))
	if run := h.waitRuns(pr.HeadSHA, 1)[0]; run.Conclusion != "failure" {
		t.Fatalf("untitled PR = %s, want failure from title-prefix", run.Conclusion)
	}
	body := "Adds bar."
	if err := h.repo.EditPullRequest(pr.Number, "alice", githubfake.PREdit{Body: &body}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if n := len(h.ourRuns(pr.HeadSHA)); n != 1 {
		t.Errorf("%d runs after a body-only edit, want still 1", n)
	}
	title := "[snapshot] Add bar"
	if err := h.repo.EditPullRequest(pr.Number, "alice", githubfake.PREdit{Title: &title}); err != nil {
		t.Fatal(err)
	}
	if run := h.waitRuns(pr.HeadSHA, 2)[1]; run.Conclusion != "success" {
		t.Errorf("after the title edit: %s, want success", run.Conclusion)
	}
	base := "staging"
	if err := h.repo.EditPullRequest(pr.Number, "alice", githubfake.PREdit{Base: &base}); err != nil {
		t.Fatal(err)
	}
	// Retargeted to staging, the title no longer names the branch.
	if run := h.waitRuns(pr.HeadSHA, 3)[2]; run.Conclusion != "failure" || !strings.Contains(run.Summary, "title-prefix") {
		t.Errorf("after the base edit: %s, want failure from title-prefix; summary:\n%s", run.Conclusion, run.Summary)
	}
}

// TestMalformedCheckSuiteEventIsRefusedNotPanicked: a check_suite delivery without check_suite is an error
// the handler returns, not a panic.
func TestMalformedCheckSuiteEventIsRefusedNotPanicked(t *testing.T) {
	h := newHarness(t)
	repo := h.repository()
	payload := map[string]any{
		"action": "rerequested", "repository": repo,
		"installation": map[string]any{"id": h.fake.InstallationID()}, "sender": &github.User{Login: github.String("alice")},
	}
	if code, err := h.fake.Deliver("check_suite", payload); err != nil || code != 200 {
		t.Fatalf("delivery: %d %v", code, err)
	}
	h.settle()
	_, m := h.get("/metrics")
	if strings.Contains(m, `storagebot_events_handled_total{event="check_suite",result="panic"}`) ||
		!strings.Contains(m, `storagebot_events_handled_total{event="check_suite",result="error"} 1`) {
		t.Errorf("check_suite without check_suite: want one handler error and no panic; logs:\n%s", tail(h.logs.String(), 20))
	}
}

// TestManyAnnotationsOnFreshRuns: past GitHub's 50 annotations per request the verdict goes out in batches on
// the evaluation's own run, which completes with the last batch; a re-check starts over on a new run.
func TestManyAnnotationsOnFreshRuns(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	// 60 versions whose manifests name another package: one manifest error, with its annotation, each.
	files := map[string]*githubfake.File{}
	for i := 0; i < 60; i++ {
		v := "1.0." + itoa(i)
		files["packages/bad/"+v+"/manifest.yml"] = &githubfake.File{Content: []byte("name: other\nversion: " + v + "\n")}
	}
	pr := h.openPR("snapshot", "add-bad", "[snapshot] Add bad", files)
	first := h.waitRuns(pr.HeadSHA, 1)[0]
	if first.Conclusion != "failure" || len(first.Annotations) <= 50 {
		t.Fatalf("run: %s with %d annotations, want failure with more than 50 (manifest)", first.Conclusion, len(first.Annotations))
	}
	if _, err := h.repo.Comment(pr.Number, "maint", "/recheck"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	runs := h.waitRuns(pr.HeadSHA, 2)
	if len(runs[1].Annotations) != len(first.Annotations) {
		t.Errorf("re-checked run has %d annotations, want the same %d as the first evaluation", len(runs[1].Annotations), len(first.Annotations))
	}
	seen := map[string]bool{}
	for _, a := range runs[1].Annotations {
		key := a.Path + ":" + a.Message
		if seen[key] {
			t.Errorf("annotation on %s twice in one run", a.Path)
		}
		seen[key] = true
	}
}
