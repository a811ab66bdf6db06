package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
)

// logLines returns the server's JSON log lines whose message contains msg.
func (h *harness) logLines(msg string) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(h.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if s, _ := m["message"].(string); strings.Contains(s, msg) {
			out = append(out, m)
		}
	}
	return out
}

// waitForLog waits until a log line whose message contains msg has every field in fields.
func (h *harness) waitForLog(msg string, fields map[string]any) {
	h.t.Helper()
	h.waitFor("log "+msg, func() bool {
		for _, m := range h.logLines(msg) {
			ok := true
			for k, v := range fields {
				if m[k] != v {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
		return false
	})
}

// latestRun is the last storage-policy run on sha.
func (h *harness) latestRun(sha string) githubfake.CheckRun {
	h.t.Helper()
	var run githubfake.CheckRun
	for _, r := range h.repo.CheckRuns(sha) {
		if r.Name == "storage-policy" {
			run = r
		}
	}
	return run
}

// TestTamperedAllowMarkerCountsForNothing: a writer cannot re-bind a maintainer's exception to new content by
// editing the tree SHA in the bot's /allow reply.
func TestTamperedAllowMarkerCountsForNothing(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	h.repo.SetPermission("writer", "write")
	pr := h.openOverwritePR("staging", "2.0.0")
	h.completedRun(pr.HeadSHA)
	granted, err := h.repo.TreeSHA(pr.HeadSHA, "packages/foo/2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.repo.Comment(pr.Number, "maint", "/allow overwrite foo@2.0.0 typo fix reviewed"); err != nil {
		t.Fatal(err)
	}
	reply := h.botReply(pr.Number, "✅ Allowed `overwrite`")
	h.settle()
	if run := h.latestRun(pr.HeadSHA); run.Conclusion != "success" {
		t.Fatalf("after /allow: %s, want success:\n%s", run.Conclusion, run.Summary)
	}

	// New content the maintainer never saw: the exception lapses.
	head, err := h.repo.PushToPullRequest(pr.Number, "sneak in more", map[string]*githubfake.File{
		"packages/foo/2.0.0/data_stream/ds2/fields/fields.yml": {Content: []byte("- name: unreviewed\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if run := h.completedRun(head); run.Conclusion != "failure" {
		t.Fatalf("after the push: %s, want failure", run.Conclusion)
	}
	sneaked, err := h.repo.TreeSHA(head, "packages/foo/2.0.0")
	if err != nil {
		t.Fatal(err)
	}

	// The writer edits the bot's reply so its marker binds the new tree, then asks for a recheck.
	forged := strings.ReplaceAll(reply.Body, granted, sneaked)
	if forged == reply.Body {
		t.Fatalf("the reply does not hold the granted tree %s:\n%s", granted, reply.Body)
	}
	if err := h.repo.EditComment(reply.ID, "writer", forged); err != nil {
		t.Fatal(err)
	}
	h.waitForLog("tampered", map[string]any{"editor": "writer", "comment_id": float64(reply.ID), "marker_changed": true})
	if _, err := h.repo.Comment(pr.Number, "writer", "/recheck"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "ran again on "+head[:7])
	h.settle()
	if run := h.latestRun(head); run.Conclusion != "failure" || !strings.Contains(run.Summary, "**overwrite** (error)") {
		t.Errorf("after the forged marker and /recheck: %s, want failure on the overwrite; summary:\n%s", run.Conclusion, run.Summary)
	}
	h.waitForLog("exceptions marker does not verify", map[string]any{"comment_id": float64(reply.ID)})
}

// TestTamperedRemovalMarkerIsNotAutoMerged: a writer pushes an extra removal onto the bot's removal PR and
// edits the commit in its body marker to the new head, hoping auto-merge takes it.
func TestTamperedRemovalMarkerIsNotAutoMerged(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("writer", "write")
	h.commit("snapshot", "foo and bar", githubfake.MergeFiles(pkgFiles("foo", "1.0.0", 2, "v1"), pkgFiles("bar", "1.0.0", 2, "v1")))
	promo := h.promoteFromIssue("writer", "foo@1.0.0")
	if _, err := h.repo.MergePullRequest(promo.Number, "merge"); err != nil {
		t.Fatal(err)
	}
	var removal githubfake.PullRequest
	h.waitFor("the removal PR", func() bool {
		rms := h.pullsInto("snapshot", "storagebot/remove/snapshot/")
		if len(rms) == 1 {
			removal = rms[0]
		}
		return len(rms) == 1
	})
	h.completedRun(removal.HeadSHA)
	h.settle()
	// Auto-merge is turned on only now, so the bot's own removal PR waits for the writer's moves.
	h.commit("main", "config", map[string]*githubfake.File{".github/storagebot.yml": {Content: []byte("auto_merge_removals: true\n")}})

	head, err := h.repo.PushToPullRequest(removal.Number, "also drop bar", map[string]*githubfake.File{"packages/bar/1.0.0": nil})
	if err != nil {
		t.Fatal(err)
	}
	h.completedRun(head)
	h.settle()
	body := h.repo.PullRequest(removal.Number).Body
	forged := strings.ReplaceAll(body, removal.HeadSHA, head)
	if forged == body {
		t.Fatalf("the removal PR body does not name the bot's commit %s:\n%s", removal.HeadSHA, body)
	}
	if err := h.repo.EditPullRequestBody(removal.Number, "writer", forged); err != nil {
		t.Fatal(err)
	}
	h.waitForLog("tampered", map[string]any{"editor": "writer", "pr": float64(removal.Number), "marker_changed": true})
	// A body-only edit is not re-evaluated; the writer's next push is, and a green check on it makes the bot
	// consider merging, reading the forged marker.
	if _, err := h.repo.PushToPullRequest(removal.Number, "notes", map[string]*githubfake.File{"NOTES.md": {Content: []byte("x\n")}}); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if pr := h.repo.PullRequest(removal.Number); pr.Merged {
		t.Fatalf("the removal PR with a forged marker was auto-merged")
	}
	if tree, _ := h.repo.TreeSHA("snapshot", "packages/bar/1.0.0"); tree == "" {
		t.Errorf("bar 1.0.0 left snapshot (and every distribution) through a forged removal")
	}
	h.waitForLog("PR body's storagebot marker does not verify", map[string]any{"pr": float64(removal.Number)})
}

// TestForgedFollowUpNoteMarker: an unsealed follow-up marker planted in a bot comment does not stop the real
// note; an edit of the real note is logged and does not make the bot post it twice.
func TestForgedFollowUpNoteMarker(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("writer", "write")
	h.commit("snapshot", "foo 1.0.0", pkgFiles("foo", "1.0.0", 2, "v1"))
	promo := h.promoteFromIssue("writer", "foo@1.0.0")

	// The writer gets a bot comment on the promotion PR and plants the note's marker in it.
	if _, err := h.repo.Comment(promo.Number, "writer", "/help"); err != nil {
		t.Fatal(err)
	}
	help := h.botReply(promo.Number, "storagebot commands")
	planted := help.Body + "\n<!-- storagebot:followup pr-" + strconv.Itoa(promo.Number) + " -->"
	if err := h.repo.EditComment(help.ID, "writer", planted); err != nil {
		t.Fatal(err)
	}
	h.waitForLog("tampered", map[string]any{"editor": "writer", "comment_id": float64(help.ID)})

	if _, err := h.repo.MergePullRequest(promo.Number, "merge"); err != nil {
		t.Fatal(err)
	}
	note := h.botReply(promo.Number, "Removal follow-up")
	h.settle()

	// Editing the real note is logged, and a redelivered merge finds the note all the same: posted once.
	if err := h.repo.EditComment(note.ID, "writer", strings.Replace(note.Body, "removes", "keeps", 1)); err != nil {
		t.Fatal(err)
	}
	h.waitForLog("tampered", map[string]any{"editor": "writer", "comment_id": float64(note.ID)})
	for _, d := range h.fake.Deliveries() {
		if d.Event == "pull_request" && d.Action == "closed" && strings.Contains(string(d.Body), `"number":`+strconv.Itoa(promo.Number)+`,`) {
			h.redeliver(d)
		}
	}
	h.settle()
	notes := 0
	for _, c := range h.repo.IssueComments(promo.Number) {
		if strings.HasSuffix(c.User, "[bot]") && strings.Contains(c.Body, "Removal follow-up") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d follow-up notes on #%d, want exactly 1", notes, promo.Number)
	}
}

// TestBotLoginFailureFailsLoudly: when GET /app fails the check says it could not evaluate, and why, instead
// of judging the PR as if no exception had been granted.
func TestBotLoginFailureFailsLoudly(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	pr := h.openOverwritePR("staging", "2.0.0")
	h.completedRun(pr.HeadSHA)
	if _, err := h.repo.Comment(pr.Number, "maint", "/allow overwrite foo@2.0.0 reviewed"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "✅ Allowed")
	h.settle()
	if run := h.latestRun(pr.HeadSHA); run.Conclusion != "success" {
		t.Fatalf("after /allow: %s", run.Conclusion)
	}

	// A new process that cannot learn its login.
	h.fake.InjectFault(githubfake.Fault{Route: "GET /app", Status: 404})
	h.restart()
	if _, err := h.repo.Comment(pr.Number, "maint", "/recheck"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "❌ Failed")
	h.settle()
	run := h.latestRun(pr.HeadSHA)
	if run.Conclusion != "failure" || !strings.Contains(run.Title, "could not evaluate") || !strings.Contains(run.Summary, "GET /app") {
		t.Errorf("with GET /app failing: %s %q, want failure saying it could not evaluate because of GET /app; summary:\n%s", run.Conclusion, run.Title, run.Summary)
	}
	if n := h.fake.Calls("GET /app"); n < 3 {
		t.Errorf("GET /app asked %d times, want it retried", n)
	}

	// Once GitHub answers again, the next evaluation honours the exception.
	h.fake.ClearFaults()
	if _, err := h.repo.Comment(pr.Number, "maint", "/recheck\n"); err != nil {
		t.Fatal(err)
	}
	h.botReply(pr.Number, "**success**")
	h.settle()
	if run := h.latestRun(pr.HeadSHA); run.Conclusion != "success" {
		t.Errorf("after GET /app recovered: %s, want success", run.Conclusion)
	}
}
