// Package ghclient builds the GitHub API clients storagebot uses: installation tokens through ghinstallation
// (via go-githubapp), a response cache that revalidates with ETags and survives token rotation, retries that
// honour GitHub's rate-limit rules, a deadline on every request, and request metrics.
package ghclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
)

// RetryPolicy says how often and how long to retry.
//
// Retried: rate limits (any method: GitHub refused the request, so nothing was applied), and server errors
// (5xx) and transport errors for idempotent methods only (GET, HEAD, OPTIONS, PUT, DELETE). A POST or PATCH
// that got a 5xx or no answer may have been applied — a comment posted, check-run annotations appended — so
// it is returned to the caller, whose look-before-create decides; any other 4xx is returned at once.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the first backoff; it doubles per attempt, with jitter, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxWait is the budget for waiting within one request: backoffs and rate-limit waits together never go
	// past it (nor past the request context's deadline, when sooner). A rate limit that lasts longer fails at
	// once with a *RateLimitError rather than holding a worker; a 5xx is then returned as it came.
	MaxWait time.Duration
	// AttemptTimeout bounds each attempt — token refresh, connection, headers and body — so every request has
	// a deadline, including those go-github sends around http.Client (GetBranch), and a retry gets a fresh one.
	AttemptTimeout time.Duration
}

// DefaultRetryPolicy suits webhook handlers: a few quick retries, never more than a minute of waiting, 30 s
// per attempt.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, BaseDelay: 250 * time.Millisecond, MaxDelay: 8 * time.Second, MaxWait: time.Minute, AttemptTimeout: 30 * time.Second}
}

// RetryObserver is told about each retry, for metrics; reason is server_error, rate_limit, transport, or
// token (the installation token could not be fetched, so the request was not sent).
type RetryObserver func(reason string)

// NewRetryTransport wraps next with the retry policy. The transport remembers rate limits GitHub reported,
// and holds (or refuses, past the budget) every later request until they end, so one client — one
// installation, whose limits these are — never keeps knocking while limited.
func NewRetryTransport(next http.RoundTripper, p RetryPolicy, observe RetryObserver) http.RoundTripper {
	return newRetryTransport(next, p, observe)
}

func newRetryTransport(next http.RoundTripper, p RetryPolicy, observe RetryObserver) *retryTransport {
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 1
	}
	return &retryTransport{next: next, policy: p, observe: observe, now: time.Now, sleep: sleep, blocked: map[string]*RateLimitError{}}
}

type retryTransport struct {
	next    http.RoundTripper
	policy  RetryPolicy
	observe RetryObserver
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error

	mu sync.Mutex
	// blocked holds the limits in force, by rate-limit resource; "" (a secondary limit) blocks every resource.
	blocked map[string]*RateLimitError
	// secondaryStreak counts secondary limits since the last answer that was none, for exponential waits.
	secondaryStreak int
	// secondaryUntil is when the latest secondary limit without Retry-After ends: refusals of requests that
	// were in flight together (overlapped reads) report that one limit, and must not lengthen it.
	secondaryUntil time.Time
}

// decision is what to do with one attempt's outcome.
type decision struct {
	reason string          // "" = return the outcome as it is
	wait   time.Duration   // before the next attempt
	limit  *RateLimitError // set for rate limits
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	budgetEnd := t.now().Add(t.policy.MaxWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(budgetEnd) {
		budgetEnd = dl
	}
	resource := requestResource(req)
	for attempt := 1; ; attempt++ {
		if lim := t.limitFor(resource); lim != nil {
			if lim.Until.After(budgetEnd) {
				closeRequestBody(req)
				return nil, &RateLimitError{Kind: lim.Kind, Resource: lim.Resource, Until: lim.Until, Method: req.Method, Path: req.URL.Path, Message: lim.Message}
			}
			if err := t.sleep(ctx, lim.Until.Sub(t.now())); err != nil {
				closeRequestBody(req)
				return nil, err
			}
		}
		areq := req
		if attempt > 1 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, errNoReplay
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("replay the body of %s %s: %w", req.Method, req.URL.Path, err)
			}
			areq = req.Clone(ctx)
			areq.Body = body
		}
		resp, err := t.attempt(areq)
		d := t.classify(req, resp, err, attempt)
		if d.reason == "" {
			t.settled(resource, resp)
			return resp, err
		}
		if d.limit != nil {
			t.block(resource, d.limit)
		}
		outOfBudget := t.now().Add(d.wait).After(budgetEnd)
		if attempt >= t.policy.MaxAttempts || outOfBudget {
			if d.limit != nil {
				// The typed error, not the 403/429: the caller learns when to come back, and go-github does not
				// turn the answer into its own local refusals, which this transport already applies.
				discard(resp)
				return nil, d.limit
			}
			return resp, err
		}
		discard(resp)
		if t.observe != nil {
			t.observe(d.reason)
		}
		if err := t.sleep(ctx, d.wait); err != nil {
			return nil, err
		}
	}
}

var errNoReplay = errors.New("ghclient: cannot retry a request whose body cannot be replayed")

// attempt sends one try under its own deadline; the deadline keeps running while the caller reads the body
// and is released when the body is closed.
func (t *retryTransport) attempt(req *http.Request) (*http.Response, error) {
	if t.policy.AttemptTimeout <= 0 {
		return t.next.RoundTrip(req)
	}
	ctx, cancel := context.WithTimeout(req.Context(), t.policy.AttemptTimeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		if ctx.Err() != nil && req.Context().Err() == nil {
			return nil, fmt.Errorf("%s %s: no answer within %s: %w", req.Method, req.URL.Path, t.policy.AttemptTimeout, err)
		}
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// classify returns whether and when the outcome deserves another attempt.
func (t *retryTransport) classify(req *http.Request, resp *http.Response, err error, attempt int) decision {
	backoff := t.backoff(attempt)
	var tokenErr *ghinstallation.HTTPError
	if errors.As(err, &tokenErr) && req.Context().Err() == nil {
		// The installation token could not be fetched, so the request itself was never sent: retrying is
		// safe whatever the method, when GitHub's answer (if any) was a server error.
		if tokenErr.Response != nil && tokenErr.Response.StatusCode < 500 {
			return decision{}
		}
		discard(tokenErr.Response)
		return decision{reason: "token", wait: backoff}
	}
	if err != nil {
		if req.Context().Err() != nil || !idempotent(req.Method) {
			// A write whose answer was lost may have been applied; the caller's look-before-create decides.
			return decision{}
		}
		return decision{reason: "transport", wait: backoff}
	}
	if lim := t.rateLimit(req, resp); lim != nil {
		wait := lim.Until.Sub(t.now())
		if wait < backoff {
			wait = backoff
		}
		return decision{reason: "rate_limit", wait: wait, limit: lim}
	}
	if resp.StatusCode >= 500 && idempotent(req.Method) {
		return decision{reason: "server_error", wait: t.retryAfter(resp, backoff)}
	}
	return decision{}
}

// rateLimit recognises GitHub's rate-limit answers, in the order GitHub's documentation gives: Retry-After
// first, then an exhausted primary limit (wait until X-RateLimit-Reset), then a secondary limit without
// either (wait at least a minute). A 403 that is none of these (no permission) is not a rate limit.
func (t *retryTransport) rateLimit(req *http.Request, resp *http.Response) *RateLimitError {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return nil
	}
	lim := &RateLimitError{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode}
	message := peekMessage(resp)
	lim.Message = message
	now := t.now()
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		lim.Kind = SecondaryLimit
		lim.Until = now.Add(t.retryAfter(resp, minSecondaryWait))
		if resp.Header.Get("X-RateLimit-Remaining") == "0" {
			lim.Kind, lim.Resource = PrimaryLimit, rateResource(resp)
		}
		return lim
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			lim.Kind, lim.Resource = PrimaryLimit, rateResource(resp)
			// One second for the clock difference between GitHub and us: a retry a moment early is refused.
			lim.Until = time.Unix(reset, 0).Add(time.Second)
			return lim
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || strings.Contains(strings.ToLower(message), "secondary rate limit") ||
		strings.Contains(strings.ToLower(message), "abuse detection") {
		// GitHub: at least a minute, and exponentially longer while the limit keeps coming back.
		t.mu.Lock()
		defer t.mu.Unlock()
		lim.Kind = SecondaryLimit
		if now.Before(t.secondaryUntil) {
			// The limit already in force, answered to another request sent before the wait began.
			lim.Until = t.secondaryUntil
			return lim
		}
		streak := min(t.secondaryStreak, 4)
		t.secondaryStreak++
		lim.Until = now.Add(minSecondaryWait << streak)
		t.secondaryUntil = lim.Until
		return lim
	}
	return nil
}

// settled notes what a final answer says about the limits: one that spends the last request of the primary
// limit holds the next ones until the reset (go-github refuses those it sends itself, but not GetBranch's),
// and an answer that is no secondary limit ends a streak of them.
func (t *retryTransport) settled(resource string, resp *http.Response) {
	if resp == nil {
		return
	}
	t.mu.Lock()
	t.secondaryStreak = 0
	t.mu.Unlock()
	if resp.Header.Get("X-RateLimit-Remaining") != "0" {
		return
	}
	reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return
	}
	t.block(resource, &RateLimitError{Kind: PrimaryLimit, Resource: rateResource(resp), Until: time.Unix(reset, 0).Add(time.Second),
		Message: "the previous answer used the last request of the primary rate limit"})
}

func rateResource(resp *http.Response) string {
	if r := resp.Header.Get("X-RateLimit-Resource"); r != "" {
		return r
	}
	return "core"
}

// requestResource is the rate-limit resource a request draws from, as GitHub counts them.
func requestResource(req *http.Request) string {
	p := strings.TrimSuffix(req.URL.Path, "/")
	switch {
	case strings.HasSuffix(p, "/graphql"):
		return "graphql"
	case strings.Contains(p, "/search/code"):
		return "code_search"
	case strings.Contains(p, "/search/"):
		return "search"
	}
	return "core"
}

// limitFor returns the limit in force for resource, if any.
func (t *retryTransport) limitFor(resource string) *RateLimitError {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var out *RateLimitError
	for _, key := range []string{"", resource} {
		lim := t.blocked[key]
		if lim == nil {
			continue
		}
		if !lim.Until.After(now) {
			delete(t.blocked, key)
			continue
		}
		if out == nil || lim.Until.After(out.Until) {
			out = lim
		}
	}
	return out
}

func (t *retryTransport) block(resource string, lim *RateLimitError) {
	key := resource
	if lim.Kind == SecondaryLimit {
		key = "" // secondary limits are not per resource
	} else if lim.Resource != "" {
		key = lim.Resource
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.blocked[key]; cur == nil || lim.Until.After(cur.Until) {
		t.blocked[key] = lim
	}
}

func (t *retryTransport) backoff(attempt int) time.Duration {
	d := t.policy.BaseDelay << (attempt - 1)
	if d > t.policy.MaxDelay || d <= 0 {
		d = t.policy.MaxDelay
	}
	if d <= 0 {
		return 0
	}
	// Full jitter in [d/2, d): replicas hitting the same limit do not retry in lockstep.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// retryAfter honours GitHub's Retry-After (seconds, or an HTTP date) when present.
func (t *retryTransport) retryAfter(resp *http.Response, fallback time.Duration) time.Duration {
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if at, err := http.ParseTime(s); err == nil {
			return at.Sub(t.now())
		}
	}
	return fallback
}

// peekMessage reads a GitHub error body's message, leaving the body readable for the caller.
func peekMessage(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &m); err == nil && m.Message != "" {
		return m.Message
	}
	return string(b)
}

func discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
