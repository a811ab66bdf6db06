package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/testkit"
)

// harness runs `storagebot serve` in process, through run() exactly as the binary does, against a fake
// GitHub that delivers its signed webhooks to it.
type harness struct {
	t    testing.TB
	fake *githubfake.Server
	repo *githubfake.Repo
	addr string
	logs *syncBuffer

	cancel context.CancelFunc
	done   chan int
}

// syncBuffer collects the server's logs from several goroutines.
type syncBuffer = testkit.SyncBuffer

// newHarness starts a fake GitHub holding a storage repository with the three channel branches, and serve.
func newHarness(t testing.TB, extraArgs ...string) *harness {
	t.Helper()
	h := newFakeHarness(t)
	t.Setenv("GITHUB_APP_INTEGRATION_ID", strconv.FormatInt(h.fake.AppID(), 10))
	t.Setenv("GITHUB_APP_PRIVATE_KEY", string(h.fake.PrivateKeyPEM()))
	t.Setenv("GITHUB_APP_WEBHOOK_SECRET", h.fake.WebhookSecret())
	t.Setenv("GITHUB_V3_API_URL", h.fake.URL())
	t.Setenv("GITHUB_WEB_URL", h.fake.WebURL())
	h.start(extraArgs...)
	t.Cleanup(h.stop)
	return h
}

// newFakeHarness starts the fake GitHub and its storage repository only: no serve, no environment set, so
// tests that each have their own fake may run in parallel (their serves take the App from --config).
func newFakeHarness(t testing.TB) *harness {
	t.Helper()
	return newFakeHarnessWith(t, githubfake.Options{})
}

// newFakeHarnessWith is newFakeHarness with the fake's options.
func newFakeHarnessWith(t testing.TB, opts githubfake.Options) *harness {
	t.Helper()
	fake := githubfake.New(opts)
	t.Cleanup(fake.Close)
	h := &harness{t: t, fake: fake, logs: &syncBuffer{}}
	h.repo = fake.CreateRepo("storage-org", "package-storage", "main")
	for _, ch := range []string{"production", "staging", "snapshot"} {
		h.commit(ch, "registry files", map[string]*githubfake.File{
			"Dockerfile": {Content: []byte("ARG PACKAGE_REGISTRY=v1.15.0\nFROM docker.elastic.co/package-registry/package-registry:${PACKAGE_REGISTRY}\n")},
			"go.mod":     {Content: []byte("module github.com/elastic/package-storage\n\ngo 1.19\n\nrequire github.com/elastic/package-registry v1.15.0\n")},
		})
	}
	return h
}

// start runs serve on a free loopback port and waits until it is ready.
func (h *harness) start(extraArgs ...string) {
	h.t.Helper()
	h.addr, h.cancel, h.done = h.launch(h.logs, extraArgs...)
	h.fake.SetWebhookURL("http://" + h.addr + "/api/github/hook")
}

// launch runs one serve process (run() in a goroutine) on a free loopback port, logging to logs, and waits
// until it is ready. It does not point the fake's webhooks at it.
func (h *harness) launch(logs *syncBuffer, extraArgs ...string) (addr string, cancel context.CancelFunc, done chan int) {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan int, 1)
	args := append([]string{"serve", "--addr", addr, "--log-level", "debug", "--workers", "4"}, extraArgs...)
	go func() { done <- run(ctx, args, io.Discard, logs) }()
	h.waitFor("serve on "+addr+" to be ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr, cancel, done
}

// replica is a further `serve` process against the harness's fake GitHub: what a second pod of the same
// Deployment is. It shares nothing in memory with the first; only GitHub's state is common.
type replica struct {
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// startReplica starts another serve on another port against the same fake, stopped when the test ends.
// Webhooks keep going where they went; route them with routeWebhooks.
func (h *harness) startReplica(extraArgs ...string) *replica {
	h.t.Helper()
	r := &replica{logs: &syncBuffer{}}
	r.addr, r.cancel, r.done = h.launch(r.logs, extraArgs...)
	h.t.Cleanup(func() {
		r.cancel()
		select {
		case code := <-r.done:
			if code != 0 {
				h.t.Errorf("replica %s exited %d; logs:\n%s", r.addr, code, tail(r.logs.String(), 40))
			}
		case <-time.After(30 * time.Second):
			h.t.Errorf("replica %s did not stop within 30s", r.addr)
		}
	})
	return r
}

// routeWebhooks points the fake's webhooks at a router that hands each delivery to the serve addresses pick
// returns (all at once when several: one delivery reaching two replicas, as a redelivery landing on another
// pod does). The answer of the first address is GitHub's view of the delivery.
func (h *harness) routeWebhooks(pick func(event, action string) []string) {
	h.t.Helper()
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var probe struct {
			Action string `json:"action"`
		}
		_ = json.Unmarshal(body, &probe)
		targets := pick(r.Header.Get("X-GitHub-Event"), probe.Action)
		codes := make([]int, len(targets))
		var wg sync.WaitGroup
		for i, addr := range targets {
			wg.Add(1)
			go func(i int, addr string) {
				defer wg.Done()
				req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/github/hook", bytes.NewReader(body))
				if err != nil {
					codes[i] = http.StatusBadGateway
					return
				}
				req.Header = r.Header.Clone()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					codes[i] = http.StatusBadGateway
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}(i, addr)
		}
		wg.Wait()
		if len(codes) == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(codes[0])
	}))
	h.t.Cleanup(router.Close)
	// Unroute before the router closes (cleanups run last-in first-out).
	h.t.Cleanup(func() { h.fake.SetWebhookURL("") })
	h.fake.SetWebhookURL(router.URL + "/api/github/hook")
}

// settleAt waits until the serve at addr has finished every event delivered so far (see settle).
func (h *harness) settleAt(addr string) {
	h.t.Helper()
	h.waitFor("no event in flight on "+addr, func() bool { return eventsIdle(addr) })
}

// eventsIdle reports whether the serve at addr has no event in flight, as its metrics say.
func eventsIdle(addr string) bool { return metricIs(addr, "storagebot_events_in_flight 0") }

// rechecksIdle reports whether the replica at addr has no late look for a duplicate comment pending
// (botcomment.Rechecks): due the write-settle time after each post.
func rechecksIdle(addr string) bool { return metricIs(addr, "storagebot_comment_rechecks_pending 0") }

// rolloutsIdle reports whether the replica at addr runs no rollout pass: a pass runs outside any event, and
// may still be writing (putting back what a late status covered) when every event is done.
func rolloutsIdle(addr string) bool { return metricIs(addr, "storagebot_rollout_passes_running 0") }

// metricIs reports whether the replica at addr exposes the series line (name and value) in /metrics.
func metricIs(addr, line string) bool {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(m), "\n"+line+"\n")
}

// repository is the storage repository as GitHub's API answers it, for hand-made webhook payloads.
func (h *harness) repository() *github.Repository {
	h.t.Helper()
	client, err := h.fake.InstallationClient()
	if err != nil {
		h.t.Fatal(err)
	}
	repo, _, err := client.Repositories.Get(context.Background(), "storage-org", "package-storage")
	if err != nil {
		h.t.Fatal(err)
	}
	return repo
}

// openOverwritePR commits foo@version (three files) to channel and opens PR fix-foo into it, which edits the
// version's fields.yml: an overwrite of a released version, which the policy refuses unless allowed.
func (h *harness) openOverwritePR(channel, version string) *githubfake.PullRequest {
	h.t.Helper()
	h.commit(channel, "foo "+version, pkgFiles("foo", version, 3, "v1"))
	return h.openPR(channel, "fix-foo", fmt.Sprintf("[%s] Fix foo %s docs", channel, version), map[string]*githubfake.File{
		"packages/foo/" + version + "/data_stream/ds1/fields/fields.yml": {Content: []byte("- name: fixed\n")},
	})
}

// promoteFromIssue has writer comment "/promote <version>" on a new issue, waits for the bot's ✅ and for
// the storage-policy run on the promotion PR into staging, and returns that PR.
func (h *harness) promoteFromIssue(writer, version string) githubfake.PullRequest {
	h.t.Helper()
	pkg, _, _ := strings.Cut(version, "@")
	issue := h.repo.OpenIssue("promote "+pkg, "", writer)
	if _, err := h.repo.Comment(issue, writer, "/promote "+version); err != nil {
		h.t.Fatal(err)
	}
	h.botReply(issue, "✅")
	promo := h.pullsInto("staging", "storagebot/promote/")[0]
	h.completedRun(promo.HeadSHA)
	return promo
}

// stop shuts serve down gracefully and checks it exited cleanly.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case code := <-h.done:
		if code != 0 {
			h.t.Errorf("serve exited %d; logs:\n%s", code, h.logs.String())
		}
	case <-time.After(30 * time.Second):
		h.t.Error("serve did not stop within 30s")
	}
	h.cancel = nil
	h.fake.SetWebhookURL("")
}

// restart simulates a process restart: a new serve with nothing in memory. Events already caused are
// handled first: a delivery arriving while the server drains is refused with 503, which GitHub would show
// as failed (the reconciler's stale-check pass covers that case, tested on its own).
func (h *harness) restart() {
	h.settle()
	h.stop()
	h.start()
}

func (h *harness) commit(branch, msg string, files map[string]*githubfake.File) string {
	h.t.Helper()
	sha, err := h.repo.Commit(branch, msg, files)
	if err != nil {
		h.t.Fatalf("commit to %s: %v", branch, err)
	}
	return sha
}

// waitFor polls cond until it holds; async work is awaited on a condition, never a sleep.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	// Generous: CI runs the race detector on two shared cores; a passing condition returns at once.
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; server logs:\n%s", what, tail(h.logs.String(), 40))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// completedRun waits for the storage-policy run on sha to complete and returns it.
func (h *harness) completedRun(sha string) githubfake.CheckRun {
	h.t.Helper()
	var run githubfake.CheckRun
	h.waitFor("storage-policy on "+sha[:7], func() bool {
		for _, r := range h.repo.CheckRuns(sha) {
			if r.Name == "storage-policy" && r.Status == "completed" {
				run = r
				return true
			}
		}
		return false
	})
	return run
}

// get fetches a path of the server.
func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get("http://" + h.addr + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// redeliver sends a recorded delivery again, as GitHub's "Redeliver" button does (same delivery ID).
func (h *harness) redeliver(d githubfake.Delivery) int {
	h.t.Helper()
	code, err := h.fake.DeliverRaw(d.Event, d.ID, d.Body, sign(h.fake.WebhookSecret(), d.Body))
	if err != nil {
		h.t.Fatal(err)
	}
	return code
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// pkgFiles builds the files of a package version: a manifest and n-1 data files.
func pkgFiles(name, version string, n int, salt string) map[string]*githubfake.File {
	dir := "packages/" + name + "/" + version + "/"
	files := map[string]*githubfake.File{
		dir + "manifest.yml": {Content: []byte(fmt.Sprintf("format_version: 1.0.0\nname: %s\nversion: %s\ntitle: %s\n", name, version, strings.ToUpper(name)))},
	}
	for i := 1; i < n; i++ {
		files[fmt.Sprintf("%sdata_stream/ds%d/fields/fields.yml", dir, i)] = &githubfake.File{Content: []byte(fmt.Sprintf("- name: field%d\n  type: keyword\n# %s\n", i, salt))}
	}
	return files
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func itoa(n int) string { return strconv.Itoa(n) }

// settle waits until the server has finished every event delivered so far. Deliveries are synchronous (the
// fake returns once the server acknowledged), and events a handler causes are acknowledged before that
// handler finishes, so no event in flight means quiescence.
func (h *harness) settle() {
	h.t.Helper()
	h.waitFor("no event in flight", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, "\nstoragebot_events_in_flight 0\n")
	})
}
