package promotion

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/seal"
)

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// foo@1.0.0 reached staging but its follow-up never ran; baz@1.0.0 reached production the same way;
	// bar@1.0.0 differs between snapshot and staging; qux@1.0.0 is only in snapshot.
	e.put(t, "snapshot", 3, "", "foo@1.0.0", "baz@1.0.0", "qux@1.0.0")
	e.put(t, "snapshot", 3, "snapshot edit", "bar@1.0.0")
	e.put(t, "staging", 3, "", "foo@1.0.0", "bar@1.0.0")
	e.put(t, "production", 3, "", "baz@1.0.0")

	res, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil {
		t.Fatalf("ReconcileRemovals: %v", err)
	}
	wantConflicts := []Conflict{{Version: commandparse.VersionRef{Package: "bar", Version: "1.0.0"}, Lower: "snapshot", Higher: "staging"}}
	if diff := cmp.Diff(wantConflicts, res.Conflicts, cmpopts.IgnoreFields(Conflict{}, "LowerTree", "HigherTree")); diff != "" {
		t.Errorf("conflicts (-want +got):\n%s", diff)
	}
	if len(res.Removals) != 1 || !res.Removals[0].Created {
		t.Fatalf("removals = %+v, want one created", res.Removals)
	}
	if diff := cmp.Diff(refs("baz@1.0.0", "foo@1.0.0"), res.Removals[0].Removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	prs := e.prsFrom(RemoveBranchPrefix)
	if len(prs) != 1 {
		t.Fatalf("removal PRs = %+v, want one", prs)
	}
	want := "[snapshot] Remove packages already in production and staging (baz@1.0.0, foo@1.0.0)"
	if prs[0].Title != want && prs[0].Title != strings.Replace(want, "production and staging", "staging and production", 1) {
		t.Errorf("title = %q, want %q", prs[0].Title, want)
	}
	if prs[0].Head != "storagebot/remove/snapshot/reconcile-baz-1.0.0_foo-1.0.0" {
		t.Errorf("branch = %q", prs[0].Head)
	}
	if diff := cmp.Diff([]string{RemovalLabel}, prs[0].Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	// A second pass (another replica, the next interval) finds the versions covered and opens nothing.
	again, err := (&Service{Seal: testSeal}).ReconcileRemovals(ctx, e.restarted())
	if err != nil {
		t.Fatalf("second ReconcileRemovals: %v", err)
	}
	if len(again.Removals) != 0 || len(e.prsFrom(RemoveBranchPrefix)) != 1 {
		t.Errorf("second pass: removals %+v, PRs %d; want none new", again.Removals, len(e.prsFrom(RemoveBranchPrefix)))
	}
}

func TestReconcileSkipsVersionsAFollowUpCovers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	merged := mergedPromotion(t, e)
	if _, err := e.svc.FollowUp(ctx, e.r, merged); err != nil {
		t.Fatalf("FollowUp: %v", err)
	}
	res, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil {
		t.Fatalf("ReconcileRemovals: %v", err)
	}
	if len(res.Removals) != 1 || res.Removals[0].Created || len(res.Conflicts) != 1 || res.Conflicts[0].Version.String() != "bar@2.0.0" {
		t.Errorf("result = %+v, want the follow-up's PR found (not created) for foo@1.2.3 and bar@2.0.0 as a conflict", res)
	}
	if n := len(e.prsFrom(RemoveBranchPrefix)); n != 1 {
		t.Errorf("removal PRs = %d, want the follow-up's one only", n)
	}
}

func TestBranchKey(t *testing.T) {
	long := make([]string, 0, 20)
	for _, p := range []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"} {
		long = append(long, p+"@1.0.0")
	}
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{name: "one version", in: []string{"foo@1.2.3"}, want: "foo-1.2.3"},
		{name: "sorted and deduplicated", in: []string{"foo@1.2.3", "bar@2.0.0", "foo@1.2.3"}, want: "bar-2.0.0_foo-1.2.3"},
		{name: "semver order", in: []string{"foo@1.10.0", "foo@1.9.0"}, want: "foo-1.9.0_foo-1.10.0"},
		{name: "too long is hashed", in: long, want: "sha256-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := branchKey(refs(tc.in...))
			if tc.want == "sha256-" {
				if !strings.HasPrefix(got, "sha256-") || len(got) != len("sha256-")+16 || got != branchKey(refs(tc.in...)) {
					t.Errorf("key = %q, want a stable sha256- prefix of 16 hex digits", got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("key = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	key := MarkerKey(testSeal, "storage-org/package-storage")
	tests := []struct {
		name string
		m    Marker
	}{
		{name: "promotion", m: Marker{Kind: "promotion", Target: "staging", Commit: "abc", By: "alice", FromPR: 3,
			Versions: []MarkedVersion{{Package: "foo", Version: "1.2.3", Channel: "snapshot", Tree: "t1"}}}},
		{name: "removal with tricky text", m: Marker{Kind: "removal", Target: "snapshot", Commit: "def", PromotedIn: 9,
			Versions: []MarkedVersion{{Package: "a-->b", Version: "1.0.0", Channel: "snapshot", Tree: "t2"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseMarker(context.Background(), prWithBody("Some text.\n\n"+tc.m.String(key)+"\n"), key)
			if !ok {
				t.Fatalf("marker %s not found", tc.m.String(key))
			}
			if diff := cmp.Diff(tc.m, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := ParseMarker(context.Background(), prWithBody("no marker here"), key); ok {
		t.Errorf("found a marker in a body without one")
	}
}

func prWithBody(body string) *github.PullRequest {
	return &github.PullRequest{Number: github.Int(5), Body: &body, User: &github.User{Login: github.String("storagebot[bot]")}}
}

// TestTamperedMarkerCountsForNothing edits a sealed marker the ways a writer could: the MAC no longer
// verifies, the marker is ignored and the PR and its author are logged.
func TestTamperedMarkerCountsForNothing(t *testing.T) {
	key := MarkerKey(testSeal, "storage-org/package-storage")
	m := Marker{Kind: "removal", Target: "snapshot", Commit: "1111111111111111111111111111111111111111",
		Versions: []MarkedVersion{{Package: "foo", Version: "1.0.0", Channel: "snapshot", Tree: "t1"}}}
	sealed := m.String(key)
	tests := []struct {
		name, body string
	}{
		{name: "commit edited", body: strings.Replace(sealed, "1111111111", "2222222222", 1)},
		{name: "version added", body: strings.Replace(sealed, `"versions":[`, `"versions":[{"package":"bar","version":"2.0.0","channel":"snapshot","tree":"t9"},`, 1)},
		{name: "kind changed", body: strings.Replace(sealed, "storagebot:removal", "storagebot:promotion", 1)},
		{name: "unsealed", body: m.String(seal.Key{})},
		{name: "sealed for another repository", body: m.String(MarkerKey(testSeal, "storage-org/other"))},
		{name: "sealed by another App key", body: m.String(MarkerKey(mustKey(t, "other"), "storage-org/package-storage"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			ctx := zerolog.New(&logs).WithContext(context.Background())
			if got, ok := ParseMarker(ctx, prWithBody(tc.body), key); ok {
				t.Errorf("tampered marker accepted: %+v", got)
			}
			if !strings.Contains(logs.String(), "tampered") || !strings.Contains(logs.String(), `"pr":5`) {
				t.Errorf("logs do not report the tampered marker of #5:\n%s", logs.String())
			}
		})
	}
}

func mustKey(t *testing.T, secret string) seal.Key {
	t.Helper()
	k, err := seal.New([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestFollowUpNoteMarker(t *testing.T) {
	key := MarkerKey(testSeal, "storage-org/package-storage")
	bot := "storagebot[bot]"
	note := FollowUpNote([]FollowUpResult{{Channel: "snapshot", PR: PRRef{Number: 9}, Removed: []commandparse.VersionRef{{Package: "foo", Version: "1.0.0"}}}}, 12, key)
	comment := func(user, body string) *github.IssueComment {
		return &github.IssueComment{ID: github.Int64(77), User: &github.User{Login: github.String(user)}, Body: github.String(body)}
	}
	tests := []struct {
		name    string
		c       *github.IssueComment
		merged  int
		want    bool
		wantLog bool
	}{
		{name: "the bot's note", c: comment(bot, note), merged: 12, want: true},
		{name: "another PR's note", c: comment(bot, note), merged: 1},
		{name: "copied into a writer's comment", c: comment("writer", note), merged: 12, wantLog: true},
		{name: "unsealed marker pasted into a bot comment", c: comment(bot, "✅ Allowed.\n<!-- storagebot:followup pr-12 -->"), merged: 12, wantLog: true},
		{name: "marker of another PR relabelled", c: comment(bot, strings.Replace(FollowUpNoteMarker(13, key), "pr-13", "pr-12", 1)), merged: 12, wantLog: true},
		{name: "no marker", c: comment(bot, "hello"), merged: 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			ctx := zerolog.New(&logs).WithContext(context.Background())
			if got := IsFollowUpNote(ctx, tc.c, bot, tc.merged, key); got != tc.want {
				t.Errorf("IsFollowUpNote = %v, want %v", got, tc.want)
			}
			if logged := strings.Contains(logs.String(), "tampered"); logged != tc.wantLog {
				t.Errorf("tamper logged = %v, want %v:\n%s", logged, tc.wantLog, logs.String())
			}
		})
	}
}

// TestReconcileCopyBackAfterFollowUpMerged: the merged PR's follow-up removal merged, then the same copy was
// pushed back to the lower channel. The follow-up is done for good (its branch exists), so the copy gets a
// reconcile PR rather than being left behind.
func TestReconcileCopyBackAfterFollowUpMerged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "snapshot", 3, "", "foo@1.2.3")
	number := e.promoteAndMerge(t, "foo@1.2.3")
	results, err := e.svc.FollowUp(ctx, e.r, e.pr(t, number))
	if err != nil || len(results) != 1 || !results[0].Created {
		t.Fatalf("FollowUp = %+v, %v; want one removal PR", results, err)
	}
	if _, err := e.repo.MergePullRequest(results[0].PR.Number, "squash"); err != nil {
		t.Fatal(err)
	}
	e.put(t, "snapshot", 3, "", "foo@1.2.3") // the same files again: identical to staging's copy
	rec, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil {
		t.Fatal(err)
	}
	var created []string
	for _, rm := range rec.Removals {
		if rm.Created {
			created = append(created, rm.PR.Branch)
		}
	}
	if diff := cmp.Diff([]string{RemoveBranchPrefix + "snapshot/reconcile-foo-1.2.3"}, created); diff != "" {
		t.Errorf("removal PRs created (-want +got):\n%s", diff)
	}
}
