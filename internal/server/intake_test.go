package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/testkit"
)

// countingBody is a request body that counts what the server read of it and, when gate is set, stops after
// the first chunk until gate is closed (a client sending slowly).
type countingBody struct {
	remaining int64
	read      atomic.Int64
	gate      chan struct{}
	started   chan struct{} // closed on the first Read
	once      sync.Once
}

func newCountingBody(size int64, gate chan struct{}) *countingBody {
	return &countingBody{remaining: size, gate: gate, started: make(chan struct{})}
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if b.gate != nil && b.read.Load() > 0 {
		<-b.gate
	}
	n := int64(len(p))
	if n > b.remaining {
		n = b.remaining
	}
	if n > 64<<10 {
		n = 64 << 10
	}
	for i := range p[:n] {
		p[i] = ' '
	}
	b.remaining -= n
	b.read.Add(n)
	return int(n), nil
}

func (b *countingBody) Close() error { return nil }

func sha1Sign(body []byte) string {
	m := hmac.New(sha1.New, []byte(testSecret))
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// TestIntakeRefusesBeforeReading covers every refusal the headers alone decide: none reads a byte of the
// body, so unsigned or oversized bodies cost the server nothing whatever their size.
func TestIntakeRefusesBeforeReading(t *testing.T) {
	const big = 24 << 20
	tests := []struct {
		name        string
		event       string
		signature   string
		contentType string
		length      int64
		wantCode    int
		wantBody    string
	}{
		{name: "unsigned", event: "installation", length: big, wantCode: 401, wantBody: "missing X-Hub-Signature-256"},
		{name: "sha1 MAC in the sha256 header", event: "pull_request", signature: sha1Sign([]byte(" ")), length: 1, wantCode: 401, wantBody: "only sha256="},
		{name: "signature not hex", event: "installation", signature: "sha256=" + strings.Repeat("z", 64), length: big, wantCode: 401, wantBody: "malformed X-Hub-Signature-256"},
		{name: "signature too short", event: "installation", signature: "sha256=abcd", length: big, wantCode: 401, wantBody: "malformed X-Hub-Signature-256"},
		{name: "no event header", event: "", signature: sign(nil), length: big, wantCode: 400, wantBody: "X-GitHub-Event"},
		{name: "event header not an event name", event: "Pull-Request", signature: sign(nil), length: big, wantCode: 400, wantBody: "X-GitHub-Event"},
		{name: "unsupported content type", event: "pull_request", signature: sign(nil), contentType: "text/plain", length: 10, wantCode: 415, wantBody: "application/json"},
		{name: "no content type", event: "pull_request", signature: sign(nil), contentType: "-", length: 10, wantCode: 415, wantBody: "application/json"},
		{name: "pull_request over its own cap", event: "pull_request", signature: sign(nil), length: smallEventMaxBytes + 1, wantCode: 413, wantBody: "accepted for pull_request events"},
		{name: "installation over the body cap", event: "installation", signature: sign(nil), length: 25<<20 + 1, wantCode: 413, wantBody: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxBodyBytes = 25 << 20
			cfg.MaxInflightBodyBytes = 64 << 20
			h := &recordingHandler{}
			s := New(cfg, zerolog.Nop(), nil, []githubapp.EventHandler{h})
			defer s.Shutdown(context.Background())
			body := newCountingBody(tc.length, nil)
			req := httptest.NewRequest(http.MethodPost, WebhookPath, body)
			req.ContentLength = tc.length
			req.Header.Set("X-GitHub-Event", tc.event)
			req.Header.Set("X-GitHub-Delivery", "d-1")
			switch tc.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.signature != "" {
				req.Header.Set("X-Hub-Signature-256", tc.signature)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			if n := body.read.Load(); n != 0 {
				t.Errorf("server read %d bytes of a body it refuses on its headers, want 0", n)
			}
			if len(h.seen()) != 0 {
				t.Errorf("handler saw %v", h.seen())
			}
		})
	}
}

// TestIntakeBodyBytesAreBounded sends many slow bodies at once: only what fits the byte budget is read, the
// rest is refused with 503 before a byte is read, and the budget comes back when the requests end.
func TestIntakeBodyBytesAreBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 4 << 20
	cfg.MaxInflightBodyBytes = 8 << 20
	s := New(cfg, zerolog.Nop(), nil, []githubapp.EventHandler{&recordingHandler{}})
	defer s.Shutdown(context.Background())
	const clients, size = 40, 3 << 20 // 120 MiB offered, 8 MiB budget: two bodies fit
	gate := make(chan struct{})
	bodies := make([]*countingBody, clients)
	codes := make([]int, clients)
	var wg sync.WaitGroup
	for i := range bodies {
		bodies[i] = newCountingBody(size, gate)
		req := httptest.NewRequest(http.MethodPost, WebhookPath, bodies[i])
		req.ContentLength = size
		req.Header.Set("X-GitHub-Event", "installation")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64)) // well-formed, wrong
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			codes[i] = rec.Code
		}(i)
	}
	// Wait until every request is either refused or reading (blocked on the gate).
	waitFor(t, "all requests decided", func() bool {
		return testutil.ToFloat64(s.metrics.Deliveries.WithLabelValues("installation", "over_budget")) == clients-2
	})
	if got := s.budget.inUse(); got != 2*size {
		t.Errorf("budget in use = %d, want %d (two bodies)", got, 2*size)
	}
	reading := func() int {
		n := 0
		for _, b := range bodies {
			if b.read.Load() > 0 {
				n++
			}
		}
		return n
	}
	waitFor(t, "the two admitted bodies to be read", func() bool { return reading() == 2 })
	close(gate)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if diff := cmp.Diff(map[int]int{401: 2, 503: clients - 2}, count); diff != "" {
		t.Errorf("status counts (-want +got):\n%s", diff)
	}
	if got := s.budget.inUse(); got != 0 {
		t.Errorf("budget in use after the requests = %d, want 0", got)
	}
}

// TestQueuedPayloadsHoldTheBudget: an accepted body stays charged until its handler finishes, so the queue
// cannot hold more payload bytes than the budget either; bodies of events no handler takes are streamed
// through the HMAC and never charged.
func TestQueuedPayloadsHoldTheBudget(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 1 << 20
	cfg.MaxInflightBodyBytes = 1 << 20
	h := &recordingHandler{release: make(chan struct{})}
	s := New(cfg, zerolog.Nop(), nil, []githubapp.EventHandler{h})
	payload := []byte(`{"action":"created","pad":"` + strings.Repeat("x", 700<<10) + `"}`)
	if rec := deliver(t, s.Handler(), "installation", "held", payload, sign(payload)); rec.Code != 200 {
		t.Fatalf("first delivery = %d %s", rec.Code, rec.Body)
	}
	if got := s.budget.inUse(); got != int64(len(payload)) {
		t.Errorf("budget in use with one queued event = %d, want %d", got, len(payload))
	}
	if rec := deliver(t, s.Handler(), "installation", "refused", payload, sign(payload)); rec.Code != 503 || !strings.Contains(rec.Body.String(), "redeliver later") {
		t.Errorf("second delivery while the first holds the budget = %d %q, want 503", rec.Code, rec.Body)
	}
	if rec := deliver(t, s.Handler(), "push", "streamed", payload, sign(payload)); rec.Code != 202 {
		t.Errorf("unhandled event while the budget is spent = %d %q, want 202 (streamed)", rec.Code, rec.Body)
	}
	if rec := deliver(t, s.Handler(), "push", "forged", payload, sign([]byte("x"))); rec.Code != 401 {
		t.Errorf("unhandled event with a wrong signature = %d, want 401", rec.Code)
	}
	close(h.release)
	waitFor(t, "budget released", func() bool { return s.budget.inUse() == 0 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestFormEncodedDeliveries: GitHub sends application/x-www-form-urlencoded when a webhook is set up that
// way; the signature covers the form, the handler gets the JSON of its payload field, and a form without
// valid JSON there is refused up front instead of failing in a handler later.
func TestFormEncodedDeliveries(t *testing.T) {
	json := `{"action":"opened","title":"a+b & c=d 100%"}`
	tests := []struct {
		name     string
		form     string
		wantCode int
		wantBody string
	}{
		{name: "payload decoded", form: "payload=" + url.QueryEscape(json), wantCode: 200},
		{name: "payload among other fields", form: "a=1&payload=" + url.QueryEscape(json) + "&b=2", wantCode: 200},
		{name: "no payload field", form: "data=" + url.QueryEscape(json), wantCode: 400, wantBody: `no "payload" field`},
		{name: "payload not JSON", form: "payload=" + url.QueryEscape(`{"action":`), wantCode: 400, wantBody: "malformed JSON payload"},
		{name: "broken escape", form: "payload=%7B%zz", wantCode: 400, wantBody: "invalid escape"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &recordingHandler{}
			s := New(testConfig(), zerolog.Nop(), nil, []githubapp.EventHandler{h})
			req := httptest.NewRequest(http.MethodPost, WebhookPath, strings.NewReader(tc.form))
			req.Header.Set("X-GitHub-Event", "pull_request")
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Hub-Signature-256", sign([]byte(tc.form)))
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if tc.wantCode != 200 {
				if len(h.payloads) != 0 {
					t.Errorf("a refused form reached the handler: %q", h.payloads)
				}
				return
			}
			if len(h.payloads) != 1 || string(h.payloads[0]) != json {
				t.Errorf("handler got %q, want [%q]", h.payloads, json)
			}
		})
	}
}

// TestEventLogLinesHaveNoDuplicateKeys: every line about a delivery carries github_event_type and
// github_delivery_id exactly once, the handler's lines included.
func TestEventLogLinesHaveNoDuplicateKeys(t *testing.T) {
	var logs testkit.SyncBuffer
	h := &recordingHandler{}
	s := New(testConfig(), zerolog.New(&logs).Level(zerolog.DebugLevel), nil, []githubapp.EventHandler{h})
	body := []byte(`{"action":"opened"}`)
	deliver(t, s.Handler(), "pull_request", "dup-1", body, sign(body))
	deliver(t, s.Handler(), "pull_request", "dup-2", body, sign([]byte("forged")))
	deliver(t, s.Handler(), "fork", "dup-3", body, sign(body))
	waitFor(t, "handler", func() bool { return len(h.seen()) == 1 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for sc := bufio.NewScanner(strings.NewReader(logs.String())); sc.Scan(); {
		line := sc.Text()
		if !strings.Contains(line, "github_delivery_id") {
			continue
		}
		lines++
		if dup := testkit.DuplicateJSONKey(t, line); dup != "" {
			t.Errorf("key %q appears twice in %s", dup, line)
		}
	}
	if lines < 3 {
		t.Errorf("only %d log lines name a delivery, want one per delivery at least:\n%s", lines, logs.String())
	}
}

// TestReadyzSaysWhetherDeliveriesAreTaken: /readyz does not depend on the key file (a rotated or unmounted
// secret must not take every replica out of the Service) and turns 503 when the queue is full.
func TestReadyzSaysWhetherDeliveriesAreTaken(t *testing.T) {
	cfg := testConfig() // 1 worker, queue of 2
	cfg.GitHub.App.IntegrationID = 1
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, []byte(testKeyPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.GitHub.App.PrivateKey = keyFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &recordingHandler{release: make(chan struct{})}
	s := New(cfg, zerolog.Nop(), nil, []githubapp.EventHandler{h})
	ready := func() (int, string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if code, body := ready(); code != 200 {
		t.Errorf("readyz after the key file went away = %d %q, want 200", code, body)
	}
	body := []byte(`{}`)
	deliver(t, s.Handler(), "pull_request", "r-1", body, sign(body))
	waitFor(t, "worker busy", func() bool { return testutil.ToFloat64(s.metrics.QueueDepth) == 0 })
	deliver(t, s.Handler(), "pull_request", "r-2", body, sign(body))
	if code, _ := ready(); code != 200 {
		t.Errorf("readyz with the queue half full = %d, want 200", code)
	}
	deliver(t, s.Handler(), "pull_request", "r-3", body, sign(body))
	if code, body := ready(); code != 503 || !strings.Contains(body, "queue full") {
		t.Errorf("readyz with the queue full = %d %q, want 503 queue full", code, body)
	}
	close(h.release)
	waitFor(t, "queue empty", func() bool { code, _ := ready(); return code == 200 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestDrainKeepsTheListenerOpen: during the drain the server still answers on its listener, /readyz with
// 503 and deliveries with 503; the listener closes once the queue is empty.
func TestDrainKeepsTheListenerOpen(t *testing.T) {
	h := &recordingHandler{release: make(chan struct{})}
	s := New(testConfig(), zerolog.Nop(), nil, []githubapp.EventHandler{h})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	post := func(id string) int {
		body := []byte(`{}`)
		req, _ := http.NewRequest(http.MethodPost, base+WebhookPath, bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", sign(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", id, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("before"); code != 200 {
		t.Fatalf("delivery = %d", code)
	}
	stop() // SIGTERM
	waitFor(t, "draining", s.draining.Load)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("readyz during the drain: %v (the listener closed before the queue drained)", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "draining") {
		t.Errorf("readyz during the drain = %d %q, want 503 draining", resp.StatusCode, b)
	}
	if code := post("during"); code != 503 {
		t.Errorf("delivery during the drain = %d, want 503", code)
	}
	close(h.release)
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(base + "/readyz"); err == nil {
		t.Error("listener still open after the drain")
	}
	if got := h.seen(); len(got) != 1 {
		t.Errorf("handled %v, want the one queued before the drain", got)
	}
}

// TestRateLimitMetricIsByResource: the gauge's label holds GitHub's rate-limit resource, and says so.
func TestRateLimitMetricIsByResource(t *testing.T) {
	m := NewMetrics()
	m.RateLimitRemaining.WithLabelValues("core").Set(4999)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "storagebot_github_rate_limit_remaining" {
			continue
		}
		labels := f.GetMetric()[0].GetLabel()
		if len(labels) != 1 || labels[0].GetName() != "resource" || labels[0].GetValue() != "core" {
			t.Errorf("labels = %v, want resource=core", labels)
		}
		return
	}
	t.Fatal("storagebot_github_rate_limit_remaining not registered")
}

func TestUnescapeInPlace(t *testing.T) {
	for in, want := range map[string]string{"": "", "a+b": "a b", "%7B%22a%22%3A1%7D": `{"a":1}`, "%e2%9c%93": "✓"} {
		got, err := unescapeInPlace([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("unescapeInPlace(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"%", "%4", "%g0"} {
		if _, err := unescapeInPlace([]byte(bad)); err == nil {
			t.Errorf("unescapeInPlace(%q) accepted a broken escape", bad)
		}
	}
}

// TestShutdownClosesSilentConnections: a connection a client opened and sent nothing on (Go's transport dials
// spare ones) must not turn a clean drain into an error.
func TestShutdownClosesSilentConnections(t *testing.T) {
	s := New(testConfig(), zerolog.Nop(), nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, "the server to see the connection", func() bool {
		resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want a clean stop", err)
		}
	case <-time.After(httpCloseTimeout + 5*time.Second):
		t.Fatal("Serve did not return")
	}
}
