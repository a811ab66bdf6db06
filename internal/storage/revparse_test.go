package storage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/storagegen"
)

// revParseRepo builds a repository with every kind of name git resolves: branches, lightweight and
// annotated tags (one nested), a tag and a branch of the same name, remote-tracking branches with a
// symbolic origin/HEAD, a merge, packed references shadowed by loose ones, and a checked-out branch that
// differs from origin/HEAD.
func revParseRepo(t *testing.T, bare bool) (*storagegen.Repo, []string) {
	t.Helper()
	str := must[string](t)
	// Enough objects that some share a four-digit abbreviation.
	repo := generate(t, storagegen.Options{Bare: bare, Packages: 20, VersionsPerPackage: 5})
	dir := repo.Dir
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	prod := str(repo.Head("production"))
	snap := str(repo.AddVersion("snapshot", "pkg000", "7.0.0"))
	str(repo.AddVersion("snapshot", "pkg001", "7.0.0"))
	staging := str(repo.AddVersion("staging", "pkg002", "7.0.0"))
	merge := git("commit-tree", str(repo.TreeSHA("snapshot", "")), "-p", str(repo.Head("snapshot")), "-p", staging, "-m", "merge")
	git("update-ref", "refs/heads/merged", merge)
	git("tag", "v1-light", prod)
	git("tag", "-a", "-m", "annotated", "v1-annotated", snap)
	git("tag", "-a", "-m", "nested", "v1-nested", "v1-annotated")
	git("tag", "-a", "-m", "tree tag", "tree-tag", prod+"^{tree}")
	git("tag", "both", staging) // refs/tags/both wins over refs/heads/both
	git("branch", "both", prod) //
	git("update-ref", "refs/remotes/origin/production", prod)
	git("update-ref", "refs/remotes/origin/snapshot", snap)
	git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/production")
	git("update-ref", "refs/remotes/upstream/HEAD", staging) // refs/remotes/X/HEAD rule
	git("pack-refs", "--all")
	// A loose reference newer than its packed copy, as after a fetch into a packed clone.
	git("update-ref", "refs/remotes/origin/snapshot", str(repo.Head("snapshot")))
	// HEAD on a branch that is not origin/HEAD: the bug of `--head HEAD`.
	git("branch", "bad", "origin/production")
	str(repo.ModifyFile("bad", "packages/pkg000/1.0.0/manifest.yml", []byte("name: pkg000\nversion: 1.0.0\nedited: true\n")))
	git("symbolic-ref", "HEAD", "refs/heads/bad")
	// A branch named like an abbreviated SHA of another commit: the branch wins.
	git("branch", snap[:7], prod)

	revs := []string{
		"HEAD", "@", "HEAD~1", "HEAD~", "HEAD^", "HEAD^0", "HEAD^{commit}", "HEAD^{tree}", "HEAD~1^{tree}",
		"bad", "production", "snapshot", "staging", "merged", "merged^2", "merged^1", "merged^3", "merged~2", "merged^2~1",
		"refs/heads/snapshot", "heads/snapshot", "origin/production", "origin/snapshot", "origin", "upstream",
		"remotes/origin/production", "refs/remotes/origin/HEAD", "origin/HEAD",
		"v1-light", "v1-annotated", "v1-annotated^{}", "v1-annotated^{commit}", "v1-nested", "v1-nested^{}",
		"v1-nested^{tag}", "v1-annotated^{object}", "tree-tag", "tree-tag^{}", "tree-tag^{tree}", "tree-tag^{commit}",
		"tags/v1-light", "both", "heads/both", "refs/heads/both",
		prod, strings.ToUpper(prod), prod[:7], prod[:12], snap[:7], snap[:7] + "^{commit}", prod + "~1",
		"v1-annotated-3-g" + prod[:8],
		"no-such-branch", "origin/no-such", "production~1000", "HEAD^{blob}", "HEAD^{bogus}",
		strings.Repeat("0", 40) + "^{commit}", "refs/heads/../HEAD", "FETCH_HEAD", "ORIG_HEAD",
	}
	// Abbreviations shared by several objects: git refuses them unless a suffix narrows the kind.
	all := strings.Fields(git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)"))
	sort.Strings(all)
	added := 0
	for i := 1; i < len(all) && added < 6; i++ {
		if all[i][:4] == all[i-1][:4] {
			p := all[i][:4]
			revs = append(revs, p, p+"^{commit}", p+"~0", p+"^{tree}")
			added++
		}
	}
	if added == 0 {
		t.Fatal("no ambiguous abbreviation in the generated repository")
	}
	return repo, revs
}

// TestRevParseMatchesGit resolves every revision with the reader and with `git rev-parse --verify` and
// requires the same object, or an error from both.
func TestRevParseMatchesGit(t *testing.T) {
	for _, bare := range []bool{false, true} {
		repo, revs := revParseRepo(t, bare)
		r := openLocal(t, repo.Dir)
		for _, rev := range revs {
			t.Run(fmt.Sprintf("bare=%v/%s", bare, rev), func(t *testing.T) {
				want, gitErr := gitCmd(repo.Dir, "rev-parse", "--verify", "-q", "--end-of-options", rev)
				if gitErr == nil {
					// --verify accepts any 40-hex name without looking it up; the object must exist here.
					if _, err := gitCmd(repo.Dir, "cat-file", "-e", want); err != nil {
						gitErr = err
					}
				}
				got, _, _, err := r.revParse(context.Background(), rev)
				switch {
				case gitErr != nil && err == nil:
					t.Fatalf("reader resolved %q to %s; git rev-parse fails", rev, got)
				case gitErr == nil && err != nil:
					t.Fatalf("reader: %v; git rev-parse resolves %q to %s", err, rev, want)
				case gitErr == nil && got.String() != want:
					t.Fatalf("reader resolved %q to %s, git rev-parse to %s", rev, got, want)
				}
			})
		}
	}
}

// TestResolveHeadOfCheckedOutBranch is the `--head HEAD` bug: HEAD is the repository's own HEAD (the
// checked-out branch), never refs/remotes/origin/HEAD, and the result names the branch it resolved through.
func TestResolveHeadOfCheckedOutBranch(t *testing.T) {
	repo, _ := revParseRepo(t, false)
	r := openLocal(t, repo.Dir)
	ctx := context.Background()
	bad := must[string](t)(repo.Head("bad"))
	got, err := r.Resolve(ctx, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit.SHA != bad || got.Ref != "refs/heads/bad" {
		t.Errorf("HEAD resolved to %s via %q, want %s via refs/heads/bad", got.Commit.SHA, got.Ref, bad)
	}
	origin, err := r.Resolve(ctx, "origin/production")
	if err != nil {
		t.Fatal(err)
	}
	if origin.Ref != "refs/remotes/origin/production" || origin.Commit.SHA == bad {
		t.Errorf("origin/production resolved to %s via %q", origin.Commit.SHA, origin.Ref)
	}
	tag, err := r.Resolve(ctx, "v1-nested")
	if err != nil {
		t.Fatal(err)
	}
	if want := must[string](t)(gitCmd(repo.Dir, "rev-parse", "v1-nested^{commit}")); tag.Commit.SHA != want || tag.Ref != "refs/tags/v1-nested" {
		t.Errorf("v1-nested resolved to %s via %q, want commit %s via refs/tags/v1-nested", tag.Commit.SHA, tag.Ref, want)
	}
}

// TestResolveInLinkedWorktree reads a `git worktree add` checkout, whose .git is a file and whose HEAD is
// its own.
func TestResolveInLinkedWorktree(t *testing.T) {
	repo := generate(t, storagegen.Options{})
	wt := filepath.Join(t.TempDir(), "wt")
	gitRunT(t, repo.Dir, "worktree", "add", "-q", "-b", "feature", wt, "snapshot")
	if st, err := os.Stat(filepath.Join(wt, ".git")); err != nil || st.IsDir() {
		t.Fatalf("want a .git file in the linked work tree: %v", err)
	}
	r := openLocal(t, wt)
	got, err := r.Resolve(context.Background(), "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if want := must[string](t)(repo.Head("snapshot")); got.Commit.SHA != want || got.Ref != "refs/heads/feature" {
		t.Errorf("HEAD of the linked work tree = %s via %q, want %s via refs/heads/feature", got.Commit.SHA, got.Ref, want)
	}
}
