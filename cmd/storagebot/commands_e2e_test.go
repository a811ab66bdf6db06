package main

import (
	"strings"
	"testing"
)

// TestHelpAndRebuildReplies: /help lists every built command (/rebuild among them now that rollout is real;
// commands still marked Unavailable are held out of /help by internal/commandparse' own test), /rebuild on a
// repository without distributions says what to configure, and no reply cites a file users do not have.
func TestHelpAndRebuildReplies(t *testing.T) {
	h := newHarness(t)
	h.repo.SetPermission("maint", "maintain")
	pr := h.openOverwritePR("production", "1.0.0")
	h.completedRun(pr.HeadSHA)

	if _, err := h.repo.Comment(pr.Number, "maint", "/help"); err != nil {
		t.Fatal(err)
	}
	help := h.botReply(pr.Number, "storagebot commands")
	for _, cmd := range []string{"/promote", "/allow", "/recheck", "/rebuild", "/help"} {
		if !strings.Contains(help.Body, "`"+cmd) {
			t.Errorf("/help does not list %s:\n%s", cmd, help.Body)
		}
	}

	for _, typed := range []string{"/rebuild", "/rebuild staging"} {
		if _, err := h.repo.Comment(pr.Number, "maint", typed); err != nil {
			t.Fatal(err)
		}
		reply := h.botReply(pr.Number, "> "+typed+"\n")
		if !strings.Contains(reply.Body, "❌ Nothing to rebuild") || !strings.Contains(reply.Body, "distributions") {
			t.Errorf("reply to %q does not say that no distributions are configured:\n%s", typed, reply.Body)
		}
	}

	if _, err := h.repo.Comment(pr.Number, "maint", "/allow overwrite foo@1.0.0 urgent fix"); err != nil {
		t.Fatal(err)
	}
	reply := h.botReply(pr.Number, "takes no exceptions")
	if strings.Contains(reply.Body, "DESIGN") || strings.Contains(reply.Body, "§") || !strings.Contains(reply.Body, ".github/storagebot.yml") {
		t.Errorf("the refusal cites a file users do not have, or not the one they have:\n%s", reply.Body)
	}
	h.settle()
	for _, c := range h.repo.IssueComments(pr.Number) {
		if strings.HasSuffix(c.User, "[bot]") && (strings.Contains(c.Body, "DESIGN") || strings.Contains(c.Body, "§")) {
			t.Errorf("bot comment cites DESIGN:\n%s", c.Body)
		}
	}
}
