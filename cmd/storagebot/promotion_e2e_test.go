package main

import (
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
)

// pullsInto returns the PRs whose base is base and whose head branch starts with prefix.
func (h *harness) pullsInto(base, prefix string) []githubfake.PullRequest {
	var out []githubfake.PullRequest
	for _, pr := range h.repo.PullRequests() {
		if pr.Base == base && strings.HasPrefix(pr.Head, prefix) {
			out = append(out, pr)
		}
	}
	return out
}

// botReply waits for the bot's reply on an issue that contains want.
func (h *harness) botReply(number int, want string) githubfake.Comment {
	h.t.Helper()
	var reply githubfake.Comment
	h.waitFor("bot reply containing "+want, func() bool {
		for _, c := range h.repo.IssueComments(number) {
			if strings.HasSuffix(c.User, "[bot]") && strings.Contains(c.Body, want) {
				reply = c
				return true
			}
		}
		return false
	})
	return reply
}

func TestPromoteMergeAndExactlyOnceRemoval(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("writer", "write")
	files := pkgFiles("foo", "1.2.3", 5, "v1")
	addPR := h.openPR("snapshot", "add-foo", "[snapshot] Add foo 1.2.3", files)
	if run := h.completedRun(addPR.HeadSHA); run.Conclusion != "success" {
		t.Fatalf("snapshot PR check = %s:\n%s", run.Conclusion, run.Summary)
	}
	if _, err := h.repo.MergePullRequest(addPR.Number, "merge"); err != nil {
		t.Fatal(err)
	}

	cmd, err := h.repo.Comment(addPR.Number, "writer", "Ready for staging.\n/promote foo@1.2.3\n")
	if err != nil {
		t.Fatal(err)
	}
	reply := h.botReply(addPR.Number, "> /promote foo@1.2.3")
	if !strings.Contains(reply.Body, "✅") {
		t.Fatalf("reply is not a success:\n%s", reply.Body)
	}
	if got := h.repo.Reactions(cmd.ID); len(got) == 0 || got[0] != "eyes" {
		t.Errorf("reactions on the command = %v, want eyes", got)
	}
	promos := h.pullsInto("staging", "storagebot/promote/staging/")
	if len(promos) != 1 {
		t.Fatalf("promotion PRs = %+v, want exactly one", promos)
	}
	promo := promos[0]
	if !strings.HasPrefix(promo.Title, "[staging] Promote foo@1.2.3") {
		t.Errorf("promotion title = %q", promo.Title)
	}
	src, _ := h.repo.TreeSHA("snapshot", "packages/foo/1.2.3")
	dst, _ := h.repo.TreeSHA(promo.Head, "packages/foo/1.2.3")
	if src == "" || src != dst {
		t.Fatalf("promoted tree %q, want snapshot's %q (copied by reference)", dst, src)
	}
	if run := h.completedRun(promo.HeadSHA); run.Conclusion != "success" {
		t.Fatalf("promotion PR check = %s:\n%s", run.Conclusion, run.Summary)
	}

	// Merge the promotion; the removal follow-up opens on snapshot.
	if _, err := h.repo.MergePullRequest(promo.Number, "merge"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("removal PR", func() bool { return len(h.pullsInto("snapshot", "storagebot/remove/snapshot/")) == 1 })

	// GitHub redelivers the merge event; the server restarts in between; still exactly one removal PR.
	var closed githubfake.Delivery
	for _, d := range h.fake.Deliveries() {
		if d.Event == "pull_request" && d.Action == "closed" && strings.Contains(string(d.Body), `"number":`+itoa(promo.Number)+`,`) {
			closed = d
		}
	}
	if closed.ID == "" {
		t.Fatal("no pull_request closed delivery recorded for the promotion PR")
	}
	if code := h.redeliver(closed); code != 200 {
		t.Fatalf("redelivery = %d", code)
	}
	h.restart()
	for i := 0; i < 2; i++ {
		if code := h.redeliver(closed); code != 200 {
			t.Fatalf("redelivery after restart = %d", code)
		}
	}
	h.settle()
	removals := h.pullsInto("snapshot", "storagebot/remove/snapshot/")
	if len(removals) != 1 {
		t.Fatalf("removal PRs = %+v, want exactly one", removals)
	}
	rm := removals[0]
	wantTitle := "[snapshot] Remove packages promoted to staging in #" + itoa(promo.Number) + " (foo@1.2.3)"
	if rm.Title != wantTitle {
		t.Errorf("removal title = %q, want %q", rm.Title, wantTitle)
	}
	if !contains(rm.Labels, "storage/removal") {
		t.Errorf("removal labels = %v, want storage/removal", rm.Labels)
	}
	if tree, _ := h.repo.TreeSHA(rm.Head, "packages/foo/1.2.3"); tree != "" {
		t.Errorf("removal branch still holds packages/foo/1.2.3")
	}
	if run := h.completedRun(rm.HeadSHA); run.Conclusion != "success" {
		t.Errorf("removal PR check = %s:\n%s", run.Conclusion, run.Summary)
	}
	// The promotion PR is told once where its lower copies went.
	notes := 0
	for _, c := range h.repo.IssueComments(promo.Number) {
		if strings.Contains(c.Body, "Removal follow-up") {
			notes++
			if !strings.Contains(c.Body, "#"+itoa(rm.Number)+" removes foo@1.2.3") {
				t.Errorf("follow-up note does not link the removal PR:\n%s", c.Body)
			}
		}
	}
	if notes != 1 {
		t.Errorf("%d follow-up notes on #%d, want exactly 1 after three deliveries", notes, promo.Number)
	}
}

func TestPromoteRefusals(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("reader", "read")
	h.repo.SetPermission("maint", "maintain")
	h.commit("snapshot", "foo 1.2.3", pkgFiles("foo", "1.2.3", 2, "v1"))
	h.commit("staging", "foo 8.0.5", pkgFiles("foo", "8.0.5", 2, "v1"))
	// version-order is scoped to a major.minor line (docs/architecture.md §4): 8.0.5 is refused because of 8.0.9, not 8.1.0.
	h.commit("production", "foo 8.0.9", pkgFiles("foo", "8.0.9", 2, "v1"))
	h.commit("production", "foo 8.1.0", pkgFiles("foo", "8.1.0", 2, "v1"))
	issue := h.repo.OpenIssue("Promotions", "", "alice")
	trees := func() int { return h.fake.Calls("POST /repos/{owner}/{repo}/git/trees") }
	treesBefore := trees()

	tests := []struct {
		name, user, body, want string
	}{
		{"read-only user", "reader", "/promote foo@1.2.3", "needs the `write` repository permission; @reader has `read`"},
		{"version order in production", "maint", "/promote foo@8.0.5 to production", "version-order"},
		{"unknown version", "maint", "/promote nope@1.0.0", "nope@1.0.0"},
		{"malformed command gets help", "maint", "/promotes foo@1.2.3", "storagebot commands"},
		{"look-alike digits refused", "maint", "/promote foo@１.2.3", "U+FF11"},
		{"unknown channel", "maint", "/promote foo@1.2.3 to qa", "qa"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.repo.Comment(issue, tc.user, tc.body); err != nil {
				t.Fatal(err)
			}
			reply := h.botReply(issue, "> "+tc.body)
			if !strings.Contains(reply.Body, "❌") || !strings.Contains(reply.Body, tc.want) {
				t.Errorf("reply to %q:\n%s\nwant a refusal containing %q", tc.body, reply.Body, tc.want)
			}
		})
	}
	if n := trees() - treesBefore; n != 0 {
		t.Errorf("refused commands wrote %d trees, want none", n)
	}
	if prs := h.pullsInto("staging", "storagebot/"); len(prs) != 0 {
		t.Errorf("refused commands opened PRs: %+v", prs)
	}
	// An edited comment never re-runs its commands.
	c, err := h.repo.Comment(issue, "maint", "just a note")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.repo.EditComment(c.ID, "maint", "/promote foo@1.2.3"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if prs := h.pullsInto("staging", "storagebot/"); len(prs) != 0 {
		t.Errorf("an edited comment opened PRs: %+v", prs)
	}
}

func TestReconcileOpensMissedRemoval(t *testing.T) {
	h := newHarness(t)
	files := pkgFiles("bar", "2.0.0", 3, "v1")
	h.commit("snapshot", "bar 2.0.0", files)
	// The promotion reached staging while the bot missed the webhook.
	h.commit("staging", "bar 2.0.0 promoted by hand", files)
	h.restart() // reconcile runs at start
	h.waitFor("reconcile removal PR", func() bool { return len(h.pullsInto("snapshot", "storagebot/remove/snapshot/")) == 1 })
	rm := h.pullsInto("snapshot", "storagebot/remove/snapshot/")[0]
	if !strings.HasPrefix(rm.Title, "[snapshot] Remove packages already in staging (bar@2.0.0") {
		t.Errorf("reconcile removal title = %q", rm.Title)
	}
	h.restart() // and again: nothing new
	if n := len(h.pullsInto("snapshot", "storagebot/remove/")); n != 1 {
		t.Errorf("after a second reconcile: %d removal PRs, want 1", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
