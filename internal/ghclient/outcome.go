package ghclient

import (
	"errors"
	"net/http"

	"github.com/google/go-github/v50/github"
)

// Unanswered reports whether err leaves a write's outcome unknown — no answer, or a server error (a proxy's
// 502, a 500 after the write) — so GitHub may have applied it, or may still. A 4xx or a rate limit is a
// refusal: nothing was written.
func Unanswered(err error) bool {
	if err == nil {
		return false
	}
	var limited *RateLimitError
	var primary *github.RateLimitError
	var secondary *github.AbuseRateLimitError
	if errors.As(err, &limited) || errors.As(err, &primary) || errors.As(err, &secondary) {
		return false
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode >= http.StatusInternalServerError
	}
	return true
}
