package promotion

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
)

// typicalVersions are 14 versions with names like the real storage's: listed in full they make a
// promotion title of more than 256 characters.
var typicalVersions = []string{
	"apm@8.1.0", "aws@1.19.4", "azure@1.1.3", "cisco_asa@2.3.1", "crowdstrike@1.4.2", "endpoint@8.2.0",
	"fleet_server@1.1.1", "kubernetes@1.21.1", "microsoft_defender_endpoint@2.1.0", "nginx_ingress_controller@1.3.2",
	"o365@1.7.0", "panw@2.2.0", "system@1.16.2", "windows@1.12.4",
}

// putMany commits versions to a branch with a one-file manifest each.
func (e *env) putMany(tb testing.TB, branch string, list []string) {
	tb.Helper()
	all := map[string]*githubfake.File{}
	for _, ref := range list {
		pkg, v, _ := strings.Cut(ref, "@")
		for p, f := range version(pkg, v, 1, "") {
			all[p] = f
		}
	}
	if _, err := e.repo.Commit(branch, fmt.Sprintf("add %d versions", len(list)), all); err != nil {
		tb.Fatalf("commit to %s: %v", branch, err)
	}
}

func checkPRWithinLimits(t *testing.T, pr githubfake.PullRequest) {
	t.Helper()
	if n := utf8.RuneCountInString(pr.Title); n > MaxTitleLength {
		t.Errorf("#%d title has %d characters", pr.Number, n)
	}
	if n := utf8.RuneCountInString(pr.Body); n > MaxBodyLength {
		t.Errorf("#%d body has %d characters", pr.Number, n)
	}
}

// TestPromoteSummarisesLongTitle: 14 typical versions made a title GitHub refused with 422 after the
// branch was written.
func TestPromoteSummarisesLongTitle(t *testing.T) {
	e := newEnv(t)
	e.putMany(t, "snapshot", typicalVersions)
	res, err := e.svc.Promote(context.Background(), e.r, PromoteRequest{Versions: refs(typicalVersions...), Target: "staging"})
	if err != nil || len(res.Refusals) > 0 {
		t.Fatalf("Promote: %v %v", err, res.Refusals)
	}
	pr := e.repo.PullRequest(res.PR.Number)
	if want := "[staging] Promote apm@8.1.0 and 13 more from snapshot"; pr.Title != want {
		t.Errorf("title = %q, want %q", pr.Title, want)
	}
	for _, v := range typicalVersions {
		if !strings.Contains(pr.Body, "`"+v+"`") {
			t.Errorf("body does not list %s", v)
		}
	}
	checkPRWithinLimits(t, pr)
}

// TestPromoteTooManyVersionsRefusedBeforeWriting: a promotion whose body cannot fit even collapsed is
// refused with the most versions one command may promote, and nothing is written.
func TestPromoteTooManyVersionsRefusedBeforeWriting(t *testing.T) {
	e := newEnv(t)
	var list []string
	for i := 0; i < 900; i++ {
		list = append(list, fmt.Sprintf("package_with_a_long_name_%03d@1.0.%d", i, i))
	}
	e.putMany(t, "snapshot", list)
	e.fake.ResetCalls()
	res, err := e.svc.Promote(context.Background(), e.r, PromoteRequest{Versions: refs(list...), Target: "staging"})
	if err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if len(res.Refusals) != len(list) || !strings.Contains(res.Refusals[0].Reason, "several commands of at most") {
		t.Fatalf("refusals = %d (%v…), want all %d refused with the most per command", len(res.Refusals), res.Refusals[:min(1, len(res.Refusals))], len(list))
	}
	for _, route := range []string{"POST /repos/{owner}/{repo}/git/trees", "POST /repos/{owner}/{repo}/git/refs", "POST /repos/{owner}/{repo}/pulls"} {
		if n := e.fake.Calls(route); n != 0 {
			t.Errorf("%s called %d times, want nothing written", route, n)
		}
	}
}

// TestPromoteFindsVersionPastTheContentsCap: the contents API lists 1,000 entries of a directory; a
// package with more versions lost the rest, and the version was "in no channel".
func TestPromoteFindsVersionPastTheContentsCap(t *testing.T) {
	e := newEnv(t)
	var list []string
	for i := 0; i < 1000; i++ {
		list = append(list, fmt.Sprintf("big@1.0.%d", i))
	}
	list = append(list, "big@9.0.0") // sorts after every 1.0.x: the 1,001st entry
	e.putMany(t, "snapshot", list)
	res, err := e.svc.Promote(context.Background(), e.r, PromoteRequest{Versions: refs("big@9.0.0")})
	if err != nil || len(res.Refusals) > 0 {
		t.Fatalf("Promote big@9.0.0: %v %v", err, res.Refusals)
	}
	if res.Target != "staging" || e.treeAt(t, e.repo.PullRequest(res.PR.Number).HeadSHA, "big@9.0.0") != e.treeAt(t, "snapshot", "big@9.0.0") {
		t.Errorf("result %+v does not promote snapshot's big@9.0.0 to staging", res)
	}
}

// TestRemovalRewritesTreesWithoutNullDirectories: GitHub documents "sha": null for files only (the fake
// refuses it for a directory); a removal writes the package tree without the version, and packages/
// without a package it empties.
func TestRemovalRewritesTreesWithoutNullDirectories(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.putMany(t, "snapshot", []string{"foo@1.0.0", "foo@2.0.0", "bar@1.0.0", "keep@1.0.0"})
	e.putMany(t, "staging", []string{"foo@2.0.0", "bar@1.0.0"})
	res, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil {
		t.Fatalf("ReconcileRemovals: %v", err)
	}
	if len(res.Removals) != 1 || res.Removals[0].PR.Number == 0 {
		t.Fatalf("removals = %+v, want one PR", res.Removals)
	}
	head := e.repo.PullRequest(res.Removals[0].PR.Number).HeadSHA
	for ref, want := range map[string]bool{"foo@1.0.0": true, "foo@2.0.0": false, "bar@1.0.0": false, "keep@1.0.0": true} {
		if got := e.treeAt(t, head, ref) != ""; got != want {
			t.Errorf("%s present after the removal = %v, want %v", ref, got, want)
		}
	}
	if sha, _ := e.repo.TreeSHA(head, "packages/bar"); sha != "" {
		t.Errorf("packages/bar is still there, empty package directories must go")
	}
	// Untouched packages keep their tree: copied by reference, not rewritten.
	keepBefore, _ := e.repo.TreeSHA("snapshot", "packages/keep")
	if keepAfter, _ := e.repo.TreeSHA(head, "packages/keep"); keepAfter != keepBefore {
		t.Errorf("packages/keep changed from %s to %s", keepBefore, keepAfter)
	}
}

// TestAddedByRebaseMerge: on a rebase merge merge_commit_sha is the last rebased commit; its first-parent
// diff held only that commit's version.
func TestAddedByRebaseMerge(t *testing.T) {
	e := newEnv(t)
	if err := e.repo.CreateBranch("add-two", e.repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	e.putMany(t, "add-two", []string{"foo@1.0.0"})
	e.putMany(t, "add-two", []string{"bar@2.0.0"})
	opened, err := e.repo.OpenPullRequest(githubfake.PROptions{Head: "add-two", Base: "snapshot", Title: "[snapshot] add two", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.repo.MergePullRequest(opened.Number, "rebase"); err != nil {
		t.Fatalf("rebase merge: %v", err)
	}
	e.checkAddedBy(t, e.pr(t, opened.Number), "bar@2.0.0", "foo@1.0.0")
}

// TestReconcileSplitsLargeBacklog: hundreds of versions left in two channels made one title and one body
// GitHub refused; they are split into PRs within both limits that together remove every version once.
func TestReconcileSplitsLargeBacklog(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	list := backlog(700)
	e.putMany(t, "snapshot", list)
	e.putMany(t, "staging", list)
	res, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil {
		t.Fatalf("ReconcileRemovals: %v", err)
	}
	if len(res.Removals) < 2 {
		t.Fatalf("%d removal PRs, want the backlog split over several", len(res.Removals))
	}
	var removed []string
	for i, rm := range res.Removals {
		pr := e.repo.PullRequest(rm.PR.Number)
		checkPRWithinLimits(t, pr)
		if want := fmt.Sprintf("[part %d of %d]", i+1, len(res.Removals)); !strings.HasSuffix(pr.Title, want) {
			t.Errorf("title %q does not end with %q", pr.Title, want)
		}
		m, ok := ParseMarker(context.Background(), &github.PullRequest{Body: &pr.Body}, MarkerKey(testSeal, e.repo.FullName()))
		if !ok {
			t.Fatalf("#%d body has no marker", pr.Number)
		}
		for _, v := range m.Versions {
			removed = append(removed, v.Package+"@"+v.Version)
			if e.treeAt(t, pr.HeadSHA, v.Package+"@"+v.Version) != "" {
				t.Errorf("#%d still holds %s@%s", pr.Number, v.Package, v.Version)
			}
		}
	}
	want := append([]string(nil), list...)
	sort.Strings(want)
	sort.Strings(removed)
	if diff := cmp.Diff(want, removed); diff != "" {
		t.Errorf("removed over all parts (-want +got):\n%s", diff)
	}
	again, err := e.svc.ReconcileRemovals(ctx, e.r)
	if err != nil || len(again.Removals) != 0 {
		t.Errorf("second reconcile: %v, %d removal PRs, want none (every version covered)", err, len(again.Removals))
	}
}

// TestFollowUpSplitsLongRemoval: a merge adding hundreds of versions gets its removal follow-up in parts,
// each within GitHub's limits, exactly once.
func TestFollowUpSplitsLongRemoval(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	list := backlog(700)
	e.putMany(t, "snapshot", list)
	if err := e.repo.CreateBranch("bulk", e.repo.BranchSHA("staging")); err != nil {
		t.Fatal(err)
	}
	e.putMany(t, "bulk", list)
	opened, err := e.repo.OpenPullRequest(githubfake.PROptions{Head: "bulk", Base: "staging", Title: "[staging] bulk promotion", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.repo.MergePullRequest(opened.Number, "squash"); err != nil {
		t.Fatal(err)
	}
	merged := e.pr(t, opened.Number)
	first, err := e.svc.FollowUp(ctx, e.r, merged)
	if err != nil {
		t.Fatalf("FollowUp: %v", err)
	}
	if len(first) < 2 {
		t.Fatalf("%d results, want the removal split over several PRs", len(first))
	}
	total := 0
	for _, r := range first {
		checkPRWithinLimits(t, e.repo.PullRequest(r.PR.Number))
		total += len(r.Removed)
	}
	if total != len(list) {
		t.Errorf("parts remove %d versions, want %d", total, len(list))
	}
	if _, err := e.svc.FollowUp(ctx, e.r, merged); err != nil {
		t.Fatalf("FollowUp again: %v", err)
	}
	if n := len(e.prsFrom(RemoveBranchPrefix)); n != len(first) {
		t.Errorf("%d removal PRs after a redelivery, want %d", n, len(first))
	}
	key := MarkerKey(testSeal, e.repo.FullName())
	note := FollowUpNote(first, merged.GetNumber(), key)
	if n := utf8.RuneCountInString(note); n > MaxBodyLength || !strings.HasSuffix(note, FollowUpNoteMarker(merged.GetNumber(), key)) {
		t.Errorf("follow-up note has %d characters / lacks its marker at the end", n)
	}
}

func TestSummarise(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		refs []string
		want string
	}{
		{"fits", []string{"foo@1.2.3", "bar@2.0.0"}, "[staging] Promote foo@1.2.3, bar@2.0.0 from snapshot"},
		{"fourteen", typicalVersions, "[staging] Promote apm@8.1.0 and 13 more from snapshot"},
		{"one huge name", []string{long + "@1.0.0"}, "[staging] Promote 1 version from snapshot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := promoteTitle("staging", "snapshot", refs(tc.refs...)); got != tc.want {
				t.Errorf("title = %q, want %q", got, tc.want)
			}
		})
	}
	if got := promoteTitle(long, long, refs("a@1")); utf8.RuneCountInString(got) != MaxTitleLength || !strings.HasSuffix(got, "…") {
		t.Errorf("a title that cannot be summarised is %d characters (%q), want cut at %d with …", utf8.RuneCountInString(got), got, MaxTitleLength)
	}
	if got := partTitle(strings.Repeat("é", 256), 2, 3); utf8.RuneCountInString(got) > MaxTitleLength || !strings.HasSuffix(got, "[part 2 of 3]") {
		t.Errorf("part title %q is over the limit or lacks its part", got)
	}
}

func TestFitComment(t *testing.T) {
	marker := "<!-- storagebot:exceptions [] -->"
	var lines []string
	for i := 0; i < 5000; i++ {
		lines = append(lines, fmt.Sprintf("- `pkg@1.0.%d`: refused because of a long reason that repeats itself", i))
	}
	body := strings.Join(lines, "\n") + "\n\n" + marker
	got, err := FitComment(body)
	if err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(got); n > MaxBodyLength {
		t.Errorf("fitted comment has %d characters", n)
	}
	if !strings.HasSuffix(got, marker) || !strings.Contains(got, "more lines left out") || !strings.HasPrefix(got, lines[0]) {
		t.Errorf("fitted comment lost its marker, its notice or its start:\n…%s", got[len(got)-300:])
	}
	if short, err := FitComment("fine"); err != nil || short != "fine" {
		t.Errorf("a short comment changed: %q %v", short, err)
	}
	if _, err := FitComment("text\n<!-- " + strings.Repeat("x", MaxBodyLength) + " -->"); err == nil {
		t.Error("a marker over the limit: no error")
	}
}

// TestPromoteLeavesNothingWhenThePRIsRefused: when GitHub refuses the PR after the branch was written, the
// branch this attempt created is deleted (the reply says nothing is left half done), and a retry works.
func TestPromoteLeavesNothingWhenThePRIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.putMany(t, "snapshot", []string{"foo@1.2.3"})
	e.fake.InjectFault(githubfake.Fault{Route: "POST /repos/{owner}/{repo}/pulls", Status: 422, Times: 1})
	req := PromoteRequest{Versions: refs("foo@1.2.3"), Target: "staging"}
	if _, err := e.svc.Promote(ctx, e.r, req); err == nil {
		t.Fatal("Promote succeeded although GitHub refused the PR")
	}
	if sha := e.repo.BranchSHA("storagebot/promote/staging/foo-1.2.3"); sha != "" {
		t.Errorf("the promotion branch is left at %s without a PR", sha)
	}
	res, err := e.svc.Promote(ctx, e.r, req)
	if err != nil || res.PR.Number == 0 {
		t.Fatalf("retry: %+v %v", res, err)
	}
}
