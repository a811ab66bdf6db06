package ghclient_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/testkit"
)

const refRoute = "GET /repos/{owner}/{repo}/git/ref/{ref:.+}"

func newFake(t *testing.T) (*githubfake.Server, *githubfake.Repo) {
	t.Helper()
	s := githubfake.New(githubfake.Options{Logf: t.Logf})
	t.Cleanup(s.Close)
	return s, s.CreateRepo("storage-org", "package-storage", "snapshot")
}

// TestCacheSurvivesTokenRotation measures revalidations across installation-token rotations: with tokens
// that live under a minute, ghinstallation fetches a new one for every request, and GitHub (and the fake)
// bind ETags to the token. Every revalidation must still be answered 304, and a changed branch must not be
// served stale.
func TestCacheSurvivesTokenRotation(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	s.SetTokenLifetime(30 * time.Second)
	gh := testkit.ServeClient(t, s, ghclient.Options{})
	const reads = 5
	for i := 0; i < reads; i++ {
		ref, _, err := gh.Git.GetRef(ctx, "storage-org", "package-storage", "heads/snapshot")
		if err != nil {
			t.Fatalf("read %d: %v", i+1, err)
		}
		if got, want := ref.GetObject().GetSHA(), repo.BranchSHA("snapshot"); got != want {
			t.Fatalf("read %d: sha %s, want %s", i+1, got, want)
		}
	}
	if got := s.TokensIssued(); got < reads {
		t.Fatalf("%d tokens minted for %d reads, want one per read: the test must rotate tokens", got, reads)
	}
	if got, want := s.NotModified(refRoute), reads-1; got != want {
		t.Errorf("revalidations answered 304 across token rotations = %d, want %d (of %d reads)", got, want, reads)
	}
	t.Logf("%d reads, %d tokens, %d answered 304", reads, s.TokensIssued(), s.NotModified(refRoute))

	sha, err := repo.Commit("snapshot", "move", map[string]*githubfake.File{"packages/a/1.0.0/manifest.yml": {Content: []byte("a")}})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	ref, _, err := gh.Git.GetRef(ctx, "storage-org", "package-storage", "heads/snapshot")
	if err != nil {
		t.Fatalf("read after commit: %v", err)
	}
	if ref.GetObject().GetSHA() != sha {
		t.Errorf("after a commit the cache served %s, want the new head %s", ref.GetObject().GetSHA(), sha)
	}
}

// TestCreateNotRepeatedAfter5xx: a POST whose answer is a 502 may have been applied (the fake applies it,
// then answers 502), so it is not sent again: one comment, and the caller gets the error.
func TestCreateNotRepeatedAfter5xx(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	number := repo.OpenIssue("x", "", "alice")
	gh := testkit.ServeClient(t, s, ghclient.Options{})
	s.InjectFault(githubfake.Fault{Route: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments", DropResponse: true, Status: http.StatusBadGateway, Times: 1})
	_, resp, err := gh.Issues.CreateComment(ctx, "storage-org", "package-storage", number, &github.IssueComment{Body: github.String("hi")})
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("CreateComment = %v (%v), want the 502", resp, err)
	}
	if got := len(repo.IssueComments(number)); got != 1 {
		t.Errorf("%d comments, want 1: the POST was sent again after a 502", got)
	}
}

// TestPrimaryLimitWaitsForReset: a 429 with x-ratelimit-remaining 0 is a primary limit; the client waits
// for x-ratelimit-reset (within its budget) and sends nothing before.
func TestPrimaryLimitWaitsForReset(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := testkit.ServeClient(t, s, ghclient.Options{})
	s.InjectFault(githubfake.Fault{Route: refRoute, RateLimit: githubfake.PrimaryLimit, Status: http.StatusTooManyRequests, ResetIn: 2 * time.Second, Times: 1})
	start := time.Now()
	ref, _, err := gh.Git.GetRef(ctx, "storage-org", "package-storage", "heads/snapshot")
	if err != nil {
		t.Fatalf("GetRef through a 2 s primary limit: %v", err)
	}
	if ref.GetObject().GetSHA() != repo.BranchSHA("snapshot") {
		t.Errorf("sha %s, want %s", ref.GetObject().GetSHA(), repo.BranchSHA("snapshot"))
	}
	if got := s.RequestsWhileLimited(); got != 0 {
		t.Errorf("%d requests sent while the limit held, want 0", got)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("answered after %v, want a wait until the reset", d)
	}
}

// TestSecondaryLimitPastBudget: a secondary limit without Retry-After asks for a minute; with a shorter
// budget the client fails at once with a *ghclient.RateLimitError, and a later call of the same installation
// is refused without being sent.
func TestSecondaryLimitPastBudget(t *testing.T) {
	ctx := context.Background()
	s, _ := newFake(t)
	policy := ghclient.DefaultRetryPolicy()
	policy.MaxWait = 5 * time.Second
	gh := testkit.ServeClient(t, s, ghclient.Options{Retry: policy})
	s.InjectFault(githubfake.Fault{Route: refRoute, RateLimit: githubfake.SecondaryLimit, Times: 1})
	start := time.Now()
	_, _, err := gh.Git.GetRef(ctx, "storage-org", "package-storage", "heads/snapshot")
	lim, ok := ghclient.AsRateLimit(err)
	if !ok {
		t.Fatalf("GetRef = %v, want a rate-limit error", err)
	}
	if lim.Kind != ghclient.SecondaryLimit || time.Until(lim.Until) < 50*time.Second {
		t.Errorf("limit %s until %v, want secondary for about a minute", lim.Kind, lim.Until)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v, want at once", d)
	}
	before := s.Calls("GET /repos/{owner}/{repo}")
	if _, _, err := gh.Repositories.Get(ctx, "storage-org", "package-storage"); err == nil {
		t.Error("a second call during the limit succeeded, want it refused")
	} else if _, ok := ghclient.AsRateLimit(err); !ok {
		t.Errorf("second call: %v, want a rate-limit error", err)
	}
	if got := s.Calls("GET /repos/{owner}/{repo}") - before; got != 0 {
		t.Errorf("second call sent %d requests during the limit, want 0", got)
	}
	if got := s.RequestsWhileLimited(); got != 0 {
		t.Errorf("%d requests sent while the limit held, want 0", got)
	}
}

// TestTokenFailureRetriedForWrites: when the installation token cannot be fetched (a 502 from the token
// endpoint) the request was never sent, so even a POST is retried — once the comment is posted.
func TestTokenFailureRetriedForWrites(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	number := repo.OpenIssue("x", "", "alice")
	var reasons []string
	gh := testkit.ServeClient(t, s, ghclient.Options{Observer: ghclient.Observer{Retry: func(r string) { reasons = append(reasons, r) }}})
	s.InjectFault(githubfake.Fault{Route: "POST /app/installations/{installation_id}/access_tokens", Status: http.StatusBadGateway, Times: 1})
	if _, _, err := gh.Issues.CreateComment(ctx, "storage-org", "package-storage", number, &github.IssueComment{Body: github.String("hi")}); err != nil {
		t.Fatalf("CreateComment after a failed token fetch: %v", err)
	}
	if got := len(repo.IssueComments(number)); got != 1 {
		t.Errorf("%d comments, want 1", got)
	}
	if len(reasons) != 1 || reasons[0] != "token" {
		t.Errorf("retries %v, want one for the token", reasons)
	}
}

// TestGraphQLBudgetIsItsOwn checks the GraphQL rate limit is tracked apart from REST's, as GitHub counts them:
// once an answer says the GraphQL points are spent, the next query is refused without being sent (resource
// "graphql"), and REST requests still go out.
func TestGraphQLBudgetIsItsOwn(t *testing.T) {
	ctx := context.Background()
	s, _ := newFake(t)
	gh := testkit.ServeClient(t, s, ghclient.Options{})
	query := map[string]string{"query": `query { repository(owner: "storage-org", name: "package-storage") { nameWithOwner } }`}
	send := func() (*github.Response, error) {
		req, err := gh.NewRequest(http.MethodPost, "graphql", query)
		if err != nil {
			t.Fatal(err)
		}
		return gh.Do(ctx, req, nil)
	}
	if _, err := send(); err != nil {
		t.Fatalf("first query: %v", err)
	}
	s.SetGraphQLPointsUsed(5000)
	resp, err := send()
	if err != nil {
		t.Fatalf("query past the budget: %v (GitHub answers it 200 with a RATE_LIMITED error)", err)
	}
	if got := resp.Header.Get("X-RateLimit-Resource") + " " + resp.Header.Get("X-RateLimit-Remaining"); got != "graphql 0" {
		t.Fatalf("rate-limit headers %q, want \"graphql 0\"", got)
	}
	before := s.Calls(githubfake.GraphQLRoute)
	_, err = send()
	rl, ok := ghclient.AsRateLimit(err)
	if !ok {
		t.Fatalf("query after the budget was reported spent: err %v, want a rate-limit error", err)
	}
	if rl.Resource != "graphql" || s.Calls(githubfake.GraphQLRoute) != before {
		t.Errorf("refusal %+v after %d more calls; want it refused locally, not sent", rl, s.Calls(githubfake.GraphQLRoute)-before)
	}
	if _, _, err := gh.Git.GetRef(ctx, "storage-org", "package-storage", "heads/snapshot"); err != nil {
		t.Errorf("REST request while the GraphQL budget is spent: %v; want it sent (a budget of its own)", err)
	}
}
