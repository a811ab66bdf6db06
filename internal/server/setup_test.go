package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// TestUnconfiguredServerSwitchesWithoutRestart: in setup mode the webhook endpoint and /readyz answer 503
// saying what to do, /healthz is ok; Configure makes the same server take signed deliveries with the new secret.
func TestUnconfiguredServerSwitchesWithoutRestart(t *testing.T) {
	cfg := testConfig()
	cfg.GitHub.App.WebhookSecret = ""
	s := NewUnconfigured(cfg, zerolog.Nop(), nil)
	h := s.Handler()
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/healthz"); rec.Code != http.StatusOK {
		t.Errorf("/healthz in setup mode = %d, want 200", rec.Code)
	}
	if rec := get("/readyz"); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not configured") {
		t.Errorf("/readyz in setup mode = %d %q, want 503 not configured", rec.Code, rec.Body.String())
	}
	body := []byte(`{"action":"opened"}`)
	rec := deliver(t, h, "pull_request", "d1", body, sign(body))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not configured") {
		t.Errorf("delivery in setup mode = %d %q, want 503 not configured", rec.Code, rec.Body.String())
	}
	if n := testutil.ToFloat64(s.Metrics().Deliveries.WithLabelValues("other", "not_configured")); n != 1 {
		t.Errorf("not_configured deliveries = %v, want 1", n)
	}

	handler := &recordingHandler{}
	if err := s.Configure(testSecret, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Configure(testSecret, nil); !errors.Is(err, ErrConfigured) {
		t.Errorf("second Configure = %v, want ErrConfigured", err)
	}
	s2 := NewUnconfigured(cfg, zerolog.Nop(), nil)
	if err := s2.Configure(testSecret, []githubapp.EventHandler{handler}); err != nil {
		t.Fatal(err)
	}
	h2 := s2.Handler()
	if rec := deliver(t, h2, "pull_request", "d2", body, sign(body)); rec.Code != http.StatusOK && rec.Code != http.StatusAccepted {
		t.Fatalf("signed delivery after Configure = %d %q", rec.Code, rec.Body.String())
	}
	if rec := deliver(t, h2, "pull_request", "d3", body, "sha256="+strings.Repeat("0", 64)); rec.Code != http.StatusUnauthorized {
		t.Errorf("delivery with a wrong signature after Configure = %d, want 401", rec.Code)
	}
	waitFor(t, "the handler to see d2", func() bool { return len(handler.seen()) == 1 })
	rec = httptest.NewRecorder()
	h2.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/readyz after Configure = %d, want 200", rec.Code)
	}
}
