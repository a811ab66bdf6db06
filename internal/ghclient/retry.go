// Package ghclient builds the GitHub API clients storagebot uses: installation tokens through ghinstallation
// (via go-githubapp), an HTTP cache that revalidates with ETags, retries with backoff for server errors and
// rate limits, and request metrics.
package ghclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says how often and how long to retry. Only server errors (5xx), secondary rate limits (429, or
// 403 with Retry-After or GitHub's "secondary rate limit" message), an exhausted primary limit that resets
// soon, and transport errors on idempotent requests are retried; any other 4xx is returned at once.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the first backoff; it doubles per attempt, with jitter, up to MaxDelay.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxWait is the longest Retry-After (or rate-limit reset) honoured; a longer one is returned to the caller,
	// who reports it, rather than holding a worker for minutes.
	MaxWait time.Duration
}

// DefaultRetryPolicy suits webhook handlers: a few quick retries, never more than a minute of waiting.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 4, BaseDelay: 250 * time.Millisecond, MaxDelay: 8 * time.Second, MaxWait: time.Minute}
}

// RetryObserver is told about each retry, for metrics; reason is server_error, rate_limit or transport.
type RetryObserver func(reason string)

// NewRetryTransport wraps next with the retry policy.
func NewRetryTransport(next http.RoundTripper, p RetryPolicy, observe RetryObserver) http.RoundTripper {
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 1
	}
	return &retryTransport{next: next, policy: p, observe: observe}
}

type retryTransport struct {
	next    http.RoundTripper
	policy  RetryPolicy
	observe RetryObserver
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.Body != nil {
			if req.GetBody == nil {
				return nil, errNoReplay
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		resp, err := t.next.RoundTrip(req)
		reason, wait := t.classify(req, resp, err, attempt)
		if reason == "" || attempt >= t.policy.MaxAttempts || wait > t.policy.MaxWait {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
		}
		if t.observe != nil {
			t.observe(reason)
		}
		if err := sleep(req.Context(), wait); err != nil {
			return nil, err
		}
	}
}

var errNoReplay = errors.New("ghclient: cannot retry a request whose body cannot be replayed")

// classify returns why the response deserves a retry ("" when it does not) and how long to wait first.
func (t *retryTransport) classify(req *http.Request, resp *http.Response, err error, attempt int) (string, time.Duration) {
	backoff := t.backoff(attempt)
	if err != nil {
		if req.Context().Err() != nil || !idempotent(req.Method) {
			// A write whose answer was lost may have been applied; the caller's look-before-create decides.
			return "", 0
		}
		return "transport", backoff
	}
	switch {
	case resp.StatusCode >= 500:
		return "server_error", retryAfter(resp, backoff)
	case resp.StatusCode == http.StatusTooManyRequests:
		return "rate_limit", retryAfter(resp, backoff)
	case resp.StatusCode == http.StatusForbidden:
		if resp.Header.Get("Retry-After") != "" || isSecondaryRateLimit(resp) {
			return "rate_limit", retryAfter(resp, backoff)
		}
		if resp.Header.Get("X-RateLimit-Remaining") == "0" {
			if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
				return "rate_limit", time.Until(time.Unix(reset, 0)) + time.Second
			}
		}
	}
	return "", 0
}

func (t *retryTransport) backoff(attempt int) time.Duration {
	d := t.policy.BaseDelay << (attempt - 1)
	if d > t.policy.MaxDelay || d <= 0 {
		d = t.policy.MaxDelay
	}
	// Full jitter in [d/2, d): replicas hitting the same limit do not retry in lockstep.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// retryAfter honours GitHub's Retry-After (seconds) when present.
func retryAfter(resp *http.Response, fallback time.Duration) time.Duration {
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if at, err := http.ParseTime(s); err == nil {
			return time.Until(at)
		}
	}
	return fallback
}

// isSecondaryRateLimit peeks at a 403 body for GitHub's secondary-limit message, leaving the body readable.
func isSecondaryRateLimit(resp *http.Response) bool {
	if resp.Body == nil {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return bytes.Contains(bytes.ToLower(b), []byte("secondary rate limit"))
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
