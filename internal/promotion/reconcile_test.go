package promotion

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/storagebot/storagebot/internal/commands"
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

	res, err := e.svc.Reconcile(ctx, e.r)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	wantConflicts := []Conflict{{Version: commands.VersionRef{Package: "bar", Version: "1.0.0"}, Lower: "snapshot", Higher: "staging"}}
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
	again, err := (&Service{}).Reconcile(ctx, e.r)
	if err != nil {
		t.Fatalf("second Reconcile: %v", err)
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
	res, err := e.svc.Reconcile(ctx, e.r)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
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
			got, ok := ParseMarker("Some text.\n\n" + tc.m.String() + "\n")
			if !ok {
				t.Fatalf("marker %s not found", tc.m)
			}
			if diff := cmp.Diff(tc.m, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := ParseMarker("no marker here"); ok {
		t.Errorf("found a marker in a body without one")
	}
}

// TestReconcileCopyBackAfterFollowUpMerged: the merged PR's follow-up removal merged, then the same copy was
// pushed back to the lower channel. The follow-up is done for good (its branch exists), so the copy gets a
// reconcile PR rather than being left behind.
func TestReconcileCopyBackAfterFollowUpMerged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "snapshot", 3, "", "foo@1.2.3")
	res, err := e.svc.Promote(ctx, e.r, PromoteRequest{Versions: refs("foo@1.2.3"), Target: "staging"})
	if err != nil || len(res.Refusals) > 0 {
		t.Fatalf("promote: %v %+v", err, res.Refusals)
	}
	if _, err := e.repo.MergePullRequest(res.PR.Number, "merge"); err != nil {
		t.Fatal(err)
	}
	results, err := e.svc.FollowUp(ctx, e.r, e.pr(t, res.PR.Number))
	if err != nil || len(results) != 1 || !results[0].Created {
		t.Fatalf("FollowUp = %+v, %v; want one removal PR", results, err)
	}
	if _, err := e.repo.MergePullRequest(results[0].PR.Number, "squash"); err != nil {
		t.Fatal(err)
	}
	e.put(t, "snapshot", 3, "", "foo@1.2.3") // the same files again: identical to staging's copy
	rec, err := e.svc.Reconcile(ctx, e.r)
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
