package githubfake

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
)

const getRepoRoute = "GET /repos/{owner}/{repo}"

func TestFaults(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		fault      Fault
		wantStatus int
		retryAfter string
		minLatency time.Duration
	}{
		{"secondary rate limit", Fault{Route: getRepoRoute, Status: http.StatusForbidden, RetryAfter: "7", Times: 1}, http.StatusForbidden, "7", 0},
		{"server error", Fault{Route: getRepoRoute, Status: http.StatusBadGateway, Times: 1}, http.StatusBadGateway, "", 0},
		{"latency", Fault{Route: getRepoRoute, Latency: 50 * time.Millisecond, Times: 1}, http.StatusOK, "", 50 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newFake(t)
			gh := newClient(t, s, s.PrivateKeyPEM())
			s.InjectFault(tc.fault)
			start := time.Now()
			_, resp, err := gh.Repositories.Get(ctx, "storage-org", "package-storage")
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("status %d Retry-After %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), tc.wantStatus, tc.retryAfter)
			}
			if resp.Header.Get("X-RateLimit-Remaining") == "" {
				t.Errorf("fault answer lacks rate-limit headers")
			}
			if d := time.Since(start); d < tc.minLatency {
				t.Errorf("answered after %v, want at least %v", d, tc.minLatency)
			}
			if tc.fault.RetryAfter != "" {
				var rl *github.AbuseRateLimitError
				if !asError(err, &rl) {
					t.Errorf("error %T %v, want go-github to see a secondary rate limit", err, err)
				}
			}
			// A fresh client: go-github rightly refuses calls until a rate limit's Retry-After passes.
			gh = newClient(t, s, s.PrivateKeyPEM())
			if _, _, err := gh.Repositories.Get(ctx, "storage-org", "package-storage"); err != nil {
				t.Errorf("second call after a Times:1 fault: %v", err)
			}
			if got := s.Calls(getRepoRoute); got != 2 {
				t.Errorf("Calls(%q) = %d, want 2", getRepoRoute, got)
			}
		})
	}
}

func asError(err error, target **github.AbuseRateLimitError) bool {
	e, ok := err.(*github.AbuseRateLimitError)
	if ok {
		*target = e
	}
	return ok
}

func TestDropResponseAppliesTheWrite(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	route := "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
	number := repo.OpenIssue("x", "", "alice")
	s.InjectFault(Fault{Route: route, DropResponse: true, Times: 1})
	if _, _, err := gh.Issues.CreateComment(ctx, "storage-org", "package-storage", number, &github.IssueComment{Body: github.String("hi")}); err == nil {
		t.Fatal("comment succeeded, want a dropped connection")
	}
	if got := len(repo.IssueComments(number)); got != 1 {
		t.Fatalf("%d comments stored, want 1: the write applies before the drop", got)
	}
	s.InjectFault(Fault{Route: route, DropResponse: true, Status: http.StatusInternalServerError, Times: 1})
	_, resp, _ := gh.Issues.CreateComment(ctx, "storage-org", "package-storage", number, &github.IssueComment{Body: github.String("again")})
	if resp == nil || resp.StatusCode != http.StatusInternalServerError || len(repo.IssueComments(number)) != 2 {
		t.Fatalf("second drop: response %v, %d comments, want 500 and 2 comments", resp, len(repo.IssueComments(number)))
	}
}

// TestLateWrites: a write whose answer is lost lands later — after the answer (ApplyAfter), or after the
// client gave up waiting (Latency past its deadline) — and only reads from then on show it.
func TestLateWrites(t *testing.T) {
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	route := "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
	number := repo.OpenIssue("x", "", "alice")
	waitComments := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(repo.IssueComments(number)) != want || s.LateWrites() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d comments, %d late writes pending after 30s, want %d and none", len(repo.IssueComments(number)), s.LateWrites(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	s.InjectFault(Fault{Route: route, DropResponse: true, Status: http.StatusBadGateway, ApplyAfter: 300 * time.Millisecond, Times: 1})
	_, resp, err := gh.Issues.CreateComment(context.Background(), "storage-org", "package-storage", number, &github.IssueComment{Body: github.String("late")})
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("comment answered %v (%v), want 502", resp, err)
	}
	// The answer came before the write: at most the one pending write may be missing, never an extra one.
	if got := len(repo.IssueComments(number)); got > 1 {
		t.Fatalf("%d comments stored, want at most 1", got)
	}
	waitComments(1)

	s.InjectFault(Fault{Route: route, Latency: 300 * time.Millisecond, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := gh.Issues.CreateComment(ctx, "storage-org", "package-storage", number, &github.IssueComment{Body: github.String("slow")}); err == nil {
		t.Fatal("comment answered within 50ms, want the client's deadline to pass")
	}
	waitComments(2)

	for _, f := range []Fault{{ApplyAfter: time.Second}, {DropResponse: true, ApplyAfter: ProcessingLimit + time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("InjectFault(%+v) accepted a fault GitHub cannot produce", f)
				}
			}()
			s.InjectFault(f)
		}()
	}
}

func TestConditionalRequests(t *testing.T) {
	s, _ := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	ctx := context.Background()
	req, err := gh.NewRequest(http.MethodGet, "repos/storage-org/package-storage/git/ref/heads/snapshot", nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	resp, err := gh.Do(ctx, req, nil)
	if err != nil {
		t.Fatalf("first GET: %v", err)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") == "" {
		t.Fatalf("headers %v, want ETag and Cache-Control", resp.Header)
	}
	req.Header.Set("If-None-Match", etag)
	resp, err = gh.Do(ctx, req, nil)
	if resp == nil || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %v (%v), want 304", resp, err)
	}
	route := "GET /repos/{owner}/{repo}/git/ref/{ref:.+}"
	if got, want := []int{s.Calls(route), s.NotModified(route)}, []int{2, 1}; !cmp.Equal(got, want) {
		t.Errorf("calls, 304s = %v, want %v", got, want)
	}
	if _, err := gh.Do(ctx, mustRequest(t, gh, "repos/storage-org/package-storage/releases"), nil); err == nil {
		t.Errorf("unknown route answered, want 404")
	}
	if got := s.Calls("UNKNOWN GET /repos/storage-org/package-storage/releases"); got != 1 {
		t.Errorf("unknown route counted %d times, want 1", got)
	}
	s.ResetCalls()
	if got := len(s.CallCounts()); got != 0 {
		t.Errorf("%d counters after ResetCalls, want 0", got)
	}
}

func mustRequest(t *testing.T, gh *github.Client, path string) *http.Request {
	t.Helper()
	req, err := gh.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	return req
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		baseChange  map[string]*File
		wantParents int
		wantErr     bool
	}{
		{"merge commit", "merge", map[string]*File{"packages/b/1.0.0/manifest.yml": {Content: []byte("b")}}, 2, false},
		{"squash", "squash", nil, 1, false},
		{"conflict", "merge", map[string]*File{"packages/a/1.0.0/manifest.yml": {Content: []byte("other")}}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, repo := newFake(t)
			if _, err := repo.Commit("add-a", "Add a", map[string]*File{"packages/a/1.0.0/manifest.yml": {Content: []byte("a")}}); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if tc.baseChange != nil {
				if _, err := repo.Commit("snapshot", "base moves", tc.baseChange); err != nil {
					t.Fatalf("commit on base: %v", err)
				}
			}
			pr, err := repo.OpenPullRequest(PROptions{Head: "add-a", Base: "snapshot", Title: "Add a", User: "alice"})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			before := len(s.Deliveries())
			sha, err := repo.MergePullRequest(pr.Number, tc.method)
			if tc.wantErr {
				if err == nil {
					t.Fatal("merge succeeded, want a conflict")
				}
				return
			}
			if err != nil {
				t.Fatalf("merge: %v", err)
			}
			if got := repo.BranchSHA("snapshot"); got != sha {
				t.Errorf("base head %s, want merge commit %s", got, sha)
			}
			if data, err := repo.ReadFile("snapshot", "packages/a/1.0.0/manifest.yml"); err != nil || string(data) != "a" {
				t.Errorf("merged file = %q (%v)", data, err)
			}
			commit, err := repo.commitAt(sha)
			if err != nil || len(commit.ParentHashes) != tc.wantParents {
				t.Errorf("merge commit parents = %v (%v), want %d", commit, err, tc.wantParents)
			}
			ds := s.Deliveries()[before:]
			if diff := cmp.Diff([]string{"push", "pull_request.closed"}, deliveryKinds(ds)); diff != "" {
				t.Fatalf("deliveries (-want +got):\n%s", diff)
			}
			var closed github.PullRequestEvent
			if err := json.Unmarshal(ds[1].Body, &closed); err != nil {
				t.Fatalf("decode closed event: %v", err)
			}
			if !closed.GetPullRequest().GetMerged() || closed.GetPullRequest().GetMergeCommitSHA() != sha {
				t.Errorf("closed event merged=%v merge_commit_sha=%s, want true %s", closed.GetPullRequest().GetMerged(), closed.GetPullRequest().GetMergeCommitSHA(), sha)
			}
			if got := repo.PullRequest(pr.Number); !got.Merged || got.State != "closed" {
				t.Errorf("PR snapshot %+v, want merged and closed", got)
			}
		})
	}
}

// TestRateLimitFaultsHold: a rate-limit fault answers like GitHub and, like GitHub's limits, keeps refusing
// every installation request — any route, whatever Times says — until it ends, counting the requests that
// arrived meanwhile; the App's own routes (token minting) are not affected.
func TestRateLimitFaultsHold(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name           string
		fault          Fault
		wantStatus     int
		wantRemaining  string // X-RateLimit-Remaining of the refusal
		wantRetryAfter string
		wantMessage    string
		wantHoldsFor   time.Duration // roughly; 0 = do not wait for the end
	}{
		{"primary 403", Fault{Route: getRepoRoute, RateLimit: PrimaryLimit, ResetIn: 1500 * time.Millisecond, Times: 1}, 403, "0", "", "API rate limit exceeded", 1500 * time.Millisecond},
		{"primary 429", Fault{Route: getRepoRoute, RateLimit: PrimaryLimit, Status: 429, ResetIn: time.Hour, Times: 1}, 429, "0", "", "API rate limit exceeded", 0},
		{"secondary without Retry-After", Fault{Route: getRepoRoute, RateLimit: SecondaryLimit, Times: 1}, 403, "", "", "secondary rate limit", 0},
		{"secondary with Retry-After", Fault{Route: getRepoRoute, RateLimit: SecondaryLimit, RetryAfter: "1", Times: 1}, 403, "", "1", "secondary rate limit", time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newFake(t)
			s.SetTokenLifetime(30 * time.Second) // a new token per request: token minting must keep working
			s.InjectFault(tc.fault)
			start := time.Now()
			check := func(what string, resp *github.Response, err error) {
				t.Helper()
				if resp == nil || resp.StatusCode != tc.wantStatus {
					t.Fatalf("%s: %v (%v), want %d", what, resp, err, tc.wantStatus)
				}
				h := resp.Header
				if tc.wantRemaining != "" && h.Get("X-RateLimit-Remaining") != tc.wantRemaining {
					t.Errorf("%s: X-RateLimit-Remaining %q, want %q", what, h.Get("X-RateLimit-Remaining"), tc.wantRemaining)
				}
				if h.Get("X-RateLimit-Limit") == "" || h.Get("X-RateLimit-Reset") == "" || h.Get("X-RateLimit-Remaining") == "" {
					t.Errorf("%s: rate-limit headers %v, want all three", what, h)
				}
				if h.Get("Retry-After") != tc.wantRetryAfter {
					t.Errorf("%s: Retry-After %q, want %q", what, h.Get("Retry-After"), tc.wantRetryAfter)
				}
				if !strings.Contains(err.Error(), tc.wantMessage) {
					t.Errorf("%s: error %q, want it to say %q", what, err, tc.wantMessage)
				}
			}
			// Fresh clients: go-github itself refuses calls locally after some of these answers.
			_, resp, err := newClient(t, s, s.PrivateKeyPEM()).Repositories.Get(ctx, "storage-org", "package-storage")
			check("first request", resp, err)
			if tc.fault.RateLimit == PrimaryLimit {
				reset, _ := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
				if want := start.Add(tc.fault.ResetIn).Unix(); reset < want-1 || reset > want+1 {
					t.Errorf("X-RateLimit-Reset %d, want about %d", reset, want)
				}
			}
			_, resp, err = newClient(t, s, s.PrivateKeyPEM()).Repositories.ListBranches(ctx, "storage-org", "package-storage", nil)
			check("another route while the limit holds", resp, err)
			if got := s.RequestsWhileLimited(); got != 1 {
				t.Errorf("RequestsWhileLimited = %d, want 1", got)
			}
			if tc.wantHoldsFor == 0 {
				return
			}
			// The limit holds from the first refused request, which a loaded machine may send well after start:
			// wait for it to end on a condition with a deadline, not on the clock alone.
			time.Sleep(time.Until(start.Add(tc.wantHoldsFor + 100*time.Millisecond)))
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, _, err := newClient(t, s, s.PrivateKeyPEM()).Repositories.Get(ctx, "storage-org", "package-storage")
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the limit ended: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestTokenRotationChangesETags: GitHub binds an ETag to the request's Accept and Authorization headers, so
// after a token rotation the ETag received under the old token is answered 200, and the new one 304.
func TestTokenRotationChangesETags(t *testing.T) {
	ctx := context.Background()
	s, _ := newFake(t)
	s.SetTokenLifetime(30 * time.Second)
	gh := newClient(t, s, s.PrivateKeyPEM())
	req := mustRequest(t, gh, "repos/storage-org/package-storage/git/ref/heads/snapshot")
	first, err := gh.Do(ctx, req, nil)
	if err != nil {
		t.Fatalf("first GET: %v", err)
	}
	req = mustRequest(t, gh, "repos/storage-org/package-storage/git/ref/heads/snapshot")
	req.Header.Set("If-None-Match", first.Header.Get("ETag"))
	second, err := gh.Do(ctx, req, nil)
	if err != nil || second.StatusCode != http.StatusOK {
		t.Fatalf("revalidation with the previous token's ETag: %v (%v), want 200", second, err)
	}
	if second.Header.Get("ETag") == first.Header.Get("ETag") {
		t.Errorf("same ETag %s under two tokens, want GitHub's token-bound ETags", first.Header.Get("ETag"))
	}
	if got := s.TokensIssued(); got != 2 {
		t.Errorf("TokensIssued = %d, want 2 (one per request)", got)
	}
}
