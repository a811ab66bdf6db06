package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/storagebot/storagebot/internal/browsertest"
	"github.com/storagebot/storagebot/internal/githubfake"
)

// newSetupHarness starts a fake GitHub whose App is not registered yet and serve with no App configured at
// all (no environment, no file): setup mode. credentials is the credentials file serve is given.
func newSetupHarness(t *testing.T, credentials string) *harness {
	t.Helper()
	h := newFakeHarnessWith(t, githubfake.Options{Unregistered: true})
	for _, k := range []string{"GITHUB_APP_INTEGRATION_ID", "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_WEBHOOK_SECRET"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("GITHUB_V3_API_URL", h.fake.URL())
	t.Setenv("GITHUB_WEB_URL", h.fake.WebURL())
	h.startSetup(credentials)
	t.Cleanup(h.stop)
	return h
}

// startSetup runs serve on a free loopback port with --public-url at that port, and waits until it answers
// /healthz (in setup mode /readyz answers 503 until the App is registered).
func (h *harness) startSetup(credentials string) {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan int, 1)
	args := []string{"serve", "--addr", h.addr, "--log-level", "debug", "--workers", "2",
		"--public-url", "http://" + h.addr, "--credentials-file", credentials, "--setup-org", "storage-org"}
	go func() { h.done <- run(ctx, args, io.Discard, h.logs) }()
	h.waitFor("serve on "+h.addr+" to answer /healthz", func() bool {
		resp, err := http.Get("http://" + h.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// assertSetupMode checks what setup mode answers before the App exists.
func (h *harness) assertSetupMode() {
	h.t.Helper()
	if code, body := h.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not configured") {
		h.t.Errorf("/readyz in setup mode = %d %q, want 503 not configured", code, body)
	}
	body := []byte(`{"zen":"hi"}`)
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.addr+"/api/github/hook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", sign("anything", body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(msg), "not configured") {
		h.t.Errorf("webhook in setup mode = %d %q, want 503 not configured", resp.StatusCode, msg)
	}
}

// assertServesTheApp checks that serve now runs the registered App: ready, and a PR into a channel gets its
// storage-policy check (the fake delivers the signed pull_request to the webhook URL of the manifest, and
// the check is written with an installation token of the new App).
func (h *harness) assertServesTheApp(branch, version string) {
	h.t.Helper()
	h.waitFor("/readyz to answer 200", func() bool { code, _ := h.get("/readyz"); return code == http.StatusOK })
	if err := h.repo.CreateBranch(branch, h.repo.BranchSHA("snapshot")); err != nil {
		h.t.Fatal(err)
	}
	sha := h.commit(branch, "add a package", pkgFiles("apm", version, 3, branch))
	if _, err := h.repo.OpenPullRequest(githubfake.PROptions{Head: branch, Base: "snapshot", Title: "[snapshot] apm " + version, User: "alice"}); err != nil {
		h.t.Fatal(err)
	}
	run := h.completedRun(sha)
	if run.Conclusion != "success" {
		h.t.Errorf("storage-policy after setup = %s, want success", run.Conclusion)
	}
	var got *githubfake.Delivery
	for _, d := range h.fake.Deliveries() {
		if d.Event == "pull_request" {
			got = &d
		}
	}
	if got == nil || got.Status != http.StatusOK && got.Status != http.StatusAccepted {
		h.t.Errorf("the signed pull_request delivery was not accepted: %+v", got)
	}
}

// TestSetupModeInBrowser drives setup mode as a person does, in headless Chromium: the setup page, its
// button, GitHub's creation page, the redirect back, the installed state with its install link; then serve
// handles a signed webhook of the new App without a restart. STORAGEBOT_SCREENSHOTS=1 writes the pages to
// docs/screenshots/setup-*.png.
func TestSetupModeInBrowser(t *testing.T) {
	credentials := filepath.Join(t.TempDir(), "storagebot", "github-app.json")
	ctx := browsertest.New(t)
	h := newSetupHarness(t, credentials)
	h.assertSetupMode()

	base := "http://" + h.addr
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("register"))); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	if err != nil || title != "Set up storagebot" {
		t.Errorf("setup page heading = %q (%v)", title, err)
	}
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("summary")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{base + "/api/github/hook", "the organization storage-org", credentials} {
		if !strings.Contains(summary, want) {
			t.Errorf("setup page summary does not show %q:\n%s", want, summary)
		}
	}
	browsertest.Screenshot(t, ctx, "setup-1-start")

	// The button posts the manifest to GitHub, which shows its creation page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("register")), chromedp.WaitVisible(chromedp.ID("create"))); err != nil {
		t.Fatal(err)
	}
	owner, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("owner")))
	if err != nil || owner != "storage-org" {
		t.Errorf("GitHub's creation page registers for %q (%v), want storage-org", owner, err)
	}
	browsertest.Screenshot(t, ctx, "setup-2-github")

	// Confirming creates the App; GitHub redirects to the callback, which redirects to the installed state.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("create")), chromedp.WaitVisible(chromedp.ID("install"))); err != nil {
		t.Fatalf("after confirming on GitHub: %v; logs:\n%s", err, tail(h.logs.String(), 30))
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || location != base+"/" {
		t.Errorf("after the callback the browser is at %q (%v), want %s/", location, err, base)
	}
	app, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("app")))
	if err != nil || !strings.Contains(app, "App ID "+itoa(int(h.fake.AppID()))) || !strings.Contains(app, "owned by storage-org") {
		t.Errorf("installed page says %q (%v), want the App ID %d and its owner", app, err, h.fake.AppID())
	}
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("install"), "href"))
	if want := h.fake.WebURL() + "apps/storagebot/installations/new"; err != nil || href.Value != want {
		t.Errorf("install link = %+v (%v), want %s", href, err, want)
	}
	browsertest.Screenshot(t, ctx, "setup-3-installed")

	st, err := os.Stat(credentials)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v; want mode 0600", err, st)
	}
	h.assertServesTheApp("feature-browser", "8.1.0")

	// The install link leads to GitHub's installation page of the new App.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("install")), chromedp.WaitVisible(chromedp.ID("message"))); err != nil {
		t.Fatal(err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("message")))
	if err != nil || !strings.Contains(msg, "installed on storage-org") {
		t.Errorf("installation page says %q (%v)", msg, err)
	}
	if logs := h.logs.String(); strings.Contains(logs, h.fake.WebhookSecret()) || strings.Contains(logs, "PRIVATE KEY") {
		t.Error("serve's logs quote the new App's key material")
	}
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	manifestRE   = regexp.MustCompile(`name="manifest" value="([^"]+)"`)
)

// registerOverHTTP does what the browser does in TestSetupModeInBrowser with net/http, so setup mode is
// covered end to end on machines without Chromium too. It returns the callback URL once followed.
func (h *harness) registerOverHTTP() string {
	h.t.Helper()
	_, page := h.get("/")
	am, mm := formActionRE.FindStringSubmatch(page), manifestRE.FindStringSubmatch(page)
	if am == nil || mm == nil {
		h.t.Fatalf("setup page has no manifest form:\n%s", page)
	}
	action, manifest := html.UnescapeString(am[1]), html.UnescapeString(mm[1])
	resp, err := http.PostForm(action, url.Values{"manifest": {manifest}})
	if err != nil {
		h.t.Fatal(err)
	}
	page2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	confirm := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(string(page2))
	if confirm == nil {
		h.t.Fatalf("GitHub's creation page has no form:\n%s", page2)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.PostForm(html.UnescapeString(confirm[1]), url.Values{"manifest": {manifest}, "name": {"storagebot"}})
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, "http://"+h.addr+"/setup/callback?") {
		h.t.Fatalf("GitHub redirects to %q, want serve's callback", callback)
	}
	resp, err = http.Get(callback)
	if err != nil {
		h.t.Fatal(err)
	}
	done, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(done), `id="install"`) {
		h.t.Fatalf("callback = %d:\n%s\nlogs:\n%s", resp.StatusCode, done, tail(h.logs.String(), 30))
	}
	return callback
}

// TestSetupModeThenRestart: the flow over plain HTTP, a replayed callback refused with nothing changed, then a
// restart that reads the credentials file and serves at once; a damaged file stops serve naming the file.
func TestSetupModeThenRestart(t *testing.T) {
	credentials := filepath.Join(t.TempDir(), "github-app.json")
	h := newSetupHarness(t, credentials)
	h.assertSetupMode()
	callback := h.registerOverHTTP()
	h.assertServesTheApp("feature-1", "8.1.0")

	before, err := os.ReadFile(credentials)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(page), "already set up") {
		t.Errorf("replayed callback = %d:\n%s", resp.StatusCode, page)
	}
	if after, _ := os.ReadFile(credentials); !bytes.Equal(before, after) {
		t.Error("a replayed callback rewrote the credentials file")
	}

	// A restart reads the file: no setup mode, ready at once.
	h.settle()
	h.stop()
	h.startSetup(credentials)
	if code, _ := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after a restart with the credentials file = %d, want 200", code)
	}
	if code, _ := h.get("/"); code != http.StatusNotFound {
		t.Errorf("/ after a restart with credentials = %d, want 404 (no setup page once set up)", code)
	}
	h.fake.SetWebhookURL("http://" + h.addr + "/api/github/hook") // stop() cleared it
	h.assertServesTheApp("feature-2", "8.2.0")
	h.settle()
	h.stop()

	// A damaged file is an error naming it, exit 2, never setup mode over it.
	if err := os.WriteFile(credentials, []byte(`{"app_id": 7, "pem": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--credentials-file", credentials}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "credentials file "+credentials) || !strings.Contains(stderr.String(), "webhook_secret is missing") {
		t.Errorf("serve with a damaged credentials file = %d %q, want 2 naming the file and the field", code, stderr.String())
	}
}
