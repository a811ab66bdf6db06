package main

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
)

// TestServeEndToEnd drives the real wiring: signed deliveries from the fake are acknowledged, handled, logged
// and counted; forged, oversized and malformed ones are refused before any handler.
func TestServeEndToEnd(t *testing.T) {
	h := newHarness(t)

	if code, body := h.get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz = %d %q", code, body)
	}

	h.fake.Ping(h.repo)
	h.commit("feature", "a docs change", map[string]*githubfake.File{"README.md": {Content: []byte("hello\n")}})
	pr, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: "feature", Base: "main", Title: "Docs", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range h.fake.Deliveries() {
		if d.Status < 200 || d.Status > 299 {
			t.Errorf("delivery %s/%s answered %d, want 2xx", d.Event, d.Action, d.Status)
		}
	}
	h.waitFor("pull_request handled", func() bool {
		_, metrics := h.get("/metrics")
		return strings.Contains(metrics, `storagebot_events_handled_total{event="pull_request",result="ok"} 1`)
	})
	_, metrics := h.get("/metrics")
	for _, want := range []string{
		`storagebot_webhook_deliveries_total{event="ping",outcome="ignored"} 1`,
		`storagebot_webhook_deliveries_total{event="pull_request",outcome="accepted"} 1`,
		`storagebot_handler_duration_seconds_count{event="pull_request"} 1`,
		`storagebot_queue_depth 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	logs := h.logs.String()
	for _, want := range []string{`"github_event_type":"pull_request"`, `"github_delivery_id":`, `"github_repository_name":"package-storage"`, `"github_pr_num":` + strconv.Itoa(pr.Number)} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if runs := h.repo.CheckRuns(pr.HeadSHA); len(runs) != 0 {
		t.Errorf("a PR into main (no channel) got check runs %+v, want none", runs)
	}

	// A forged delivery reaches no handler.
	body := []byte(`{"action":"opened","number":1}`)
	code, err := h.fake.DeliverRaw("pull_request", "forged-1", body, "sha256="+strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusUnauthorized {
		t.Errorf("forged delivery = %d, want 401", code)
	}
	// A 30 MB body is refused: 413, or the connection closed while the client still writes; either way the
	// refusal is counted below.
	big := bytes.Repeat([]byte(" "), 30<<20)
	if code, err := h.fake.DeliverRaw("pull_request", "big-1", big, sign(h.fake.WebhookSecret(), big)); err == nil && code != http.StatusRequestEntityTooLarge {
		t.Errorf("30 MB delivery = %d, want 413", code)
	}
	// Malformed JSON is refused with its reason.
	bad := []byte(`{"action":`)
	if code, _ := h.fake.DeliverRaw("pull_request", "bad-1", bad, sign(h.fake.WebhookSecret(), bad)); code != http.StatusBadRequest {
		t.Errorf("malformed delivery = %d, want 400", code)
	}
	h.waitFor("refusals counted", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `outcome="bad_signature"} 1`) && strings.Contains(m, `outcome="malformed"} 1`) &&
			strings.Contains(m, `outcome="too_large"} 1`)
	})
	_, metrics = h.get("/metrics")
	if !strings.Contains(metrics, `storagebot_events_handled_total{event="pull_request",result="ok"} 1`) {
		t.Errorf("refused deliveries reached a handler:\n%s", grep(metrics, "events_handled"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
