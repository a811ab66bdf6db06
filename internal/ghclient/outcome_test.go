package ghclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-github/v50/github"
)

func TestUnanswered(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"timeout", &url.Error{Op: "Post", URL: "u", Err: context.DeadlineExceeded}, true},
		{"connection cut", &url.Error{Op: "Post", URL: "u", Err: errors.New("EOF")}, true},
		{"502", &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusBadGateway}}, true},
		{"500 wrapped", fmt.Errorf("reply: %w", &github.ErrorResponse{Response: &http.Response{StatusCode: 500}}), true},
		{"422", &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusUnprocessableEntity}}, false},
		{"404", &github.ErrorResponse{Response: &http.Response{StatusCode: 404}}, false},
		{"rate limit (ghclient)", &url.Error{Op: "Post", URL: "u", Err: &RateLimitError{Kind: SecondaryLimit}}, false},
		{"abuse limit (go-github)", &github.AbuseRateLimitError{Response: &http.Response{StatusCode: 403}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Unanswered(tc.err); got != tc.want {
				t.Errorf("Unanswered(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
