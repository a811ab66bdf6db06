package ghclient

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-github/v50/github"
)

// Kinds of GitHub rate limit, as RateLimitError.Kind reports them.
const (
	// PrimaryLimit is the hourly request budget: 403 or 429 with X-RateLimit-Remaining: 0; requests are
	// refused until X-RateLimit-Reset.
	PrimaryLimit = "primary"
	// SecondaryLimit guards against bursts: 403 or 429 with Retry-After or GitHub's "secondary rate limit"
	// message; without Retry-After GitHub asks for at least a minute of silence.
	SecondaryLimit = "secondary"
)

// minSecondaryWait is how long to stay silent after a secondary limit that names no Retry-After. GitHub's
// rate-limit documentation: wait at least one minute, or the integration risks being banned.
const minSecondaryWait = time.Minute

// RateLimitError says that GitHub refused a request for a rate limit that lasts longer than the caller's
// budget (RetryPolicy.MaxWait, or the context's deadline when sooner), so the client gave up at once instead
// of sleeping past it. The handler layer logs and counts it, and runs the job again after Until.
type RateLimitError struct {
	Kind     string    // PrimaryLimit or SecondaryLimit
	Resource string    // X-RateLimit-Resource of a primary limit ("core", "search", …); "" for a secondary one
	Until    time.Time // when GitHub accepts requests again
	Method   string    // the refused request
	Path     string
	Status   int    // 403 or 429; 0 when the request was not sent because an earlier answer set the limit
	Message  string // GitHub's message, when it sent one
}

func (e *RateLimitError) Error() string {
	msg := fmt.Sprintf("GitHub %s rate limit on %s %s: requests refused until %s", e.Kind, e.Method, e.Path,
		e.Until.UTC().Format(time.RFC3339))
	if e.Resource != "" {
		msg += fmt.Sprintf(" (resource %q)", e.Resource)
	}
	if e.Status == 0 {
		msg += "; not sent, the limit was reported by an earlier answer"
	}
	return msg + "; the job must run again after that time"
}

// AsRateLimit reports whether err is a rate limit, from this package's transport or from go-github itself
// (go-github v50 refuses calls locally, without a request, once an answer said the primary limit is spent or
// a secondary limit named a Retry-After). All three come back as one *RateLimitError.
func AsRateLimit(err error) (*RateLimitError, bool) {
	var own *RateLimitError
	if errors.As(err, &own) {
		return own, true
	}
	var primary *github.RateLimitError
	if errors.As(err, &primary) {
		e := &RateLimitError{Kind: PrimaryLimit, Resource: "core", Until: primary.Rate.Reset.Time, Message: primary.Message}
		fillRequest(e, primary.Response)
		if primary.Response != nil && primary.Response.Request != nil {
			// go-github keeps one budget per resource (GraphQL's apart from REST's): name the one refused.
			e.Resource = requestResource(primary.Response.Request)
		}
		return e, true
	}
	var secondary *github.AbuseRateLimitError
	if errors.As(err, &secondary) {
		wait := minSecondaryWait
		if secondary.RetryAfter != nil {
			wait = *secondary.RetryAfter
		}
		e := &RateLimitError{Kind: SecondaryLimit, Until: time.Now().Add(wait), Message: secondary.Message}
		fillRequest(e, secondary.Response)
		return e, true
	}
	return nil, false
}

// fillRequest copies what go-github's error knows about the refused request.
func fillRequest(e *RateLimitError, resp *http.Response) {
	if resp == nil {
		return
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
		// go-github's local refusals carry a made-up 403 without headers; only a real answer has them.
		if resp.Header.Get("X-GitHub-Request-Id") != "" {
			e.Status = resp.StatusCode
		}
	}
	if resp.Request != nil && resp.Request.URL != nil {
		e.Method, e.Path = resp.Request.Method, resp.Request.URL.Path
	}
}
