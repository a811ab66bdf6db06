package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/testkit"
)

// limitedHandler fails with a GitHub rate limit the first `limited` times it runs, then succeeds.
type limitedHandler struct {
	mu      sync.Mutex
	runs    int
	limited int
}

func (h *limitedHandler) Handles() []string { return []string{"pull_request"} }

func (h *limitedHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs++
	if h.runs <= h.limited {
		lim := &ghclient.RateLimitError{Kind: ghclient.PrimaryLimit, Resource: "core", Until: time.Now().Add(30 * time.Millisecond), Method: "POST", Path: "/repos/o/r/check-runs", Status: 403}
		return fmt.Errorf("create check run: %w", lim)
	}
	return nil
}

func (h *limitedHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs
}

func TestRateLimitedEventRunsAgain(t *testing.T) {
	tests := []struct {
		name         string
		limited      int
		wantRuns     int
		wantRequeued float64
		wantGaveUp   float64
		wantOK       float64
		wantLog      string
	}{
		{name: "runs again after the limit ends", limited: 1, wantRuns: 2, wantRequeued: 1, wantOK: 1, wantLog: "running it again when the limit ends"},
		{name: "gives up, logged and counted, after repeated limits", limited: 10, wantRuns: 1 + maxRateLimitRequeues, wantRequeued: maxRateLimitRequeues, wantGaveUp: 1, wantLog: "GitHub rate limit outlasted the event; not running it again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs testkit.SyncBuffer
			h := &limitedHandler{limited: tc.limited}
			s := New(testConfig(), zerolog.New(&logs), nil, []githubapp.EventHandler{h})
			body := []byte(`{"action":"opened","number":1}`)
			if rec := deliver(t, s.Handler(), "pull_request", "d-limited", body, sign(body)); rec.Code != 200 {
				t.Fatalf("delivery answered %d", rec.Code)
			}
			m := s.Metrics()
			waitFor(t, "the event to finish for good", func() bool {
				return testutil.ToFloat64(m.Handled.WithLabelValues("pull_request", "ok")) == tc.wantOK &&
					testutil.ToFloat64(m.RateLimited.WithLabelValues("pull_request", "gave_up")) == tc.wantGaveUp &&
					h.count() == tc.wantRuns
			})
			if got := testutil.ToFloat64(m.RateLimited.WithLabelValues("pull_request", "requeued")); got != tc.wantRequeued {
				t.Errorf("requeued = %v, want %v", got, tc.wantRequeued)
			}
			if got := testutil.ToFloat64(m.Handled.WithLabelValues("pull_request", "rate_limited")); got != float64(tc.limited) && got != float64(tc.wantRuns) {
				t.Errorf("handled rate_limited = %v, want one per limited run", got)
			}
			out := logs.String()
			if !strings.Contains(out, tc.wantLog) || !strings.Contains(out, `"github_delivery_id":"d-limited"`) || !strings.Contains(out, `"until"`) {
				t.Errorf("logs lack %q with the delivery id and the limit's end:\n%s", tc.wantLog, out)
			}
			if strings.Contains(out, `"message":"handler failed"`) {
				t.Errorf("a rate limit was logged as a plain handler failure:\n%s", out)
			}
		})
	}
}
