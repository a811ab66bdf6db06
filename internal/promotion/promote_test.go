package promotion

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
)

func TestPromoteCopiesByReference(t *testing.T) {
	tests := []struct {
		name     string
		files    int
		target   string
		maxCalls int
	}{
		// Version lists come from git trees (the contents API stops at 1,000 entries): a channel's root and
		// packages/ trees are read once, by SHA, then cached; each package costs one tree read.
		{name: "small package, explicit target", files: 3, target: "staging", maxCalls: 11},
		{name: "700-file package, explicit target", files: 700, target: "staging", maxCalls: 11},
		{name: "700-file package, default target", files: 700, target: "", maxCalls: 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "snapshot", tc.files, "", "foo@1.2.3")
			src := e.treeAt(t, "snapshot", "foo@1.2.3")
			e.fake.ResetCalls()

			res, err := e.svc.Promote(context.Background(), e.r, PromoteRequest{Versions: refs("foo@1.2.3"), Target: tc.target, RequestedBy: "alice", FromPR: 7})
			if err != nil {
				t.Fatalf("Promote: %v", err)
			}
			calls := e.apiCalls()
			t.Logf("API calls: %d (%v)", calls, e.fake.CallCounts())
			if n := e.fake.Calls("POST /repos/{owner}/{repo}/git/blobs"); n != 0 {
				t.Errorf("uploaded %d blobs, want none (copy by reference)", n)
			}
			if calls > tc.maxCalls {
				t.Errorf("%d API calls, want at most %d", calls, tc.maxCalls)
			}
			if len(res.Refusals) != 0 {
				t.Fatalf("refused: %v", res.Refusals)
			}
			want := PromoteResult{
				PR:       PRRef{Number: res.PR.Number, URL: res.PR.URL, Branch: "storagebot/promote/staging/foo-1.2.3"},
				Target:   "staging",
				Source:   "snapshot",
				Versions: []Planned{{Version: refs("foo@1.2.3")[0], Source: "snapshot", Tree: src}},
			}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			pr := e.repo.PullRequest(res.PR.Number)
			if pr.Title != "[staging] Promote foo@1.2.3 from snapshot" || pr.Base != "staging" {
				t.Errorf("PR title %q base %q", pr.Title, pr.Base)
			}
			if got := e.treeAt(t, pr.HeadSHA, "foo@1.2.3"); got != src {
				t.Errorf("promoted tree = %s, want the snapshot tree %s", got, src)
			}
			m, ok := ParseMarker(context.Background(), &github.PullRequest{Body: &pr.Body}, MarkerKey(testSeal, e.repo.FullName()))
			if !ok || m.Commit != pr.HeadSHA || !strings.Contains(pr.Body, src) || !strings.Contains(pr.Body, "@alice in #7") {
				t.Errorf("PR body lacks the marker, source tree or requester:\n%s", pr.Body)
			}
		})
	}
}

func TestPromoteIsIdempotent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "snapshot", 5, "", "foo@1.2.3", "bar@2.0.0")
	req := PromoteRequest{Versions: refs("foo@1.2.3", "bar@2.0.0"), Target: "staging"}
	first, err := e.svc.Promote(ctx, e.r, req)
	if err != nil {
		t.Fatalf("first Promote: %v", err)
	}
	for i, svc := range []*Service{e.svc, {Seal: testSeal}} { // the same process, then a fresh one (a restart or another replica)
		repo := e.r
		if i > 0 {
			repo = e.restarted()
		}
		again, err := svc.Promote(ctx, repo, PromoteRequest{Versions: refs("bar@2.0.0", "foo@1.2.3", "foo@1.2.3"), Target: "staging"})
		if err != nil {
			t.Fatalf("repeated Promote: %v", err)
		}
		if diff := cmp.Diff(first.PR, again.PR); diff != "" || !again.Reused {
			t.Errorf("repeat: reused=%v PR (-first +again):\n%s", again.Reused, diff)
		}
		if diff := cmp.Diff(first.Versions, again.Versions); diff != "" {
			t.Errorf("repeat versions (-first +again):\n%s", diff)
		}
	}
	if got := e.prsFrom(PromoteBranchPrefix); len(got) != 1 || got[0].Head != "storagebot/promote/staging/bar-2.0.0_foo-1.2.3" {
		t.Errorf("promotion PRs = %+v, want one from storagebot/promote/staging/bar-2.0.0_foo-1.2.3", got)
	}
}

func TestPromoteRetryAfterCrashBeforePR(t *testing.T) {
	tests := []struct {
		name  string
		fault githubfake.Fault
	}{
		{name: "PR creation fails with 502", fault: githubfake.Fault{Route: "POST /repos/{owner}/{repo}/pulls", Status: 502, Times: 1}},
		{name: "PR opened but the response is lost", fault: githubfake.Fault{Route: "POST /repos/{owner}/{repo}/pulls", DropResponse: true, Times: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			e.put(t, "snapshot", 3, "", "foo@1.2.3")
			e.fake.InjectFault(tc.fault)
			req := PromoteRequest{Versions: refs("foo@1.2.3"), Target: "staging"}
			if _, err := e.svc.Promote(ctx, e.r, req); err == nil {
				t.Fatal("Promote succeeded through the fault, want an error")
			}
			res, err := (&Service{Seal: testSeal}).Promote(ctx, e.restarted(), req)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			prs := e.prsFrom(PromoteBranchPrefix)
			if len(prs) != 1 || prs[0].Number != res.PR.Number {
				t.Fatalf("promotion PRs = %+v, want exactly the one returned (#%d)", prs, res.PR.Number)
			}
			if got, want := e.treeAt(t, prs[0].HeadSHA, "foo@1.2.3"), e.treeAt(t, "snapshot", "foo@1.2.3"); got != want {
				t.Errorf("PR head tree for foo@1.2.3 = %s, want %s", got, want)
			}
			if m, ok := ParseMarker(context.Background(), &github.PullRequest{Body: &prs[0].Body}, MarkerKey(testSeal, e.repo.FullName())); !ok || m.Commit != prs[0].HeadSHA {
				t.Errorf("marker commit does not match the head %s: %s", prs[0].HeadSHA, prs[0].Body)
			}
		})
	}
}

func TestPromoteRefusals(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, e *env)
		versions []string
		target   string
		// want is a fragment every refusal reason must contain, per refused version; nil means no refusal.
		want map[string]string
	}{
		{
			name:     "in no channel at all",
			versions: []string{"foo@9.9.9"},
			want:     map[string]string{"foo@9.9.9": "is in no channel"},
		},
		{
			name:     "in no channel below the target",
			setup:    func(t *testing.T, e *env) { e.put(t, "production", 2, "", "foo@1.0.0") },
			versions: []string{"foo@1.2.3"}, target: "staging",
			want: map[string]string{"foo@1.2.3": "promotion-source: foo@1.2.3 is in no channel below staging"},
		},
		{
			name: "already identical in the target",
			setup: func(t *testing.T, e *env) {
				e.put(t, "snapshot", 2, "", "foo@1.2.3")
				e.put(t, "staging", 2, "", "foo@1.2.3")
			},
			versions: []string{"foo@1.2.3"}, target: "staging",
			want: map[string]string{"foo@1.2.3": "already promoted: staging (branch `staging`) holds an identical copy"},
		},
		{
			name: "different in the target",
			setup: func(t *testing.T, e *env) {
				e.put(t, "snapshot", 2, "edited", "foo@1.2.3")
				e.put(t, "staging", 2, "", "foo@1.2.3")
			},
			versions: []string{"foo@1.2.3"}, target: "staging",
			want: map[string]string{"foo@1.2.3": "overwrite: staging already holds a different foo@1.2.3"},
		},
		{
			name: "production version-order on the same line",
			setup: func(t *testing.T, e *env) {
				e.put(t, "production", 2, "", "foo@8.0.9", "foo@8.1.0")
				e.put(t, "staging", 2, "", "foo@8.0.5")
			},
			versions: []string{"foo@8.0.5"}, target: "production",
			want: map[string]string{"foo@8.0.5": "version-order: production has foo@8.0.9 on the same major.minor line"},
		},
		{
			name: "production backport on its own line is allowed",
			setup: func(t *testing.T, e *env) {
				e.put(t, "production", 2, "", "foo@8.0.9", "foo@8.1.0", "foo@7.17.8")
				e.put(t, "staging", 2, "", "foo@7.17.9")
			},
			versions: []string{"foo@7.17.9"}, target: "production",
		},
		{
			name:     "unknown channel",
			setup:    func(t *testing.T, e *env) { e.put(t, "snapshot", 2, "", "foo@1.2.3") },
			versions: []string{"foo@1.2.3"}, target: "qa",
			want: map[string]string{"foo@1.2.3": `unknown channel "qa": promote to one of staging, production`},
		},
		{
			name:     "lowest channel",
			setup:    func(t *testing.T, e *env) { e.put(t, "snapshot", 2, "", "foo@1.2.3") },
			versions: []string{"foo@1.2.3"}, target: "snapshot",
			want: map[string]string{"foo@1.2.3": "snapshot is the lowest channel"},
		},
		{
			name: "one bad version refuses the whole request",
			setup: func(t *testing.T, e *env) {
				e.put(t, "snapshot", 2, "", "foo@1.2.3", "bar@1.0.0")
				e.put(t, "staging", 2, "", "bar@1.0.0")
			},
			versions: []string{"foo@1.2.3", "bar@1.0.0"}, target: "staging",
			want: map[string]string{"bar@1.0.0": "already promoted"},
		},
		{
			name: "default targets differ",
			setup: func(t *testing.T, e *env) {
				e.put(t, "snapshot", 2, "", "foo@1.2.3")
				e.put(t, "staging", 2, "", "bar@1.0.0")
			},
			versions: []string{"foo@1.2.3", "bar@1.0.0"},
			want: map[string]string{
				"foo@1.2.3": "different channels (bar@1.0.0 → production, foo@1.2.3 → staging)",
				"bar@1.0.0": "different channels (bar@1.0.0 → production, foo@1.2.3 → staging)",
			},
		},
		{
			name:     "already in the highest channel",
			setup:    func(t *testing.T, e *env) { e.put(t, "production", 2, "", "foo@1.2.3") },
			versions: []string{"foo@1.2.3"},
			want:     map[string]string{"foo@1.2.3": "already in production, the highest channel"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			before := e.fake.CallCounts()
			res, err := e.svc.Promote(context.Background(), e.r, PromoteRequest{Versions: refs(tc.versions...), Target: tc.target})
			if err != nil {
				t.Fatalf("Promote: %v", err)
			}
			got := map[string]string{}
			for _, r := range res.Refusals {
				got[r.Version.String()] = r.Reason
			}
			wantKeys, gotKeys := keys(tc.want), keys(got)
			if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
				t.Fatalf("refused versions (-want +got):\n%s\nreasons: %v", diff, got)
			}
			for v, frag := range tc.want {
				if !strings.Contains(got[v], frag) {
					t.Errorf("refusal of %s = %q, want it to contain %q", v, got[v], frag)
				}
			}
			writes := 0
			for route, n := range e.fake.CallCounts() {
				if strings.HasPrefix(route, "POST /repos/") || strings.HasPrefix(route, "PATCH ") {
					writes += n - before[route]
				}
			}
			switch {
			case len(tc.want) > 0 && writes != 0:
				t.Errorf("%d writes despite a refusal, want none", writes)
			case len(tc.want) == 0 && res.PR.Number == 0:
				t.Errorf("no PR opened for an allowed promotion")
			}
		})
	}
}

func keys(m map[string]string) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}
