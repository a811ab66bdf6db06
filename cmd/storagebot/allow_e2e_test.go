package main

import (
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
)

func TestAllowExceptionBindsToContent(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	h.repo.SetPermission("writer", "write")
	pr := h.openOverwritePR("staging", "2.0.0")
	if run := h.completedRun(pr.HeadSHA); run.Conclusion != "failure" {
		t.Fatalf("staging overwrite = %s, want failure", run.Conclusion)
	}

	// A writer may not grant exceptions.
	if _, err := h.repo.Comment(pr.Number, "writer", "/allow overwrite foo@2.0.0 typo"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "needs the `maintain` repository permission; @writer has `write`")

	// Production-only rules and unknown rules are refused with the reason.
	if _, err := h.repo.Comment(pr.Number, "maint", "/allow nonsense foo@2.0.0 because"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "`nonsense` is no rule")

	if _, err := h.repo.Comment(pr.Number, "maint", "/allow overwrite foo@* fixing a typo in the field docs"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "✅ Allowed `overwrite` for `foo@2.0.0`")
	h.settle()
	var run githubfake.CheckRun
	for _, r := range h.repo.CheckRuns(pr.HeadSHA) {
		run = r
	}
	if run.Conclusion != "success" || !strings.Contains(run.Summary, "maint") || !strings.Contains(run.Summary, "fixing a typo") {
		t.Fatalf("after /allow: conclusion %q, want success showing who and why; summary:\n%s", run.Conclusion, run.Summary)
	}
	if n := len(h.repo.CheckRuns(pr.HeadSHA)); n != 2 {
		t.Errorf("%d runs on the head after /allow, want 2: the re-evaluation writes a new run", n)
	}

	// New content: the exception lapses.
	sha, err := h.repo.PushToPullRequest(pr.Number, "more", map[string]*githubfake.File{
		"packages/foo/2.0.0/data_stream/ds2/fields/fields.yml": {Content: []byte("- name: other\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if run := h.completedRun(sha); run.Conclusion != "failure" || !strings.Contains(run.Summary, "lapsed") {
		t.Errorf("after a push: conclusion %q, want failure saying the exception lapsed; summary:\n%s", run.Conclusion, run.Summary)
	}
}

func TestAutoMergeRemoval(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("writer", "write")
	h.commit("main", "config", map[string]*githubfake.File{
		".github/storagebot.yml": {Content: []byte("auto_merge_removals: true\n")},
	})
	h.commit("snapshot", "foo 1.0.0", pkgFiles("foo", "1.0.0", 2, "v1"))
	promo := h.promoteFromIssue("writer", "foo@1.0.0")
	if _, err := h.repo.MergePullRequest(promo.Number, "merge"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("removal PR merged by the bot", func() bool {
		rms := h.pullsInto("snapshot", "storagebot/remove/snapshot/")
		return len(rms) == 1 && rms[0].Merged
	})
	if tree, _ := h.repo.TreeSHA("snapshot", "packages/foo/1.0.0"); tree != "" {
		t.Errorf("snapshot still holds foo 1.0.0 after the removal merged")
	}
	if tree, _ := h.repo.TreeSHA("staging", "packages/foo/1.0.0"); tree == "" {
		t.Errorf("staging lost foo 1.0.0")
	}
}
