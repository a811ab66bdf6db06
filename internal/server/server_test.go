package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

const testSecret = "s3cret"

// recordingHandler is a real EventHandler that records what reached it and can block or panic on demand.
type recordingHandler struct {
	mu       sync.Mutex
	events   []string
	payloads [][]byte
	release  chan struct{} // when non-nil, Handle waits for it
	panics   bool
}

func (h *recordingHandler) Handles() []string { return []string{"pull_request", "installation"} }

func (h *recordingHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	if h.release != nil {
		<-h.release
	}
	if h.panics {
		panic("boom")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, eventType+"/"+deliveryID)
	h.payloads = append(h.payloads, payload)
	zerolog.Ctx(ctx).Info().Msg("handled")
	return nil
}

func (h *recordingHandler) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

func testConfig() Config {
	c := Default()
	c.GitHub.App.WebhookSecret = testSecret
	c.Queue = QueueConfig{Size: 2, Workers: 1}
	c.MaxBodyBytes = 1 << 20
	c.ShutdownTimeout = 5 * time.Second
	return c
}

func sign(body []byte) string {
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func deliver(t *testing.T, h http.Handler, event, id string, body []byte, signature string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookIntake(t *testing.T) {
	valid := []byte(`{"action":"opened","number":1}`)
	tests := []struct {
		name      string
		event     string
		body      []byte
		signature string
		wantCode  int
		wantBody  string
		outcome   string
		reaches   bool
	}{
		{name: "signed event reaches handler", event: "pull_request", body: valid, signature: sign(valid), wantCode: 200, outcome: "accepted", reaches: true},
		{name: "unknown event accepted and ignored", event: "fork", body: valid, signature: sign(valid), wantCode: 202, outcome: "ignored"},
		{name: "bad signature refused", event: "pull_request", body: valid, signature: sign([]byte("other")), wantCode: 401, wantBody: "invalid X-Hub-Signature-256", outcome: "bad_signature"},
		{name: "missing signature refused", event: "pull_request", body: valid, wantCode: 401, wantBody: "missing X-Hub-Signature-256", outcome: "bad_signature"},
		{name: "malformed JSON refused with reason", event: "pull_request", body: []byte(`{"action":`), signature: sign([]byte(`{"action":`)), wantCode: 400, wantBody: "malformed JSON payload", outcome: "malformed"},
		{name: "oversized body refused", event: "pull_request", body: bytes.Repeat([]byte("a"), 2<<20), signature: sign([]byte("a")), wantCode: 413, wantBody: "larger than", outcome: "too_large"},
		{name: "missing event header", event: "", body: valid, signature: sign(valid), wantCode: 400, wantBody: "missing or malformed X-GitHub-Event", outcome: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &recordingHandler{}
			s := New(testConfig(), zerolog.Nop(), nil, []githubapp.EventHandler{h})
			rec := deliver(t, s.Handler(), tc.event, "d-1", tc.body, tc.signature)
			if rec.Code != tc.wantCode {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tc.wantCode, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("body %q does not contain %q", rec.Body.String(), tc.wantBody)
			}
			event := tc.event
			if event == "" {
				event = "other"
			}
			if got := testutil.ToFloat64(s.metrics.Deliveries.WithLabelValues(event, tc.outcome)); got != 1 {
				t.Errorf("deliveries{%s,%s} = %v, want 1", event, tc.outcome, got)
			}
			if tc.reaches {
				waitFor(t, "handler to run", func() bool { return len(h.seen()) == 1 })
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if !tc.reaches && len(h.seen()) != 0 {
				t.Errorf("handler saw %v, want nothing", h.seen())
			}
		})
	}
}

func TestPanicIsRecoveredAndCounted(t *testing.T) {
	h := &recordingHandler{panics: true}
	s := New(testConfig(), zerolog.Nop(), nil, []githubapp.EventHandler{h})
	body := []byte(`{}`)
	if rec := deliver(t, s.Handler(), "pull_request", "p-1", body, sign(body)); rec.Code != 200 {
		t.Fatalf("status = %d", rec.Code)
	}
	waitFor(t, "panic counted", func() bool {
		return testutil.ToFloat64(s.metrics.Handled.WithLabelValues("pull_request", "panic")) == 1
	})
	// The server keeps serving after a panic.
	h.panics = false
	if rec := deliver(t, s.Handler(), "pull_request", "p-2", body, sign(body)); rec.Code != 200 {
		t.Fatalf("status after panic = %d", rec.Code)
	}
	waitFor(t, "second event handled", func() bool { return len(h.seen()) == 1 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestFullQueueAnswers503AndShutdownDrains(t *testing.T) {
	h := &recordingHandler{release: make(chan struct{})}
	s := New(testConfig(), zerolog.Nop(), nil, []githubapp.EventHandler{h}) // 1 worker, queue of 2
	body := []byte(`{}`)
	codes := []int{}
	for i := 0; i < 4; i++ {
		codes = append(codes, deliver(t, s.Handler(), "pull_request", "q-"+string(rune('a'+i)), body, sign(body)).Code)
		if i == 0 {
			// Let the single worker pick the first event up, so the queue holds exactly the next two.
			waitFor(t, "worker busy", func() bool { return testutil.ToFloat64(s.metrics.QueueDepth) == 0 })
		}
	}
	if want := []int{200, 200, 200, 503}; !equalInts(codes, want) {
		t.Fatalf("codes = %v, want %v", codes, want)
	}
	if got := testutil.ToFloat64(s.metrics.Deliveries.WithLabelValues("pull_request", "overloaded")); got != 1 {
		t.Errorf("overloaded = %v, want 1", got)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	waitFor(t, "draining", s.draining.Load)
	if rec := deliver(t, s.Handler(), "pull_request", "late", body, sign(body)); rec.Code != 503 {
		t.Errorf("delivery while draining = %d, want 503", rec.Code)
	}
	close(h.release)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := len(h.seen()); got != 3 {
		t.Errorf("handled %d events before shutdown returned, want all 3 queued", got)
	}
}

func TestShutdownTimeoutCancelsUnfinished(t *testing.T) {
	h := &recordingHandler{release: make(chan struct{})}
	defer close(h.release)
	s := New(testConfig(), zerolog.Nop(), nil, []githubapp.EventHandler{h})
	body := []byte(`{}`)
	deliver(t, s.Handler(), "pull_request", "stuck", body, sign(body))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Shutdown(ctx)
	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("Shutdown error = %v, want a drain timeout", err)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	cfg := testConfig()
	cfg.GitHub.App.IntegrationID = 1
	cfg.GitHub.App.PrivateKey = testKeyPEM(t)
	s := New(cfg, zerolog.Nop(), nil, nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/healthz", 200, "ok"},
		{"/readyz", 200, "ready"},
		{"/metrics", 200, "storagebot_queue_depth"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, resp.StatusCode, b, tc.code, tc.want)
		}
	}
	_ = s.Shutdown(context.Background())
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz while shutting down = %d, want 503", resp.StatusCode)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
