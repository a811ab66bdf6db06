package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/storagebot/storagebot/internal/browsertest"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/status"
	"github.com/storagebot/storagebot/internal/status/statustest"
)

// newStatusHarness runs serve against a fake GitHub holding statustest's repository: a version pending
// removal with its removal PR, a drift, and an open promotion with a passing verdict.
func newStatusHarness(t *testing.T) (*harness, *statustest.Fixture) {
	t.Helper()
	st := statustest.Start(t, statustest.AppKey) // the marker key serve derives from the same App key
	fake := st.Fake
	h := &harness{t: t, fake: fake, repo: st.Repo, logs: &syncBuffer{}}
	t.Setenv("GITHUB_APP_INTEGRATION_ID", strconv.FormatInt(fake.AppID(), 10))
	t.Setenv("GITHUB_APP_PRIVATE_KEY", string(fake.PrivateKeyPEM()))
	t.Setenv("GITHUB_APP_WEBHOOK_SECRET", fake.WebhookSecret())
	t.Setenv("GITHUB_V3_API_URL", fake.URL())
	t.Setenv("GITHUB_WEB_URL", fake.WebURL())
	h.start("--reconcile-interval", "0")
	t.Cleanup(h.stop)
	return h, st.Fixture
}

// statusReport reads GET /api/status from serve; false when it did not answer with a report (yet).
func (h *harness) statusReport() (status.Report, bool) {
	resp, err := http.Get("http://" + h.addr + status.APIPath)
	if err != nil {
		return status.Report{}, false
	}
	defer resp.Body.Close()
	var rep status.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return status.Report{}, false
	}
	return rep, true
}

// TestStatusAPI: GET /api/status through serve reports the repository as the board reads it.
func TestStatusAPI(t *testing.T) {
	h, fix := newStatusHarness(t)
	var rep status.Report
	h.waitFor("/api/status to show the repository read", func() bool {
		var ok bool
		rep, ok = h.statusReport()
		return ok && len(rep.Repositories) == 1 && !rep.Repositories[0].ReadAt.IsZero()
	})
	r := rep.Repositories[0]
	if len(r.Pending) != 1 || r.Pending[0].RemovalPR == nil || r.Pending[0].RemovalPR.Number != fix.RemovalPR {
		t.Errorf("pending = %+v, want %s with #%d", r.Pending, statustest.PendingVersion, fix.RemovalPR)
	}
	if len(r.Drift) != 1 || len(r.InFlight) != 2 || len(r.Channels) != 3 {
		t.Errorf("drift %d, in flight %d, channels %d; want 1, 2, 3", len(r.Drift), len(r.InFlight), len(r.Channels))
	}
}

// TestStatusPageInBrowser loads /status in headless Chromium and checks what a person sees: the repository,
// the pending removal with the link to its PR, the drift, the promotion in flight and its verdict.
// STORAGEBOT_SCREENSHOTS=1 writes docs/screenshots/status.png.
func TestStatusPageInBrowser(t *testing.T) {
	h, fix := newStatusHarness(t)
	ctx := browsertest.New(t)
	page := "http://" + h.addr + status.PagePath

	// The first load may come before GitHub was read (the page waits a few seconds at most): load until read.
	type seen struct {
		Heading, Pending, Drift, InFlight, Verdicts, ReadAt string
		RemovalHref, InFlightHref                           []string
	}
	const read = `(() => {
		const text = sel => (document.querySelector(sel) || {innerText: ""}).innerText;
		const hrefs = sel => [...document.querySelectorAll(sel)].map(a => a.href);
		return {Heading: text("section.repository h2"), Pending: text("tr.pending"), Drift: text("tr.drift"),
			InFlight: text("table.in-flight"), Verdicts: text("table.verdicts"), ReadAt: text("p.read-at"),
			RemovalHref: hrefs("tr.pending a"), InFlightHref: hrefs("table.in-flight a")};
	})()`
	var got seen
	deadline := time.Now().Add(time.Minute)
	for {
		if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatalf("load %s: %v", page, err)
		}
		var err error
		if got, err = chromedp.Run(ctx, chromedp.Evaluate[seen](read)); err != nil {
			t.Fatalf("read the page: %v", err)
		}
		if got.Pending != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	heading, pending, drift, inFlight, verdicts, readAt := got.Heading, got.Pending, got.Drift, got.InFlight, got.Verdicts, got.ReadAt
	removalHref, promotionHref := got.RemovalHref, got.InFlightHref
	checks := []struct{ what, got, want string }{
		{"heading", heading, statustest.Owner + "/" + statustest.Name},
		{"pending row", pending, statustest.PendingVersion},
		{"pending row", pending, "identical: removal from snapshot pending in #" + strconv.Itoa(fix.RemovalPR)},
		{"drift row", drift, statustest.DriftVersion},
		{"drift row", drift, "drift: different contents"},
		{"in flight", inFlight, "[production] Promote apm@1.0.0 from staging"},
		{"verdicts", verdicts, "success: " + statustest.VerdictTitle},
		{"verdicts", verdicts, "no run yet"},
		{"read at", readAt, "Read from GitHub 20"},
	}
	for _, c := range checks {
		if !strings.Contains(c.got, c.want) {
			t.Errorf("%s = %q, want it to contain %q", c.what, c.got, c.want)
		}
	}
	if len(removalHref) != 1 || removalHref[0] != fix.Repo.PullRequestURL(fix.RemovalPR) {
		t.Errorf("pending row links %v, want the removal PR %s", removalHref, fix.Repo.PullRequestURL(fix.RemovalPR))
	}
	if !slices.Contains(promotionHref, fix.Repo.PullRequestURL(fix.PromotionPR)) || !slices.Contains(promotionHref, fix.Repo.PullRequestURL(fix.RemovalPR)) {
		t.Errorf("in-flight links %v, want the promotion and removal PRs", promotionHref)
	}
	browsertest.Screenshot(t, ctx, "status")
}

// TestStatusShowsHandlerErrors: a delivery whose handling fails (GitHub refuses to create the check run)
// shows under its repository among the recent errors, with the event and the cause.
func TestStatusShowsHandlerErrors(t *testing.T) {
	h, fix := newStatusHarness(t)
	h.fake.InjectFault(githubfake.Fault{Route: "POST /repos/{owner}/{repo}/check-runs", Status: http.StatusUnprocessableEntity})
	if err := fix.Repo.CreateBranch("feature/apm-2", fix.Repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	if _, err := fix.Repo.Commit("feature/apm-2", "apm 2.0.0", map[string]*githubfake.File{
		"packages/apm/2.0.0/manifest.yml": {Content: []byte("name: apm\nversion: 2.0.0\n")},
	}); err != nil {
		t.Fatal(err)
	}
	pr, err := fix.Repo.OpenPullRequest(githubfake.PROptions{Head: "feature/apm-2", Base: "snapshot", User: "author", Title: "[snapshot] apm 2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	var found status.ErrorEntry
	h.waitFor("the failed pull_request delivery on /api/status", func() bool {
		rep, ok := h.statusReport()
		if !ok {
			return false
		}
		for _, r := range rep.Repositories {
			for _, e := range r.Errors {
				if r.FullName == fix.Repo.FullName() && strings.HasPrefix(e.What, "pull_request delivery ") {
					found = e
					return true
				}
			}
		}
		return false
	})
	if !strings.Contains(found.Cause, "422") {
		t.Errorf("error cause = %q, want GitHub's 422 on the check run (PR #%d)", found.Cause, pr.Number)
	}
}
