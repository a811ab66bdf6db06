package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/storagegen"
	"github.com/storagebot/storagebot/internal/testkit"
)

// packageTree returns the SHA of packages/<pkg> on branch.
func packageTree(t *testing.T, r Reader, branch, pkg string) string {
	t.Helper()
	ctx := context.Background()
	c, err := r.ResolveRevision(ctx, branch)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := Subtree(ctx, r, c.TreeSHA, PackagesDir)
	if err != nil {
		t.Fatal(err)
	}
	sha, err := Subtree(ctx, r, pkgs, pkg)
	if err != nil || sha == "" {
		t.Fatalf("packages/%s on %s: %q, %v", pkg, branch, sha, err)
	}
	return sha
}

func TestGitHubReaderTruncatedListing(t *testing.T) {
	s, _, client := fakeStorage(t)
	pkg := packageTree(t, NewGitHubReader(client, "storage-org", "package-storage", nil), "pr", "pkga")
	want, err := NewGitHubReader(client, "storage-org", "package-storage", nil).Tree(context.Background(), pkg, true)
	if err != nil {
		t.Fatal(err)
	}
	versions, dirs := 0, 0
	for _, e := range want {
		if e.Type == TypeTree {
			dirs++
			if !strings.Contains(e.Path, "/") {
				versions++
			}
		}
	}
	// The package's listing is over the cap, each version's is under it: GitHub truncates only the former.
	s.SetTreeLimits(len(want)/versions+1, 0)
	s.ResetCalls()
	r := NewGitHubReader(client, "storage-org", "package-storage", nil)
	got, err := r.Tree(context.Background(), pkg, true)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listing completed after truncation differs (-untruncated +got):\n%s", diff)
	}
	// The truncated listing, the package's own entries, one recursive listing per version: not one call per
	// directory (there are dirs of them).
	if calls, wantCalls := s.Calls(routeTree), 2+versions; calls != wantCalls {
		t.Errorf("tree reads = %d, want %d (1 truncated + 1 single-level + %d versions; %d directories)", calls, wantCalls, versions, dirs)
	}
	// Known truncated: the next evaluation's cache answers, and a prefetch does not read it again.
	s.ResetCalls()
	if err := r.PrefetchRecursive(context.Background(), pkg); err != nil {
		t.Fatal(err)
	}
	if calls := s.Calls(routeTree); calls != 0 {
		t.Errorf("prefetch of a tree already listed read %d trees, want 0", calls)
	}
}

func TestGatherTruncatedListings(t *testing.T) {
	s, _, client := fakeStorage(t)
	req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot", Head: "pr",
		Others: map[string]string{"staging": "staging", "production": "production"}}
	gather := func() (gatherView, int) {
		t.Helper()
		s.ResetCalls()
		res, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", restCache()), req)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range s.CallCounts() {
			total += n
		}
		return view(res.Input), total
	}
	want, untruncated := gather()
	// Every recursive listing of more than 3 entries comes back truncated: packages and versions alike.
	s.SetTreeLimits(3, 0)
	got, truncated := gather()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("gathered input under truncation (-untruncated +truncated):\n%s", diff)
	}
	t.Logf("calls: %d untruncated, %d truncated", untruncated, truncated)
	if truncated > 3*untruncated {
		t.Errorf("truncated listings cost %d calls, more than 3 × the %d calls untruncated", truncated, untruncated)
	}
}

func TestGatherOverlapsReadsWithinTheBound(t *testing.T) {
	for _, limit := range []int{1, 3, 8} {
		t.Run(strings.Repeat("I", limit), func(t *testing.T) {
			s, _, client := fakeStorage(t)
			req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot", Head: "pr",
				Others: map[string]string{"staging": "staging", "production": "production"}}
			if _, _, err := client.Repositories.Get(context.Background(), "storage-org", "package-storage"); err != nil {
				t.Fatal(err) // the installation token, outside the measure
			}
			s.SetLatency(20*time.Millisecond, 10*time.Millisecond, 7)
			s.ResetCalls()
			cache := restCache()
			cache.SetReadConcurrency(limit)
			res, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", cache), req)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(res.Input.Changes); n != 2 {
				t.Errorf("%d changes gathered, want 2", n)
			}
			got := s.MaxInFlight()
			if got > limit {
				t.Errorf("%d reads in flight at once, over the bound of %d", got, limit)
			}
			if limit > 1 && got < 2 {
				t.Errorf("%d reads in flight at most with a bound of %d: the reads did not overlap", got, limit)
			}
		})
	}
}

func TestGatherFailedReadCancelsTheOthers(t *testing.T) {
	s, _, client := fakeStorage(t)
	req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot", Head: "pr",
		Others: map[string]string{"staging": "staging", "production": "production"}}
	// Every blob read is refused; everything else answers slowly, so the evaluation still has reads going
	// when the first refusal comes.
	s.SetLatency(50*time.Millisecond, 0, 1)
	s.InjectFault(githubfake.Fault{Route: routeBlob, Status: 403})
	start := time.Now()
	_, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", restCache()), req)
	if err == nil || !strings.Contains(err.Error(), "read blob") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Gather error = %v, want the refused blob read as the cause", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("Gather error = %v: the cancellation of the other reads, not their cause", err)
	}
	t.Logf("failed after %v", time.Since(start))
}

func TestGatherSecondaryLimitOneSharedWait(t *testing.T) {
	s, _, _ := fakeStorage(t)
	client := testkit.ServeClient(t, s, ghclient.Options{})
	req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot", Head: "pr",
		Others: map[string]string{"staging": "staging", "production": "production"}}
	if _, _, err := client.Repositories.Get(context.Background(), "storage-org", "package-storage"); err != nil {
		t.Fatal(err) // the installation token, outside the measure
	}
	// The first tree read meets a secondary limit of one second while other reads are on their way.
	s.SetLatency(30*time.Millisecond, 10*time.Millisecond, 3)
	s.InjectFault(githubfake.Fault{Route: routeTree, RateLimit: githubfake.SecondaryLimit, RetryAfter: "1", Times: 1})
	start := time.Now()
	res, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", restCache()), req)
	if err != nil {
		t.Fatalf("Gather across a one-second secondary limit: %v", err)
	}
	elapsed := time.Since(start)
	if n := len(res.Input.Changes); n != 2 {
		t.Errorf("%d changes gathered, want 2", n)
	}
	// Every worker waited for the same end of the limit: one wait, not one per worker in turn.
	if elapsed > 3*time.Second {
		t.Errorf("Gather took %v across a 1 s limit: the workers waited one after another", elapsed)
	}
	// Only reads already on their way when the limit began reached GitHub during it, each once.
	for path, n := range s.RequestsWhileLimitedByPath() {
		if n > 1 {
			t.Errorf("%s sent %d times while the limit held, want at most once", path, n)
		}
	}
	if n := s.RequestsWhileLimited(); n > DefaultReadConcurrency-1 {
		t.Errorf("%d requests sent while the limit held, more than the %d others that can be in flight", n, DefaultReadConcurrency-1)
	}
	t.Logf("%v elapsed, %d requests while limited", elapsed, s.RequestsWhileLimited())
}
