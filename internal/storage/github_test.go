package storage

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/storagegen"
	"github.com/storagebot/storagebot/policy"
)

const (
	routeTree      = "GET /repos/{owner}/{repo}/git/trees/{tree_sha}"
	routeBlob      = "GET /repos/{owner}/{repo}/git/blobs/{file_sha}"
	routeRef       = "GET /repos/{owner}/{repo}/git/ref/{ref:.+}"
	routeBranch    = "GET /repos/{owner}/{repo}/branches/{branch}"
	routeGitCommit = "GET /repos/{owner}/{repo}/git/commits/{commit_sha}"
	routeCommit    = "GET /repos/{owner}/{repo}/commits/{ref:.+}"
	routeCompare   = "GET /repos/{owner}/{repo}/compare/{basehead}"
)

// fakeStorage is a fake GitHub holding a small storage: pkga and pkgb at 1.0.0 on every channel, and a PR
// branch that adds pkga 2.0.0 and edits pkgb 1.0.0.
func fakeStorage(t *testing.T) (*githubfake.Server, *githubfake.Repo, *github.Client) {
	t.Helper()
	s := githubfake.New(githubfake.Options{Logf: t.Logf})
	t.Cleanup(s.Close)
	repo := s.CreateRepo("storage-org", "package-storage", "snapshot")
	files := map[string]*githubfake.File{
		"Dockerfile": {Content: []byte(storagegen.Dockerfile("v1.15.0"))},
		"go.mod":     {Content: []byte(storagegen.GoMod("v1.15.0"))},
	}
	for _, pkg := range []string{"pkga", "pkgb"} {
		for path, data := range storagegen.VersionFiles(pkg, "1.0.0", 4, 64, 1) {
			files["packages/"+pkg+"/1.0.0/"+path] = &githubfake.File{Content: data}
		}
	}
	initial, err := repo.Commit("snapshot", "storage", files)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"staging", "production", "pr"} {
		if err := repo.CreateBranch(b, initial); err != nil {
			t.Fatal(err)
		}
	}
	pr := map[string]*githubfake.File{
		"packages/pkgb/1.0.0/docs/README.md": {Content: []byte("edited\n")},
		// A mode flip alone is no change (docs/architecture.md §3).
		"packages/pkga/1.0.0/img/logo.svg": {Content: files["packages/pkga/1.0.0/img/logo.svg"].Content, Mode: "100755"},
	}
	for path, data := range storagegen.VersionFiles("pkga", "2.0.0", 4, 64, 2) {
		pr["packages/pkga/2.0.0/"+path] = &githubfake.File{Content: data}
	}
	if _, err := repo.Commit("pr", "change", pr); err != nil {
		t.Fatal(err)
	}
	return s, repo, installationClient(t, s)
}

// restCache is an object cache whose readers read through REST only, one object a call.
func restCache() *ObjectCache {
	c := NewObjectCache(0)
	c.SetGraphQL(false)
	return c
}

// installationClient is a go-github client authenticated as the installation through ghinstallation.
func installationClient(t *testing.T, s *githubfake.Server) *github.Client {
	t.Helper()
	c, err := s.InstallationClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGitHubReaderGather(t *testing.T) {
	s, repo, client := fakeStorage(t)
	cache := NewObjectCache(1000)
	cache.SetGraphQL(false) // the REST reads; TestGatherGraphQL has the batch reads
	req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot", Head: "pr",
		Others: map[string]string{"staging": "staging", "production": "production"}}
	want := gatherView{Changes: []changeView{
		{Package: "pkga", Version: "2.0.0", Kind: policy.Added, Manifest: true, ChannelVersions: []string{"1.0.0"}, Others: map[string]bool{},
			Paths: []string{"packages/pkga/2.0.0/data_stream/ds00/fields/fields003.yml", "packages/pkga/2.0.0/docs/README.md", "packages/pkga/2.0.0/img/logo.svg", "packages/pkga/2.0.0/manifest.yml"}},
		{Package: "pkgb", Version: "1.0.0", Kind: policy.Modified, Manifest: true, ChannelVersions: []string{"1.0.0"},
			Others: map[string]bool{"staging": false, "production": false}, Paths: []string{"packages/pkgb/1.0.0/docs/README.md"}},
	}}
	// Each pass uses a new reader on the shared cache, as a new evaluation would.
	passes := []struct {
		name      string
		wantTrees int
		wantBlobs int
	}{
		// Root and packages/ at the shared base state and at head (4), pkga and pkgb at both (4), recursive
		// listings of pkga 1.0.0 at both sides (its mode flip is no change), pkgb 1.0.0 at both, pkga 2.0.0 (5);
		// the two changed versions' manifests.
		// The head side of each touched package is one recursive read (pkga, pkgb: 2) whose subtrees serve
		// the head version listings, so 13 - 3 = 10.
		{name: "cold", wantTrees: 10, wantBlobs: 2},
		{name: "warm", wantTrees: 0, wantBlobs: 0},
	}
	for _, p := range passes {
		t.Run(p.name, func(t *testing.T) {
			s.ResetCalls()
			r := NewGitHubReader(client, "storage-org", "package-storage", cache)
			res, err := Gather(context.Background(), r, req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, view(res.Input), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("gathered input (-want +got):\n%s", diff)
			}
			if res.Head != repo.BranchSHA("pr") || res.Base != repo.BranchSHA("snapshot") || res.MergeBase != repo.BranchSHA("snapshot") {
				t.Errorf("commits = base %s head %s merge base %s; want %s, %s, %[4]s", res.Base, res.Head, res.MergeBase, repo.BranchSHA("snapshot"), repo.BranchSHA("pr"))
			}
			trees, blobs := s.Calls(routeTree), s.Calls(routeBlob)
			t.Logf("%s: %d tree, %d blob, %d branch, %d ref, %d commit, %d compare reads", p.name, trees, blobs, s.Calls(routeBranch), s.Calls(routeRef), s.Calls(routeCommit)+s.Calls(routeGitCommit), s.Calls(routeCompare))
			if trees != p.wantTrees {
				t.Errorf("tree reads = %d, want %d", trees, p.wantTrees)
			}
			if blobs != p.wantBlobs {
				t.Errorf("blob reads = %d, want %d", blobs, p.wantBlobs)
			}
			if commits := s.Calls(routeCommit) + s.Calls(routeGitCommit); p.name == "warm" && (commits != 0 || s.Calls(routeCompare) != 0) {
				t.Errorf("warm pass re-read commits (%d) or merge bases (%d) addressed by SHA", commits, s.Calls(routeCompare))
			}
			if refs := s.Calls(routeBranch); refs != 4 {
				t.Errorf("branch head reads = %d, want 4 (base, head and two channels, never cached)", refs)
			}
		})
	}
}

func TestGitHubReaderObjects(t *testing.T) {
	_, repo, client := fakeStorage(t)
	r := NewGitHubReader(client, "storage-org", "package-storage", nil)
	ctx := context.Background()
	snapshot, pr := repo.BranchSHA("snapshot"), repo.BranchSHA("pr")
	tests := []struct {
		name    string
		rev     string
		want    string
		wantErr bool
	}{
		{name: "branch", rev: "pr", want: pr},
		{name: "full ref", rev: "refs/heads/snapshot", want: snapshot},
		{name: "full sha", rev: pr, want: pr},
		{name: "unknown branch", rev: "no-such-branch", wantErr: true},
		{name: "unknown full ref", rev: "refs/heads/no-such-branch", wantErr: true},
		{name: "unknown sha", rev: strings.Repeat("0", 40), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := r.ResolveRevision(ctx, tc.rev)
			if tc.wantErr {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tc.rev) {
					t.Fatalf("error = %v, want ErrNotFound naming %s", err, tc.rev)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SHA != tc.want {
				t.Errorf("commit = %s, want %s", c.SHA, tc.want)
			}
			wantTree, err := repo.TreeSHA(tc.want, "")
			if err != nil {
				t.Fatal(err)
			}
			if c.TreeSHA != wantTree {
				t.Errorf("tree = %s, want %s", c.TreeSHA, wantTree)
			}
		})
	}
	mb, err := r.MergeBase(ctx, snapshot, pr)
	if err != nil {
		t.Fatal(err)
	}
	if mb != snapshot {
		t.Errorf("merge base = %s, want %s", mb, snapshot)
	}
	versionTree, err := repo.TreeSHA("pr", "packages/pkga/2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := r.Tree(ctx, versionTree, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, string(e.Type)+" "+e.Mode+" "+e.Path)
	}
	slicesSort(got)
	wantEntries := []string{"blob 100644 data_stream/ds00/fields/fields003.yml", "blob 100644 docs/README.md", "blob 100644 img/logo.svg", "blob 100644 manifest.yml", "tree 040000 data_stream", "tree 040000 data_stream/ds00", "tree 040000 data_stream/ds00/fields", "tree 040000 docs", "tree 040000 img"}
	if diff := cmp.Diff(wantEntries, got); diff != "" {
		t.Errorf("recursive tree (-want +got):\n%s", diff)
	}
	if _, err := r.Tree(ctx, strings.Repeat("1", 40), false); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tree: error = %v, want ErrNotFound", err)
	}
	manifest, err := repo.ReadFile("pr", "packages/pkga/2.0.0/manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	manifestSHA, err := repo.TreeSHA("pr", "packages/pkga/2.0.0/manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := r.Blob(ctx, manifestSHA)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(manifest), string(blob)); diff != "" {
		t.Errorf("blob (-want +got):\n%s", diff)
	}
}

// TestGitHubReaderSubtreesFromRecursiveListing checks that listings derived from one recursive read are
// exactly what GitHub answers for each subtree, single-level and recursive.
func TestGitHubReaderSubtreesFromRecursiveListing(t *testing.T) {
	s, repo, client := fakeStorage(t)
	root, err := repo.TreeSHA("pr", "packages/pkga")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	derived := NewGitHubReader(client, "storage-org", "package-storage", NewObjectCache(0))
	all, err := derived.Tree(ctx, root, true)
	if err != nil {
		t.Fatal(err)
	}
	s.ResetCalls()
	fetched := func(sha string, recursive bool) []TreeEntry {
		t.Helper()
		entries, err := NewGitHubReader(client, "storage-org", "package-storage", NewObjectCache(0)).Tree(ctx, sha, recursive)
		if err != nil {
			t.Fatal(err)
		}
		return entries
	}
	trees := []string{root}
	for _, e := range all {
		if e.Type == TypeTree {
			trees = append(trees, e.SHA)
		}
	}
	if len(trees) < 4 {
		t.Fatalf("fixture has %d trees under packages/pkga, want nested directories", len(trees))
	}
	for _, sha := range trees {
		want := fetched(sha, false)
		calls := s.Calls(routeTree)
		got, err := derived.Tree(ctx, sha, false)
		if err != nil {
			t.Fatal(err)
		}
		if s.Calls(routeTree) != calls {
			t.Errorf("tree %s: single-level listing was fetched, want it from the recursive read", sha)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tree %s single-level (-fetched +derived):\n%s", sha, diff)
		}
		if sha == root {
			continue
		}
		want = fetched(sha, true)
		if got, err = derived.Tree(ctx, sha, true); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tree %s recursive (-fetched +derived):\n%s", sha, diff)
		}
	}
}
