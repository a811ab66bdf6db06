package ghclient

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConcurrentSecondaryRefusalsAreOneLimit: overlapped reads in flight when GitHub imposes a secondary limit
// are all refused; those refusals report the one limit in force and do not double its wait, while a limit that
// comes back after the wait ended does.
func TestConcurrentSecondaryRefusalsAreOneLimit(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tr := &retryTransport{now: func() time.Time { return now }}
	refuse := func() *RateLimitError {
		req, _ := http.NewRequest(http.MethodGet, "https://api.github.com/repos/o/r/git/trees/x", nil)
		resp := &http.Response{StatusCode: http.StatusForbidden, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(`{"message":"You have exceeded a secondary rate limit."}`))}
		lim := tr.rateLimit(req, resp)
		if lim == nil || lim.Kind != SecondaryLimit {
			t.Fatalf("rateLimit = %+v, want a secondary limit", lim)
		}
		return lim
	}
	first := refuse()
	for i := 0; i < 7; i++ { // seven more reads of the same burst, refused a moment later
		now = now.Add(10 * time.Millisecond)
		if lim := refuse(); !lim.Until.Equal(first.Until) {
			t.Fatalf("refusal %d of the same burst waits until %v, want the first one's %v", i+2, lim.Until, first.Until)
		}
	}
	if got := first.Until.Sub(time.Unix(1_800_000_000, 0)); got != minSecondaryWait {
		t.Errorf("first secondary limit waits %v, want %v", got, minSecondaryWait)
	}
	now = first.Until.Add(time.Second) // the limit came back after the wait
	if again := refuse(); again.Until.Sub(now) != 2*minSecondaryWait {
		t.Errorf("a limit that comes back waits %v, want %v", again.Until.Sub(now), 2*minSecondaryWait)
	}
}
