package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/internal/githubfake"
)

const checkRunsRoute = "POST /repos/{owner}/{repo}/check-runs"

// TestServeWaitsForPrimaryLimitReset: GitHub answers the check-run creation with a primary limit (429,
// x-ratelimit-remaining 0) that resets in two seconds. serve waits for the reset — sending nothing meanwhile —
// and the check completes.
func TestServeWaitsForPrimaryLimitReset(t *testing.T) {
	h := newHarness(t)
	h.fake.InjectFault(githubfake.Fault{Route: checkRunsRoute, RateLimit: githubfake.PrimaryLimit, Status: http.StatusTooManyRequests, ResetIn: 2 * time.Second, Times: 1})
	pr := h.openPR("snapshot", "add-foo", "[snapshot] Add foo 1.2.3", pkgFiles("foo", "1.2.3", 3, "v1"))
	if run := h.completedRun(pr.HeadSHA); run.Conclusion != "success" {
		t.Fatalf("check = %s:\n%s", run.Conclusion, run.Summary)
	}
	noKnocking(t, h.fake)
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `storagebot_github_retries_total{reason="rate_limit"}`) {
		t.Errorf("/metrics lacks the rate_limit retries:\n%s", grep(metrics, "retries"))
	}
}

// TestServeReportsLimitPastBudget: a primary limit that resets in ten minutes outlasts serve's one-minute
// budget. The event gives up at once (no worker sleeps for ten minutes, nothing is sent while the limit
// holds), and the outcome is logged with the limit's end and counted; the event is queued to run again then.
func TestServeReportsLimitPastBudget(t *testing.T) {
	h := newHarness(t)
	h.fake.InjectFault(githubfake.Fault{Route: checkRunsRoute, RateLimit: githubfake.PrimaryLimit, ResetIn: 10 * time.Minute, Times: 1})
	h.openPR("snapshot", "add-foo", "[snapshot] Add foo 1.2.3", pkgFiles("foo", "1.2.3", 3, "v1"))
	h.waitFor("the rate-limited event to be counted", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `storagebot_github_rate_limited_events_total{event="pull_request",outcome="requeued"} 1`) &&
			strings.Contains(m, `storagebot_events_handled_total{event="pull_request",result="rate_limited"} 1`)
	})
	logs := h.logs.String()
	line := grep(logs, "running it again when the limit ends")
	if !strings.Contains(line, `"limit":"primary"`) || !strings.Contains(line, `"until":`) || !strings.Contains(line, `"github_delivery_id":`) {
		t.Errorf("no warning naming the limit, its end and the delivery; logs:\n%s", tail(logs, 20))
	}
	noKnocking(t, h.fake)
}

// noKnocking checks that no request was sent again while a rate limit held. The PR check reads channels in
// parallel, so reads already on their way when the limit began are refused once each; sending one again
// before the limit ends would be knocking, which GitHub may punish with a ban.
func noKnocking(t *testing.T, fake *githubfake.Server) {
	t.Helper()
	for req, n := range fake.RequestsWhileLimitedByPath() {
		if n > 1 {
			t.Errorf("%s sent %d times while the rate limit held, want at most once (already on its way)", req, n)
		}
	}
}
