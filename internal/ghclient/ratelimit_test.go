package ghclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
)

// fakeClock stands in for time in the retry transport: sleeping advances it, so a test checks minute-long
// waits without waiting.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
	return ctx.Err()
}

func (c *fakeClock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// limitAnswer is one scripted answer; resetIn, when set, becomes X-RateLimit-Remaining: 0 and an
// X-RateLimit-Reset that far after the fake clock's now.
type limitAnswer struct {
	status     int
	retryAfter string
	resetIn    time.Duration
	message    string
}

func scriptedServer(t *testing.T, clock *fakeClock, answers []limitAnswer) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		if n >= len(answers) {
			t.Errorf("request %d beyond the %d scripted answers", n+1, len(answers))
			w.WriteHeader(http.StatusTeapot)
			return
		}
		a := answers[n]
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		if a.resetIn != 0 {
			w.Header().Set("X-RateLimit-Limit", "5000")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(clock.now().Add(a.resetIn).Unix(), 10))
		}
		w.WriteHeader(a.status)
		if a.message != "" {
			_, _ = fmt.Fprintf(w, `{"message":%q}`, a.message)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRateLimitWaits(t *testing.T) {
	const secondaryMsg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
	tests := []struct {
		name     string
		maxWait  time.Duration
		deadline time.Duration // a context deadline this far from now, when set
		answers  []limitAnswer
		// wantSleepAtLeast is the shortest acceptable wait before the second attempt; 0 = no retry.
		wantSleepAtLeast time.Duration
		wantSleepAtMost  time.Duration
		wantStatus       int
		wantKind         string // the *RateLimitError returned instead of an answer, when set
		wantUntil        time.Duration
		wantCalls        int
	}{
		{
			name: "secondary 403 without Retry-After waits a full minute", maxWait: 2 * time.Minute,
			answers:          []limitAnswer{{status: 403, message: secondaryMsg}, {status: 200}},
			wantSleepAtLeast: time.Minute, wantSleepAtMost: time.Minute + time.Second, wantStatus: 200, wantCalls: 2,
		},
		{
			name: "429 without headers is a secondary limit: a full minute", maxWait: 2 * time.Minute,
			answers:          []limitAnswer{{status: 429}, {status: 200}},
			wantSleepAtLeast: time.Minute, wantSleepAtMost: time.Minute + time.Second, wantStatus: 200, wantCalls: 2,
		},
		{
			name: "secondary 403 with Retry-After waits that long", maxWait: 2 * time.Minute,
			answers:          []limitAnswer{{status: 403, retryAfter: "5", message: secondaryMsg}, {status: 200}},
			wantSleepAtLeast: 5 * time.Second, wantSleepAtMost: 5 * time.Second, wantStatus: 200, wantCalls: 2,
		},
		{
			name: "primary 403 waits until x-ratelimit-reset", maxWait: 2 * time.Minute,
			answers:          []limitAnswer{{status: 403, resetIn: 90 * time.Second, message: "API rate limit exceeded"}, {status: 200}},
			wantSleepAtLeast: 90 * time.Second, wantSleepAtMost: 92 * time.Second, wantStatus: 200, wantCalls: 2,
		},
		{
			name: "primary 429 waits until x-ratelimit-reset", maxWait: 2 * time.Minute,
			answers:          []limitAnswer{{status: 429, resetIn: 45 * time.Second}, {status: 200}},
			wantSleepAtLeast: 45 * time.Second, wantSleepAtMost: 47 * time.Second, wantStatus: 200, wantCalls: 2,
		},
		{
			name: "primary limit past the budget fails at once", maxWait: time.Minute,
			answers:  []limitAnswer{{status: 403, resetIn: time.Hour, message: "API rate limit exceeded"}},
			wantKind: PrimaryLimit, wantUntil: time.Hour + time.Second, wantCalls: 1,
		},
		{
			name: "secondary limit past the budget fails at once", maxWait: 30 * time.Second,
			answers:  []limitAnswer{{status: 403, message: secondaryMsg}},
			wantKind: SecondaryLimit, wantUntil: time.Minute, wantCalls: 1,
		},
		{
			name: "Retry-After past the budget fails at once", maxWait: time.Minute,
			answers:  []limitAnswer{{status: 429, retryAfter: "3600"}},
			wantKind: SecondaryLimit, wantUntil: time.Hour, wantCalls: 1,
		},
		{
			name: "a context deadline shortens the budget", maxWait: 2 * time.Minute, deadline: 10 * time.Second,
			answers:  []limitAnswer{{status: 403, message: secondaryMsg}},
			wantKind: SecondaryLimit, wantUntil: time.Minute, wantCalls: 1,
		},
		{
			// GitHub: wait exponentially longer while the secondary limit keeps coming back (1, then 2 minutes).
			name: "a second secondary limit in a row waits twice as long, past the budget", maxWait: 90 * time.Second,
			answers:          []limitAnswer{{status: 403, message: secondaryMsg}, {status: 403, message: secondaryMsg}},
			wantSleepAtLeast: time.Minute, wantSleepAtMost: time.Minute + time.Second, wantKind: SecondaryLimit, wantUntil: 3 * time.Minute, wantCalls: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Now()}
			start := clock.now()
			srv, calls := scriptedServer(t, clock, tc.answers)
			rt := newRetryTransport(http.DefaultTransport, RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxWait: tc.maxWait}, nil)
			rt.now, rt.sleep = clock.now, clock.sleep
			ctx := context.Background()
			if tc.deadline != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, start.Add(tc.deadline))
				defer cancel()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/repos/o/r", nil)
			resp, err := rt.RoundTrip(req)
			if tc.wantKind != "" {
				lim, ok := AsRateLimit(err)
				if !ok {
					t.Fatalf("RoundTrip = %v, %v; want a %s *RateLimitError", resp, err, tc.wantKind)
				}
				if lim.Kind != tc.wantKind {
					t.Errorf("kind = %q, want %q", lim.Kind, tc.wantKind)
				}
				if got := lim.Until.Sub(start); got < tc.wantUntil-time.Second || got > tc.wantUntil+time.Second {
					t.Errorf("until = start+%v, want start+%v", got, tc.wantUntil)
				}
			} else {
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
				}
			}
			slept := clock.sleeps()
			if tc.wantSleepAtLeast == 0 && len(slept) > 0 {
				t.Errorf("slept %v, want no wait: the limit outlasts the budget, fail at once", slept)
			}
			if tc.wantSleepAtLeast > 0 && (len(slept) == 0 || slept[0] < tc.wantSleepAtLeast || slept[0] > tc.wantSleepAtMost) {
				t.Errorf("slept %v, want a first wait in [%v, %v]", slept, tc.wantSleepAtLeast, tc.wantSleepAtMost)
			}
			if int(calls.Load()) != tc.wantCalls {
				t.Errorf("requests = %d, want %d", calls.Load(), tc.wantCalls)
			}
		})
	}
}

// TestRateLimitHoldsLaterRequests: once GitHub said the limit is spent, the client does not knock again
// before it ends — later requests wait for it when their budget allows, or fail without being sent.
func TestRateLimitHoldsLaterRequests(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	srv, calls := scriptedServer(t, clock, []limitAnswer{{status: 403, resetIn: 10 * time.Minute, message: "API rate limit exceeded"}, {status: 200}, {status: 200}})
	rt := newRetryTransport(http.DefaultTransport, RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxWait: time.Minute}, nil)
	rt.now, rt.sleep = clock.now, clock.sleep
	get := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		return rt.RoundTrip(req)
	}
	if _, err := get("/repos/o/r"); err == nil {
		t.Fatal("first request succeeded, want the primary limit")
	}
	_, err := get("/repos/o/r/pulls")
	lim, ok := AsRateLimit(err)
	if !ok || lim.Status != 0 || lim.Path != "/repos/o/r/pulls" {
		t.Fatalf("second request: %v; want a *RateLimitError for it, not sent (status 0)", err)
	}
	if calls.Load() != 1 {
		t.Errorf("GitHub saw %d requests, want 1: nothing is sent while the limit holds", calls.Load())
	}
	// The search resource has its own budget: a spent core limit does not hold it.
	if resp, err := get("/search/issues"); err != nil {
		t.Errorf("search request: %v, want it sent", err)
	} else {
		resp.Body.Close()
	}
	// Nine and a half minutes later the rest of the limit fits in the budget: the request waits, then goes.
	clock.t = clock.t.Add(9*time.Minute + 30*time.Second)
	resp, err := get("/repos/o/r")
	if err != nil {
		t.Fatalf("request after the limit: %v", err)
	}
	resp.Body.Close()
	if slept := clock.sleeps(); len(slept) != 1 || slept[0] < 30*time.Second || slept[0] > 32*time.Second {
		t.Errorf("slept %v, want one wait of about 31 s until the reset", slept)
	}
}

func TestAsRateLimitUnderstandsGoGitHub(t *testing.T) {
	reset := time.Now().Add(20 * time.Minute).Truncate(time.Second)
	retryAfter := 90 * time.Second
	tests := []struct {
		name     string
		err      error
		wantKind string
		wantMin  time.Time
	}{
		{"go-github local primary refusal", fmt.Errorf("list pulls: %w", &github.RateLimitError{Rate: github.Rate{Reset: github.Timestamp{Time: reset}}}), PrimaryLimit, reset},
		{"go-github secondary with Retry-After", &github.AbuseRateLimitError{RetryAfter: &retryAfter}, SecondaryLimit, time.Now().Add(retryAfter - time.Second)},
		{"go-github secondary without Retry-After", &github.AbuseRateLimitError{}, SecondaryLimit, time.Now().Add(minSecondaryWait - time.Second)},
		{"ours through url.Error", fmt.Errorf("handle: %w", &urlErrorLike{err: &RateLimitError{Kind: PrimaryLimit, Until: reset}}), PrimaryLimit, reset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lim, ok := AsRateLimit(tc.err)
			if !ok {
				t.Fatalf("AsRateLimit(%v) = false", tc.err)
			}
			if lim.Kind != tc.wantKind || lim.Until.Before(tc.wantMin) {
				t.Errorf("got %s until %v, want %s not before %v", lim.Kind, lim.Until, tc.wantKind, tc.wantMin)
			}
		})
	}
	if _, ok := AsRateLimit(errors.New("404 Not Found")); ok {
		t.Error("a plain error was taken for a rate limit")
	}
}

type urlErrorLike struct{ err error }

func (e *urlErrorLike) Error() string { return "Get \"…\": " + e.err.Error() }
func (e *urlErrorLike) Unwrap() error { return e.err }

// TestEveryAttemptHasADeadline: a request GitHub never answers ends after AttemptTimeout, also through
// go-github's GetBranch, which calls the transport around http.Client and its Timeout; a GET is retried
// with a fresh deadline, a POST is not (it may have been applied).
func TestEveryAttemptHasADeadline(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	policy := RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxWait: time.Minute, AttemptTimeout: 100 * time.Millisecond}
	gh := github.NewClient(&http.Client{Transport: NewRetryTransport(http.DefaultTransport, policy, nil)})
	gh.BaseURL, _ = gh.BaseURL.Parse(srv.URL + "/")

	start := time.Now()
	_, _, err := gh.Repositories.GetBranch(context.Background(), "o", "r", "snapshot", true)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetBranch = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("GetBranch took %v, want about two attempts of 100 ms", d)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("GET attempts = %d, want 2", got)
	}

	calls.Store(0)
	_, _, err = gh.Issues.CreateComment(context.Background(), "o", "r", 1, &github.IssueComment{Body: github.String("hi")})
	if err == nil {
		t.Error("CreateComment succeeded, want a deadline error")
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("POST attempts = %d, want 1: a write without an answer may have landed", got)
	}
}

func TestRetryObserverReasons(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	srv, _ := scriptedServer(t, clock, []limitAnswer{{status: 502}, {status: 403, retryAfter: "1", message: "secondary rate limit"}, {status: 200}})
	var reasons []string
	rt := newRetryTransport(http.DefaultTransport, RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxWait: time.Minute}, func(r string) { reasons = append(reasons, r) })
	rt.now, rt.sleep = clock.now, clock.sleep
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/repos/o/r", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 0 {
		t.Errorf("got %d %q, want the final 200", resp.StatusCode, b)
	}
	if diff := cmp.Diff([]string{"server_error", "rate_limit"}, reasons); diff != "" {
		t.Errorf("retry reasons (-want +got):\n%s", diff)
	}
}

// TestLastRequestOfPrimaryLimitHoldsTheNext: an answer that spends the primary limit's last request (200
// with X-RateLimit-Remaining: 0) holds the next request until the reset, without sending it.
func TestLastRequestOfPrimaryLimitHoldsTheNext(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	srv, calls := scriptedServer(t, clock, []limitAnswer{{status: 200, resetIn: 30 * time.Minute}})
	rt := newRetryTransport(http.DefaultTransport, RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxWait: time.Minute}, nil)
	rt.now, rt.sleep = clock.now, clock.sleep
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/repos/o/r/branches/snapshot", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v, want its 200", resp, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/repos/o/r/branches/staging", nil)
	_, err = rt.RoundTrip(req)
	if lim, ok := AsRateLimit(err); !ok || lim.Kind != PrimaryLimit || lim.Status != 0 {
		t.Errorf("second request: %v, want a primary *RateLimitError without sending it", err)
	}
	if calls.Load() != 1 {
		t.Errorf("GitHub saw %d requests, want 1", calls.Load())
	}
}
