package main

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/storagebot/storagebot/internal/githubfake"
)

// fourteen are typical package versions: listed in full, a title naming them passes GitHub's 256 characters.
var fourteen = []string{
	"apm@8.1.0", "aws@1.19.4", "azure@1.1.3", "cisco_asa@2.3.1", "crowdstrike@1.4.2", "endpoint@8.2.0",
	"fleet_server@1.1.1", "kubernetes@1.21.1", "microsoft_defender_endpoint@2.1.0", "nginx_ingress_controller@1.3.2",
	"o365@1.7.0", "panw@2.2.0", "system@1.16.2", "windows@1.12.4",
}

func versionFiles(list []string) map[string]*githubfake.File {
	files := map[string]*githubfake.File{}
	for _, ref := range list {
		pkg, v, _ := strings.Cut(ref, "@")
		for p, f := range pkgFiles(pkg, v, 2, "v1") {
			files[p] = f
		}
	}
	return files
}

func withinLimits(t *testing.T, pr githubfake.PullRequest) {
	t.Helper()
	if n := utf8.RuneCountInString(pr.Title); n > githubfake.MaxTitleLength {
		t.Errorf("#%d title has %d characters: %q", pr.Number, n, pr.Title)
	}
	if n := utf8.RuneCountInString(pr.Body); n > githubfake.MaxBodyLength {
		t.Errorf("#%d body has %d characters", pr.Number, n)
	}
}

// TestLimitsPromoteSummarisedTitle: /promote of 14 typical versions gets a summarised title (GitHub refused
// the full one with 422 after the branch was written, and the reply was a failure).
func TestLimitsPromoteSummarisedTitle(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	h.commit("snapshot", "14 versions", versionFiles(fourteen))

	issue := h.repo.OpenIssue("Promote the release", "", "alice")
	cmd := "/promote " + strings.Join(fourteen, " ")
	if _, err := h.repo.Comment(issue, "maint", cmd); err != nil {
		t.Fatal(err)
	}
	reply := h.botReply(issue, "> /promote apm@8.1.0")
	if !strings.Contains(reply.Body, "✅") {
		t.Fatalf("reply to /promote of 14 versions is not a success:\n%s", reply.Body)
	}
	promos := h.pullsInto("staging", "storagebot/promote/staging/")
	if len(promos) != 1 {
		t.Fatalf("promotion PRs = %d, want 1", len(promos))
	}
	if want := "[staging] Promote apm@8.1.0 and 13 more from snapshot"; promos[0].Title != want {
		t.Errorf("promotion title = %q, want %q", promos[0].Title, want)
	}
	withinLimits(t, promos[0])
}

// TestLimitsRebaseMergeFollowUp: a hand-made promotion of 14 versions in two commits, rebase-merged, gets a
// removal follow-up for all 14 (the last rebased commit held only 7) with a summarised title, written
// without "sha": null for directories, which the fake refuses like GitHub; and /promote with no versions on
// that PR promotes all 14 onwards.
func TestLimitsRebaseMergeFollowUp(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	h.commit("snapshot", "14 versions", versionFiles(fourteen))

	// The 14 reach staging by hand, in two commits, rebase-merged.
	if err := h.repo.CreateBranch("by-hand", h.repo.BranchSHA("staging")); err != nil {
		t.Fatal(err)
	}
	h.commit("by-hand", "first half", versionFiles(fourteen[:7]))
	h.commit("by-hand", "second half", versionFiles(fourteen[7:]))
	byHand, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: "by-hand", Base: "staging", Title: "[staging] Promote the release by hand", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	h.completedRun(byHand.HeadSHA)
	if _, err := h.repo.MergePullRequest(byHand.Number, "rebase"); err != nil {
		t.Fatalf("rebase merge: %v", err)
	}
	h.waitFor("removal PR", func() bool {
		return len(h.pullsInto("snapshot", "storagebot/remove/snapshot/pr-"+itoa(byHand.Number))) == 1
	})
	rm := h.pullsInto("snapshot", "storagebot/remove/snapshot/pr-"+itoa(byHand.Number))[0]
	if want := fmt.Sprintf("[snapshot] Remove packages promoted to staging in #%d (apm@8.1.0 and 13 more)", byHand.Number); rm.Title != want {
		t.Errorf("removal title = %q, want %q", rm.Title, want)
	}
	withinLimits(t, rm)
	for _, ref := range fourteen {
		pkg, _, _ := strings.Cut(ref, "@")
		if sha, _ := h.repo.TreeSHA(rm.Head, "packages/"+pkg); sha != "" {
			t.Errorf("removal branch still holds packages/%s (every version of it was promoted)", pkg)
		}
	}
	if sha, _ := h.repo.TreeSHA(rm.Head, "Dockerfile"); sha == "" {
		t.Error("removal branch lost the Dockerfile")
	}
	if run := h.completedRun(rm.HeadSHA); run.Conclusion != "success" {
		t.Errorf("removal PR check = %s:\n%s", run.Conclusion, run.Summary)
	}
	h.botReply(byHand.Number, "#"+itoa(rm.Number)+" removes apm@8.1.0")

	// /promote with no versions promotes everything the rebase merge added, not only its last commit.
	if _, err := h.repo.Comment(byHand.Number, "maint", "/promote to production"); err != nil {
		t.Fatal(err)
	}
	reply := h.botReply(byHand.Number, "> /promote to production")
	if !strings.Contains(reply.Body, "✅") || !strings.Contains(reply.Body, "`windows@1.12.4`") || !strings.Contains(reply.Body, "`apm@8.1.0`") {
		t.Fatalf("reply to /promote on the rebase-merged PR does not promote all 14:\n%s", reply.Body)
	}
	prod := h.pullsInto("production", "storagebot/promote/production/")
	if len(prod) != 1 || prod[0].Title != "[production] Promote apm@8.1.0 and 13 more from staging" {
		t.Fatalf("production promotion PRs = %+v", prod)
	}
}

// TestLimitsReplyFitsCommentLimit: refusing hundreds of versions made a reply GitHub refused (422), so the
// commenter got no answer at all; the reply is shortened instead, and says so.
func TestLimitsReplyFitsCommentLimit(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	issue := h.repo.OpenIssue("Promotions", "", "alice")
	var list []string
	for i := 0; i < 900; i++ {
		list = append(list, fmt.Sprintf("missing_%03d@1.0.%d", i, i))
	}
	if _, err := h.repo.Comment(issue, "maint", "/promote "+strings.Join(list, " ")); err != nil {
		t.Fatal(err)
	}
	reply := h.botReply(issue, "> /promote missing_000@1.0.0")
	if n := utf8.RuneCountInString(reply.Body); n > githubfake.MaxBodyLength {
		t.Errorf("reply has %d characters", n)
	}
	if !strings.Contains(reply.Body, "❌ Nothing was promoted") || !strings.Contains(reply.Body, "more lines left out") {
		t.Errorf("reply does not refuse and say it was shortened:\n%s", tail(reply.Body, 5))
	}
}

// TestLimitsAllowReplyOverCommentLimit: /allow on a PR overwriting hundreds of versions records more
// exceptions than one comment can hold. GitHub refused the reply (422), so the maintainer got no answer and
// nothing was recorded without anyone being told; now the reply says that nothing was allowed and why.
func TestLimitsAllowReplyOverCommentLimit(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	var list []string
	for i := 0; i < 400; i++ {
		list = append(list, fmt.Sprintf("pkg_%03d@2.0.%d", i%50, i))
	}
	h.commit("staging", "400 versions", versionFiles(list))
	edits := map[string]*githubfake.File{}
	for _, ref := range list {
		pkg, v, _ := strings.Cut(ref, "@")
		edits["packages/"+pkg+"/"+v+"/data_stream/ds1/fields/fields.yml"] = &githubfake.File{Content: []byte("- name: fixed\n")}
	}
	pr := h.openPR("staging", "fix-all", "[staging] Fix the field docs of 400 versions", edits)
	if run := h.completedRun(pr.HeadSHA); run.Conclusion != "failure" {
		t.Fatalf("staging overwrite = %s, want failure", run.Conclusion)
	}
	if _, err := h.repo.Comment(pr.Number, "maint", "/allow overwrite * bulk fix of the field docs"); err != nil {
		t.Fatal(err)
	}
	reply := h.botReply(pr.Number, "Nothing was recorded")
	if n := utf8.RuneCountInString(reply.Body); n > githubfake.MaxBodyLength || !strings.Contains(reply.Body, "allow fewer versions per comment") {
		t.Errorf("reply (%d characters) does not say what to do:\n%s", n, reply.Body)
	}
	h.settle()
	for _, r := range h.repo.CheckRuns(pr.HeadSHA) {
		if r.Conclusion != "failure" {
			t.Errorf("check run %d concluded %s after an /allow that recorded nothing, want failure", r.ID, r.Conclusion)
		}
	}
}
