package dashboard

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/status"
	"github.com/storagebot/storagebot/internal/status/statustest"
	"github.com/storagebot/storagebot/internal/storage"
)

const (
	listRoute   = "GET /repos/{owner}/{repo}/issues"
	createRoute = "POST /repos/{owner}/{repo}/issues"
	editRoute   = "PATCH /repos/{owner}/{repo}/issues/{issue_number}"
)

var testSeal = func() seal.Key {
	k, err := seal.New([]byte("dashboard test key"))
	if err != nil {
		panic(err)
	}
	return k
}()

type env struct {
	fake   *githubfake.Server
	fix    *statustest.Fixture
	client *github.Client
	repo   *github.Repository
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := statustest.Start(t, statustest.FixedKey(testSeal))
	repo, _, err := st.Client.Repositories.Get(context.Background(), statustest.Owner, statustest.Name)
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: st.Fake, fix: st.Fixture, client: st.Client, repo: repo}
}

// updater is one replica: its own board, cache and clock, sharing only GitHub and the App key.
func (e *env) updater(t *testing.T) *Updater {
	t.Helper()
	cache := storage.NewObjectCache(0)
	board := status.NewBoard(func(context.Context) ([]int64, error) { return []int64{e.fake.InstallationID()}, nil },
		func(int64) (status.GitHub, error) { return githubapi.New(e.client, cache), nil },
		&promotion.Service{Cache: cache, Seal: testSeal, AppID: e.fake.AppID()}, &prcheck.Service{Cache: cache, Seal: testSeal, AppID: e.fake.AppID()})
	u := &Updater{
		Board: board, Seal: testSeal, StatusURL: "https://storagebot.example/status",
		GitHub:   func(int64) (GitHub, error) { return Client{GH: e.client}, nil },
		BotLogin: func(context.Context) (string, error) { return "storagebot[bot]", nil },
		Debounce: 20 * time.Millisecond,
	}
	u.Start(context.Background())
	t.Cleanup(u.Close)
	return u
}

func (e *env) dashboards() (open, closed []githubfake.Issue) {
	for _, is := range e.fix.Repo.Issues() {
		if is.Title != Title {
			continue
		}
		if is.State == "open" {
			open = append(open, is)
		} else {
			closed = append(closed, is)
		}
	}
	return open, closed
}

// TestSyncCreatesThenEditsOnlyOnChange: the first update creates the labelled issue with the facts and
// links; an update with nothing changed writes nothing, also from a restarted process (found again by its
// marker); a change edits the same issue in place.
func TestSyncCreatesThenEditsOnlyOnChange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.updater(t).Sync(ctx, e.fake.InstallationID(), e.repo); err != nil {
		t.Fatal(err)
	}
	open, _ := e.dashboards()
	if len(open) != 1 {
		t.Fatalf("open dashboards = %d, want 1", len(open))
	}
	d := open[0]
	if d.User != "storagebot[bot]" || len(d.Labels) != 1 || d.Labels[0] != Label {
		t.Errorf("dashboard by %s labelled %v, want the bot's, labelled %s", d.User, d.Labels, Label)
	}
	for _, want := range []string{
		"| apm@1.0.0 | snapshot and staging | identical: removal from snapshot pending in [#" + itoa(e.fix.RemovalPR) + "](" + e.fix.Repo.PullRequestURL(e.fix.RemovalPR) + ") |",
		"| nginx@2.0.0 | staging and production | **drift**",
		"[#" + itoa(e.fix.PromotionPR) + "](" + e.fix.Repo.PullRequestURL(e.fix.PromotionPR) + ") [production] Promote apm@1.0.0 from staging | promotion | production | apm@1.0.0 |",
		statustest.VerdictTitle,
		"https://storagebot.example/status",
	} {
		if !strings.Contains(d.Body, want) {
			t.Errorf("dashboard body lacks %q:\n%s", want, d.Body)
		}
	}

	e.fake.ResetCalls()
	if err := e.updater(t).Sync(ctx, e.fake.InstallationID(), e.repo); err != nil { // a restarted replica
		t.Fatal(err)
	}
	if n := e.fake.Calls(createRoute) + e.fake.Calls(editRoute); n != 0 {
		t.Errorf("an update with nothing changed wrote %d times, want 0", n)
	}

	if _, err := e.fix.Repo.Commit("snapshot", "zeek", map[string]*githubfake.File{"packages/zeek/0.2.0/manifest.yml": {Content: []byte("name: zeek\nversion: 0.2.0\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := e.updater(t).Sync(ctx, e.fake.InstallationID(), e.repo); err != nil {
		t.Fatal(err)
	}
	open, _ = e.dashboards()
	if len(open) != 1 || open[0].Number != d.Number || open[0].Body == d.Body {
		t.Errorf("after a change: dashboards %+v, want #%d edited in place", open, d.Number)
	}
	if n := e.fake.Calls(createRoute); n != 0 {
		t.Errorf("a change created %d issues, want the existing one edited", n)
	}
}

// TestTwoReplicasOneDashboard: two replicas that both look before either creates each create an issue;
// both look again, and exactly one stays open, the older; the newer is closed and no longer a dashboard.
func TestTwoReplicasOneDashboard(t *testing.T) {
	e := newEnv(t)
	a, b := e.updater(t), e.updater(t)
	// Each replica's first listing returns only once both have listed, so both see no dashboard before either
	// creates one: the race, every time.
	var listed sync.WaitGroup
	listed.Add(2)
	for _, u := range []*Updater{a, b} {
		var once sync.Once
		u.GitHub = func(int64) (GitHub, error) {
			return barrier{GitHub: Client{GH: e.client}, first: func() { once.Do(func() { listed.Done(); listed.Wait() }) }}, nil
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, u := range []*Updater{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = u.Sync(context.Background(), e.fake.InstallationID(), e.repo)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.Calls(createRoute); n != 2 {
		t.Fatalf("issues created = %d, want 2 (the race did not happen)", n)
	}
	open, closed := e.dashboards()
	if len(open) != 1 || len(closed) != 1 || open[0].Number > closed[0].Number {
		t.Fatalf("open %+v closed %+v, want the older open and the newer closed", open, closed)
	}
	if strings.Contains(closed[0].Body, "storagebot:dashboard") || !strings.Contains(closed[0].Body, "#"+itoa(open[0].Number)) {
		t.Errorf("closed duplicate's body = %q, want no marker and a pointer to #%d", closed[0].Body, open[0].Number)
	}
	// Later updates, from either replica, keep to the one left.
	for _, u := range []*Updater{a, b} {
		if err := u.Sync(context.Background(), e.fake.InstallationID(), e.repo); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.Calls(createRoute); n != 2 {
		t.Errorf("issues created after the race = %d, want none more", n-2)
	}
}

// TestTamperedAndForged: a body edited by a maintainer is rewritten; an issue by someone else holding a copy
// of the body and label is no dashboard; an edited marker makes the issue count for nothing.
func TestTamperedAndForged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.updater(t)
	if err := u.Sync(ctx, e.fake.InstallationID(), e.repo); err != nil {
		t.Fatal(err)
	}
	open, _ := e.dashboards()
	orig := open[0]
	e.fix.Repo.SetPermission("maintainer", "maintain")

	// A maintainer edits the facts: the next update restores them.
	if err := e.fix.Repo.EditIssueBody(orig.Number, "maintainer", strings.Replace(orig.Body, "drift", "fine", 1)); err != nil {
		t.Fatal(err)
	}
	if err := u.Sync(ctx, e.fake.InstallationID(), e.repo); err != nil {
		t.Fatal(err)
	}
	if got := issue(e, orig.Number); got.Body != orig.Body {
		t.Errorf("edited dashboard not restored:\n%s", got.Body)
	}

	// A forged dashboard (someone else's issue with the copied body) is ignored, even though older ones would win.
	forged := e.fix.Repo.OpenIssue(Title, orig.Body, "maintainer")
	e.fake.ResetCalls()
	if err := u.Sync(ctx, e.fake.InstallationID(), e.repo); err != nil {
		t.Fatal(err)
	}
	if got := issue(e, forged); got.State != "open" || got.Body != orig.Body {
		t.Errorf("forged issue #%d was acted on: %+v", forged, got)
	}
	if n := e.fake.Calls(createRoute) + e.fake.Calls(editRoute); n != 0 {
		t.Errorf("forged issue caused %d writes, want 0", n)
	}

	// An edited marker: the issue counts for nothing, so a new dashboard is created.
	if err := e.fix.Repo.EditIssueBody(orig.Number, "maintainer", strings.Replace(orig.Body, `"repo":"`, `"repo": "`, 1)); err != nil {
		t.Fatal(err)
	}
	if err := u.Sync(ctx, e.fake.InstallationID(), e.repo); err != nil {
		t.Fatal(err)
	}
	open, _ = e.dashboards()
	var byBot []int
	for _, is := range open {
		if is.User == "storagebot[bot]" && is.Number != orig.Number {
			byBot = append(byBot, is.Number)
		}
	}
	if len(byBot) != 1 {
		t.Errorf("after the marker was edited: bot dashboards other than #%d = %v, want one new", orig.Number, byBot)
	}
}

// TestOptOut: dashboard: false in the configuration means no issue.
func TestOptOut(t *testing.T) {
	e := newEnv(t)
	if _, err := e.fix.Repo.Commit("snapshot", "config", map[string]*githubfake.File{".github/storagebot.yml": {Content: []byte("dashboard: false\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := e.updater(t).Sync(context.Background(), e.fake.InstallationID(), e.repo); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Calls(createRoute); n != 0 || len(e.fix.Repo.Issues()) != 0 {
		t.Errorf("opted-out repository got %d issues created", n)
	}
}

// TestDebounce: a burst of changes makes one update.
func TestDebounce(t *testing.T) {
	e := newEnv(t)
	u := e.updater(t)
	u.Debounce = 200 * time.Millisecond
	for range 10 {
		u.Changed(e.fake.InstallationID(), e.repo)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		u.mu.Lock()
		idle := len(u.pending) == 0
		u.mu.Unlock()
		if open, _ := e.dashboards(); len(open) == 1 && idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dashboard after a burst of changes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.fake.Calls(listRoute); n != 2 { // one update: look, create, look again
		t.Errorf("dashboard listings = %d, want 2 (one update for the burst)", n)
	}
}

// TestRenderFitsGitHubLimit: thousands of pending versions still give a body GitHub accepts, saying how
// many rows were left out.
func TestRenderFitsGitHubLimit(t *testing.T) {
	repo := status.Repository{FullName: "o/r", Storage: true, Dashboard: true}
	for i := range 5000 {
		repo.Pending = append(repo.Pending, status.Pending{Package: "package-with-a-long-name", Version: "1.0." + itoa(i), Lower: "snapshot", Higher: "staging",
			RemovalPR: &status.Link{Number: 7, URL: "https://github.com/o/r/pull/7"}})
	}
	repo.Errors = []status.ErrorEntry{{What: "pull_request", Cause: strings.Repeat("x", 100000)}}
	body := Render(testSeal, repo, "")
	if n := utf8.RuneCountInString(body); n > MaxBodyLength {
		t.Fatalf("body is %d characters, over GitHub's %d", n, MaxBodyLength)
	}
	if !strings.Contains(body, "more.") {
		t.Error("a shortened body does not say rows were left out")
	}
	if p := parseBody(testSeal, "o/r", body); !p.ok || p.edited {
		t.Errorf("the shortened body's marker: %+v, want it valid and unedited", p)
	}
	if p := parseBody(testSeal, "o/other", body); p.ok {
		t.Error("a marker of o/r verifies for o/other")
	}
}

func issue(e *env, n int) githubfake.Issue {
	for _, is := range e.fix.Repo.Issues() {
		if is.Number == n {
			return is
		}
	}
	return githubfake.Issue{}
}

func itoa(n int) string { return strconv.Itoa(n) }

// barrier calls first after each listing, before returning it.
type barrier struct {
	GitHub
	first func()
}

func (b barrier) LabelledIssues(ctx context.Context, owner, name, label string) ([]*github.Issue, error) {
	list, err := b.GitHub.LabelledIssues(ctx, owner, name, label)
	b.first()
	return list, err
}
