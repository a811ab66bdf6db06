package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/testkit"
)

// TestServeEndToEnd drives the real wiring: signed deliveries from the fake are acknowledged, handled, logged
// and counted; forged, oversized and malformed ones are refused before any handler.
func TestServeEndToEnd(t *testing.T) {
	h := newHarness(t)

	if code, body := h.get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz = %d %q", code, body)
	}

	h.fake.Ping(h.repo)
	h.commit("feature", "a docs change", map[string]*githubfake.File{"README.md": {Content: []byte("hello\n")}})
	pr, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: "feature", Base: "main", Title: "Docs", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range h.fake.Deliveries() {
		if d.Status < 200 || d.Status > 299 {
			t.Errorf("delivery %s/%s answered %d, want 2xx", d.Event, d.Action, d.Status)
		}
	}
	h.waitFor("pull_request handled", func() bool {
		_, metrics := h.get("/metrics")
		return strings.Contains(metrics, `storagebot_events_handled_total{event="pull_request",result="ok"} 1`)
	})
	_, metrics := h.get("/metrics")
	for _, want := range []string{
		`storagebot_webhook_deliveries_total{event="ping",outcome="ignored"} 1`,
		`storagebot_webhook_deliveries_total{event="pull_request",outcome="accepted"} 1`,
		`storagebot_handler_duration_seconds_count{event="pull_request"} 1`,
		`storagebot_queue_depth 0`,
		`storagebot_comment_rechecks_pending 0`,
		`storagebot_rollout_passes_running 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(metrics, `storagebot_github_rate_limit_remaining{resource="core"}`) {
		t.Errorf("/metrics lacks the rate limit by resource:\n%s", grep(metrics, "rate_limit"))
	}
	logs := h.logs.String()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if dup := testkit.DuplicateJSONKey(t, line); dup != "" {
			t.Errorf("log key %q appears twice in %s", dup, line)
		}
	}
	for _, want := range []string{`"github_event_type":"pull_request"`, `"github_delivery_id":`, `"github_repository_name":"package-storage"`, `"github_pr_num":` + strconv.Itoa(pr.Number)} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if runs := h.repo.CheckRuns(pr.HeadSHA); len(runs) != 0 {
		t.Errorf("a PR into main (no channel) got check runs %+v, want none", runs)
	}

	// A forged delivery reaches no handler; neither does a valid SHA-1 MAC in the SHA-256 header.
	body := []byte(`{"action":"opened","number":1}`)
	code, err := h.fake.DeliverRaw("pull_request", "forged-1", body, "sha256="+strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusUnauthorized {
		t.Errorf("forged delivery = %d, want 401", code)
	}
	sha1MAC := hmac.New(sha1.New, []byte(h.fake.WebhookSecret()))
	sha1MAC.Write(body)
	if code, err := h.fake.DeliverRaw("pull_request", "sha1-1", body, "sha1="+hex.EncodeToString(sha1MAC.Sum(nil))); err != nil || code != http.StatusUnauthorized {
		t.Errorf("SHA-1 signed delivery = %d %v, want 401", code, err)
	}
	// A 30 MB body is refused: 413, or the connection closed while the client still writes; either way the
	// refusal is counted below.
	big := bytes.Repeat([]byte(" "), 30<<20)
	if code, err := h.fake.DeliverRaw("pull_request", "big-1", big, sign(h.fake.WebhookSecret(), big)); err == nil && code != http.StatusRequestEntityTooLarge {
		t.Errorf("30 MB delivery = %d, want 413", code)
	}
	// Malformed JSON is refused with its reason.
	bad := []byte(`{"action":`)
	if code, _ := h.fake.DeliverRaw("pull_request", "bad-1", bad, sign(h.fake.WebhookSecret(), bad)); code != http.StatusBadRequest {
		t.Errorf("malformed delivery = %d, want 400", code)
	}
	h.waitFor("refusals counted", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `outcome="bad_signature"} 2`) && strings.Contains(m, `outcome="malformed"} 1`) &&
			strings.Contains(m, `outcome="too_large"} 1`)
	})
	_, metrics = h.get("/metrics")
	if !strings.Contains(metrics, `storagebot_events_handled_total{event="pull_request",result="ok"} 1`) {
		t.Errorf("refused deliveries reached a handler:\n%s", grep(metrics, "events_handled"))
	}

	// Nothing the server printed or exposes holds a secret: not the webhook secret, not the private key, not
	// an installation token (the fake's start with ghs_), not a JWT (base64 of {"alg":…} starts eyJ).
	out := h.logs.String() + metrics
	if strings.Contains(out, h.fake.WebhookSecret()) {
		t.Error("logs or metrics hold the webhook secret")
	}
	keyLines := strings.Split(strings.TrimSpace(string(h.fake.PrivateKeyPEM())), "\n")
	if l := leaked(out, strings.Join(keyLines[1:len(keyLines)-1], "")); l != "" {
		t.Errorf("logs or metrics hold private key material %q", l)
	}
	for _, prefix := range []string{"ghs_", "eyJ"} {
		if strings.Contains(out, prefix) {
			t.Errorf("logs or metrics hold a credential starting %q:\n%s", prefix, grep(out, prefix))
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// gatedBody is a request body that sends its first 64 KiB, then waits for gate before sending the rest: a
// client that is slow to send, or an attacker holding a connection open.
type gatedBody struct {
	size, sent int64
	gate       <-chan struct{}
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.sent == b.size {
		return 0, io.EOF
	}
	if b.sent >= 64<<10 {
		<-b.gate
	}
	n := min(int64(len(p)), b.size-b.sent, 64<<10)
	for i := range p[:n] {
		p[i] = ' '
	}
	b.sent += n
	return int(n), nil
}

// postHook POSTs a delivery to serve with the given headers and body.
func (h *harness) postHook(event, signature, contentType string, body io.Reader, length int64) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+h.addr+"/api/github/hook", body)
	if err != nil {
		return 0, "", err
	}
	req.ContentLength = length
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", "hostile")
	req.Header.Set("Content-Type", contentType)
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestServeIntakeUnderHostileInput: unsigned bodies are refused on their headers, before the server reads
// them; of 40 slow 24 MB bodies with a well-formed but wrong signature, only what fits the in-flight budget
// (64 MiB: two) is read and the rest is refused at once with 503; a form-encoded delivery is decoded and
// checked before it is queued.
func TestServeIntakeUnderHostileInput(t *testing.T) {
	h := newHarness(t)
	const size = 24 << 20
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	defer open()

	// Each answer must come while the body is still held back by the gate: proof it was not read. The server
	// closes a connection whose body it refuses unread, so a client still writing may see the reset before
	// the status (Go's server waits 500 ms for it); that counts as refused, and /metrics tells which refusal.
	refused := func(code int, err error) string {
		if err != nil {
			return "reset"
		}
		return strconv.Itoa(code)
	}
	code, msg, err := h.postHook("installation", "", "application/json", &gatedBody{size: size, gate: gate}, size)
	if r := refused(code, err); r != "401" && r != "reset" || err == nil && !strings.Contains(msg, "missing X-Hub-Signature-256") {
		t.Errorf("unsigned 24 MB delivery = %d %q %v, want 401 before the body is read", code, msg, err)
	}
	code, msg, err = h.postHook("pull_request", sign(h.fake.WebhookSecret(), nil), "application/json", &gatedBody{size: size, gate: gate}, size)
	if r := refused(code, err); r != "413" && r != "reset" {
		t.Errorf("24 MB pull_request = %d %q %v, want 413 before the body is read", code, msg, err)
	}

	const clients = 40
	answers := make(chan string, clients)
	for i := 0; i < clients; i++ {
		go func() {
			wrong := "sha256=" + strings.Repeat("0", 64)
			code, _, err := h.postHook("installation", wrong, "application/json", &gatedBody{size: size, gate: gate}, size)
			answers <- refused(code, err)
		}()
	}
	got := map[string]int{}
	h.waitFor("every body beyond the budget refused while all are still being sent", func() bool {
		for {
			select {
			case a := <-answers:
				got[a]++
				continue
			default:
			}
			return got["503"]+got["reset"] == clients-2
		}
	})
	if got["401"] != 0 {
		t.Errorf("%d bodies were read and verified before the gate opened, want none: %v", got["401"], got)
	}
	open()
	for got["401"] < 2 {
		got[<-answers]++
	}
	if len(got) > 3 || got["401"] != 2 {
		t.Errorf("answers = %v, want 401 for the two bodies in the budget and 503 (or a reset) for the rest", got)
	}
	_, metrics := h.get("/metrics")
	for _, want := range []string{
		`storagebot_webhook_deliveries_total{event="installation",outcome="over_budget"} 38`,
		`storagebot_webhook_deliveries_total{event="installation",outcome="bad_signature"} 3`,
		`storagebot_webhook_deliveries_total{event="pull_request",outcome="too_large"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grep(metrics, "deliveries_total"))
		}
	}

	// Form-encoded deliveries: the payload field is decoded and must be JSON.
	form := "payload=" + url.QueryEscape(`{"action":`)
	if code, msg, err := h.postHook("pull_request", sign(h.fake.WebhookSecret(), []byte(form)), "application/x-www-form-urlencoded", strings.NewReader(form), int64(len(form))); err != nil || code != http.StatusBadRequest {
		t.Errorf("form with a broken payload = %d %q %v, want 400", code, msg, err)
	}
	if code, msg, err := h.postHook("pull_request", sign(h.fake.WebhookSecret(), []byte("a=1")), "application/x-www-form-urlencoded", strings.NewReader("a=1"), 3); err != nil || code != http.StatusBadRequest {
		t.Errorf("form without a payload = %d %q %v, want 400", code, msg, err)
	}
	if code, msg, err := h.postHook("pull_request", sign(h.fake.WebhookSecret(), []byte("{}")), "text/plain", strings.NewReader("{}"), 2); err != nil || code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain delivery = %d %q %v, want 415", code, msg, err)
	}
}

// TestServeDrain: on SIGTERM serve keeps answering while a running event finishes: /readyz says 503 and a
// new delivery gets 503; then it exits 0. A drain that times out cancels the event and still exits 0.
func TestServeDrain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		latency time.Duration
		wantLog string
	}{
		{name: "drain completes", latency: 2 * time.Second, wantLog: "queue drained"},
		{name: "drain times out", args: []string{"--shutdown-timeout", "300ms"}, latency: 3 * time.Second, wantLog: "stopped before every queued event finished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.args...)
			// Every check-run write takes its time, so the PR's event is still running when SIGTERM comes (all
			// of them: the start-up reconcile may race the handler for the first).
			h.fake.InjectFault(githubfake.Fault{Route: "POST /repos/{owner}/{repo}/check-runs", Latency: tc.latency})
			h.openPR("snapshot", "slow", "[snapshot] Add foo 1.0.0", pkgFiles("foo", "1.0.0", 2, "v1"))
			h.waitFor("the event to run", func() bool {
				_, m := h.get("/metrics")
				return strings.Contains(m, "\nstoragebot_events_in_flight 1\n") && strings.Contains(m, "\nstoragebot_queue_depth 0\n")
			})
			h.cancel()
			h.waitFor("draining", func() bool { return strings.Contains(h.logs.String(), "shutting down") })
			if code, body := h.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
				t.Errorf("/readyz during the drain = %d %q, want 503 draining", code, body)
			}
			body := []byte(`{"action":"opened"}`)
			if code, err := h.fake.DeliverRaw("pull_request", "late", body, sign(h.fake.WebhookSecret(), body)); err != nil || code != http.StatusServiceUnavailable {
				t.Errorf("delivery during the drain = %d %v, want 503", code, err)
			}
			select {
			case code := <-h.done:
				if code != 0 {
					t.Errorf("serve exited %d after SIGTERM, want 0; logs:\n%s", code, tail(h.logs.String(), 20))
				}
				if !strings.Contains(h.logs.String(), tc.wantLog) {
					t.Errorf("logs lack %q:\n%s", tc.wantLog, tail(h.logs.String(), 20))
				}
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop")
			}
			h.cancel = nil
		})
	}
}

// BenchmarkIntakeRSS measures the resident memory of a real `storagebot serve` process (built from this
// package, or the binary in STORAGEBOT_BIN, to measure another version) while clients flood its webhook
// endpoint over loopback. Each round sends, all at once, `clients` (default 40, STORAGEBOT_RSS_CLIENTS)
// 24 MB POSTs of each kind: unsigned, a well-formed but wrong signature on an event a handler takes
// (installation: read into the budget), on one none takes (push: streamed), and on pull_request (over its
// 2 MiB cap). It reports the idle RSS, the peak RSS (VmHWM) and the answers. Figures are reported, never
// asserted: run with
//
//	go test -run '^$' -bench IntakeRSS -benchtime 3x ./cmd/storagebot/
func BenchmarkIntakeRSS(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc/<pid>/status")
	}
	clients := 40
	if v := os.Getenv("STORAGEBOT_RSS_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("STORAGEBOT_RSS_CLIENTS=%q: %v", v, err)
		}
		clients = n
	}
	bin := os.Getenv("STORAGEBOT_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "storagebot")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	fake := githubfake.New(githubfake.Options{})
	defer fake.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--log-level", "error")
	cmd.Env = append(os.Environ(),
		"GITHUB_APP_INTEGRATION_ID="+strconv.FormatInt(fake.AppID(), 10),
		"GITHUB_APP_PRIVATE_KEY="+string(fake.PrivateKeyPEM()),
		"GITHUB_APP_WEBHOOK_SECRET="+fake.WebhookSecret(),
		"GITHUB_V3_API_URL="+fake.URL(),
		"GITHUB_WEB_URL="+fake.WebURL(),
	)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("serve not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	idle := procStatusKiB(b, cmd.Process.Pid, "VmRSS")

	body := bytes.Repeat([]byte(" "), 24<<20)
	wrong := "sha256=" + strings.Repeat("0", 64)
	kinds := []struct{ event, signature string }{
		{"pull_request", ""}, {"installation", wrong}, {"push", wrong}, {"pull_request", wrong},
	}
	transport := &http.Transport{MaxConnsPerHost: 0, DisableKeepAlives: true}
	client := &http.Client{Transport: transport}
	var mu sync.Mutex
	answers := map[string]int{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for _, k := range kinds {
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodPost, base+"/api/github/hook", bytes.NewReader(body))
					req.Header.Set("X-GitHub-Event", k.event)
					req.Header.Set("X-GitHub-Delivery", "rss")
					req.Header.Set("Content-Type", "application/json")
					if k.signature != "" {
						req.Header.Set("X-Hub-Signature-256", k.signature)
					}
					answer := "error"
					if resp, err := client.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						answer = strconv.Itoa(resp.StatusCode)
					}
					mu.Lock()
					answers[k.event+"/"+map[bool]string{true: "unsigned", false: "wrong"}[k.signature == ""]+"/"+answer]++
					mu.Unlock()
				}()
			}
		}
		wg.Wait()
	}
	b.StopTimer()
	peak := procStatusKiB(b, cmd.Process.Pid, "VmHWM")
	b.ReportMetric(float64(idle)/1024, "idle-RSS-MiB")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(len(kinds)*clients), "concurrent-POSTs")
	b.Logf("answers: %v", answers)
}

// procStatusKiB reads a kB field (VmRSS, VmHWM) of /proc/<pid>/status.
func procStatusKiB(b *testing.B, pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("parse %s: %v", line, err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
