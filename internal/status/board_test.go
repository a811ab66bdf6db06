package status

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/status/statustest"
	"github.com/storagebot/storagebot/internal/storage"
)

// clock is a settable clock for the board's bounds.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	fake  *githubfake.Server
	fix   *statustest.Fixture
	board *Board
	clock *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	key, err := seal.New([]byte("status test key"))
	if err != nil {
		t.Fatal(err)
	}
	st := statustest.Start(t, statustest.FixedKey(key))
	fake, client := st.Fake, st.Client
	cache := storage.NewObjectCache(0)
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	b := NewBoard(func(context.Context) ([]int64, error) { return []int64{fake.InstallationID()}, nil },
		func(int64) (GitHub, error) { return githubapi.New(client, cache), nil },
		&promotion.Service{Cache: cache, Seal: key, AppID: fake.AppID()}, &prcheck.Service{Cache: cache, Seal: key, AppID: fake.AppID()})
	b.Now = clk.Now
	b.Wait = time.Minute // generous: tests wait for the reads; the bound is exercised by TestReportWaitsAtMostWait
	return &env{fake: fake, fix: st.Fixture, board: b, clock: clk}
}

// TestReportShowsRepositoryState: channels with their heads, the pending removal with its PR, the drift, the
// PRs in flight and the verdicts, read through the promotion and check services.
func TestReportShowsRepositoryState(t *testing.T) {
	e := newEnv(t)
	rep := e.board.Report(context.Background())
	if rep.ListError != "" || len(rep.Repositories) != 1 {
		t.Fatalf("report: list error %q, %d repositories; want one", rep.ListError, len(rep.Repositories))
	}
	r := rep.Repositories[0]
	if r.ReadError != "" || r.ReadAt.IsZero() || !r.Storage || !r.Dashboard {
		t.Fatalf("repository: read error %q, read at %v, storage %v, dashboard %v", r.ReadError, r.ReadAt, r.Storage, r.Dashboard)
	}
	var heads []string
	for _, ch := range r.Channels {
		heads = append(heads, ch.Name+"="+ch.Commit)
	}
	wantHeads := []string{"snapshot=" + e.fix.Repo.BranchSHA("snapshot"), "staging=" + e.fix.Repo.BranchSHA("staging"), "production=" + e.fix.Repo.BranchSHA("production")}
	if diff := cmp.Diff(wantHeads, heads); diff != "" {
		t.Errorf("channel heads (-want +got):\n%s", diff)
	}
	wantPending := []Pending{{Package: "apm", Version: "1.0.0", Lower: "snapshot", Higher: "staging",
		RemovalPR: &Link{Number: e.fix.RemovalPR, URL: e.fix.Repo.PullRequestURL(e.fix.RemovalPR)}}}
	if diff := cmp.Diff(wantPending, r.Pending); diff != "" {
		t.Errorf("pending removals (-want +got):\n%s", diff)
	}
	if len(r.Drift) != 1 || r.Drift[0].Package+"@"+r.Drift[0].Version != statustest.DriftVersion || r.Drift[0].Lower != "staging" || r.Drift[0].Higher != "production" {
		t.Errorf("drift = %+v, want %s between staging and production", r.Drift, statustest.DriftVersion)
	}
	var inFlight []string
	for _, f := range r.InFlight {
		inFlight = append(inFlight, f.Kind+" "+f.Target+" "+strings.Join(f.Versions, ","))
	}
	if diff := cmp.Diff([]string{"removal snapshot apm@1.0.0", "promotion production apm@1.0.0"}, inFlight); diff != "" {
		t.Errorf("in flight (-want +got):\n%s", diff)
	}
	verdicts := map[int]string{}
	for _, v := range r.Verdicts {
		verdicts[v.PR.Number] = v.Status + " " + v.Conclusion + " " + v.Summary
	}
	want := map[int]string{
		e.fix.RemovalPR:   "none  ",
		e.fix.PromotionPR: "completed success " + statustest.VerdictTitle,
		e.fix.UncheckedPR: "none  ",
	}
	if diff := cmp.Diff(want, verdicts); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
}

// TestReportReadsAtMostOncePerInterval: a second page load within MinInterval costs no API call; past it,
// the repository is read again.
func TestReportReadsAtMostOncePerInterval(t *testing.T) {
	e := newEnv(t)
	e.board.Report(context.Background())
	e.fake.ResetCalls()
	e.clock.Add(e.board.MinInterval / 2)
	e.board.Report(context.Background())
	if calls := total(e.fake.CallCounts()); calls != 0 {
		t.Errorf("second page load within MinInterval made %d API calls, want 0: %v", calls, e.fake.CallCounts())
	}
	e.clock.Add(e.board.MinInterval)
	e.board.Report(context.Background())
	if calls := e.fake.Calls("GET /repos/{owner}/{repo}/branches/{branch}"); calls == 0 {
		t.Error("a page load past MinInterval did not read the branches again")
	}
}

// TestReportKeepsLastStateWhenGitHubIsDown: with every request failing, the page shows the state read
// before, when it was read, and why it could not be read again; the failure is among the errors.
func TestReportKeepsLastStateWhenGitHubIsDown(t *testing.T) {
	e := newEnv(t)
	before := e.board.Report(context.Background()).Repositories[0]
	e.fake.InjectFault(githubfake.Fault{Status: http.StatusServiceUnavailable})
	e.clock.Add(2 * e.board.MinInterval)
	rep := e.board.Report(context.Background())
	if len(rep.Repositories) != 1 {
		t.Fatalf("repositories = %d, want the one read before", len(rep.Repositories))
	}
	r := rep.Repositories[0]
	if r.ReadError == "" || !strings.Contains(r.ReadError, "503") {
		t.Errorf("read error = %q, want GitHub's 503", r.ReadError)
	}
	if !r.ReadAt.Equal(before.ReadAt) {
		t.Errorf("read at = %v, want the last successful read %v", r.ReadAt, before.ReadAt)
	}
	if diff := cmp.Diff(before.Pending, r.Pending); diff != "" {
		t.Errorf("pending removals changed while GitHub was down (-before +now):\n%s", diff)
	}
	if rep.ListError == "" {
		t.Error("the failed listing of repositories is not reported")
	}
	if len(r.Errors) == 0 || !strings.Contains(r.Errors[len(r.Errors)-1].Cause, "503") {
		t.Errorf("errors = %+v, want the failed read with its cause", r.Errors)
	}
}

// TestReportWaitsAtMostWait: a page load does not hang on a slow GitHub; it shows what it has.
func TestReportWaitsAtMostWait(t *testing.T) {
	e := newEnv(t)
	e.board.Wait = 50 * time.Millisecond
	e.fake.InjectFault(githubfake.Fault{Latency: 2 * time.Second})
	done := make(chan Report, 1)
	go func() { done <- e.board.Report(context.Background()) }()
	select {
	case rep := <-done:
		for _, r := range rep.Repositories {
			if !r.ReadAt.IsZero() {
				t.Errorf("%s read at %v before GitHub answered", r.FullName, r.ReadAt)
			}
		}
	case <-time.After(time.Minute):
		t.Fatal("Report waited for a slow GitHub instead of answering with what it had")
	}
}

// TestRecorder: errors are kept per repository with their cause, bounded; errors of unknown repositories
// are the App's.
func TestRecorder(t *testing.T) {
	e := newEnv(t)
	repo := &github.Repository{FullName: github.String(statustest.Owner + "/" + statustest.Name)}
	e.board.Changed(1, repo)
	for i := 0; i < maxErrors+5; i++ {
		e.board.Failed(statustest.Owner+"/"+statustest.Name, "pull_request", io.ErrUnexpectedEOF)
	}
	e.board.Failed("other/repo", "issue_comment", io.EOF)
	e.board.Failed("", "ignored", nil)
	rep := e.board.snapshot()
	if len(rep.Repositories) != 1 || len(rep.Repositories[0].Errors) != maxErrors {
		t.Fatalf("repository errors = %+v, want %d kept", rep.Repositories, maxErrors)
	}
	if got := rep.Repositories[0].Errors[0]; got.What != "pull_request" || got.Cause != io.ErrUnexpectedEOF.Error() {
		t.Errorf("error = %+v", got)
	}
	if len(rep.Errors) != 1 || rep.Errors[0].What != "other/repo: issue_comment" {
		t.Errorf("App errors = %+v, want the one of the unknown repository", rep.Errors)
	}
}

// TestPages: /status shows what a person needs (versions, channels, PR links) and /api/status the same
// report as JSON.
func TestPages(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	e.board.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	html := get(t, srv.URL+PagePath, "text/html")
	for _, want := range []string{
		statustest.Owner + "/" + statustest.Name,
		"apm@1.0.0</td><td>snapshot and staging</td><td>identical: removal from snapshot pending in <a href=\"" + e.fix.Repo.PullRequestURL(e.fix.RemovalPR) + "\">#",
		"nginx@2.0.0</td><td>staging and production</td><td class=\"failure\">drift",
		statustest.VerdictTitle,
		policyShort(e.fix.Repo.BranchSHA("production")),
	} {
		if !strings.Contains(html, want) {
			t.Errorf("/status lacks %q", want)
		}
	}
	var rep Report
	if err := json.Unmarshal([]byte(get(t, srv.URL+APIPath, "application/json")), &rep); err != nil {
		t.Fatalf("/api/status is not JSON: %v", err)
	}
	if len(rep.Repositories) != 1 || len(rep.Repositories[0].Pending) != 1 || len(rep.Repositories[0].Drift) != 1 {
		t.Errorf("/api/status = %+v, want the repository with one pending removal and one drift", rep)
	}
}

func get(t *testing.T, url, contentType string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), contentType) {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(body)
}

func policyShort(sha string) string { return sha[:7] }

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
