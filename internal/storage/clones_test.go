package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storagebot/storagebot/internal/storagegen"
)

// cloneSource is a storage whose snapshot and staging branches diverged after a common commit, committed in
// several fast-import runs (so several packs).
func cloneSource(t *testing.T) *storagegen.Repo {
	t.Helper()
	str := must[string](t)
	repo := generate(t, storagegen.Options{})
	str(repo.AddVersion("snapshot", "pkg000", "5.0.0"))
	str(repo.AddVersion("snapshot", "pkg001", "5.0.0"))
	str(repo.AddVersion("staging", "pkg002", "5.0.0"))
	gitRunT(t, repo.Dir, "config", "uploadpack.allowFilter", "true")
	return repo
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// readsLikeGit resolves, walks and reads a clone with the reader and with git and requires the same answers.
func readsLikeGit(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	r := openLocal(t, dir)
	for _, rev := range []string{"origin/snapshot", "origin/staging", "origin/production", "HEAD"} {
		c, err := r.ResolveRevision(ctx, rev)
		if err != nil {
			t.Fatalf("resolve %s: %v", rev, err)
		}
		if want := gitOut(t, dir, "rev-parse", rev+"^{commit}"); c.SHA != want {
			t.Errorf("%s = %s, git says %s", rev, c.SHA, want)
		}
	}
	mb, err := r.MergeBase(ctx, "origin/snapshot", "origin/staging")
	if err != nil {
		t.Fatal(err)
	}
	if want := gitOut(t, dir, "merge-base", "origin/snapshot", "origin/staging"); mb != want {
		t.Errorf("merge base = %s, git says %s", mb, want)
	}
	root := gitOut(t, dir, "rev-parse", "origin/snapshot^{tree}")
	entries, err := r.Tree(ctx, root, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %s %s\t%s", e.Mode, e.Type, e.SHA, e.Path))
	}
	slicesSort(got)
	want := strings.Split(gitOut(t, dir, "ls-tree", "-r", "-t", root), "\n")
	slicesSort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recursive tree (-git +reader):\n%s", diff)
	}
	manifest := gitOut(t, dir, "rev-parse", "origin/snapshot:packages/pkg000/5.0.0/manifest.yml")
	data, err := r.Blob(ctx, manifest)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storagegen.Manifest("pkg000", "5.0.0"), string(data)); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
}

// TestCloneKinds reads the clones CI systems make: with alternates (--shared, --reference, relative
// paths), several packs, and a packed-refs file of 10,000 pull request refs.
func TestCloneKinds(t *testing.T) {
	src := cloneSource(t)
	tests := []struct {
		name  string
		clone func(t *testing.T, dst string)
		check func(t *testing.T, dst string)
	}{
		{name: "clone --shared", clone: func(t *testing.T, dst string) {
			gitRunT(t, src.Dir, "clone", "-q", "--shared", src.Dir, dst)
		}, check: hasAlternates},
		{name: "clone --reference", clone: func(t *testing.T, dst string) {
			gitRunT(t, src.Dir, "clone", "-q", "--reference", src.Dir, "file://"+src.Dir, dst)
		}, check: hasAlternates},
		{name: "bare clone --shared with a relative alternates path", clone: func(t *testing.T, dst string) {
			gitRunT(t, src.Dir, "clone", "-q", "--bare", "--shared", src.Dir, dst)
			rel, err := filepath.Rel(filepath.Join(dst, "objects"), filepath.Join(src.Dir, ".git", "objects"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, "objects", "info", "alternates"), []byte(rel+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// A bare clone has branches, not remote-tracking ones; name them as a CI clone would.
			for _, b := range []string{"snapshot", "staging", "production"} {
				gitRunT(t, dst, "update-ref", "refs/remotes/origin/"+b, "refs/heads/"+b)
			}
		}, check: hasAlternates},
		{name: "several packs", clone: func(t *testing.T, dst string) {
			gitRunT(t, src.Dir, "clone", "-q", "--no-local", src.Dir, dst)
			gitRunT(t, dst, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "more")
			gitRunT(t, dst, "repack", "-q") // packs the new loose objects into a second pack
		}, check: func(t *testing.T, dst string) {
			if packs, _ := filepath.Glob(filepath.Join(dst, ".git", "objects", "pack", "*.idx")); len(packs) < 2 {
				t.Fatalf("%d packs, want several", len(packs))
			}
		}},
		{name: "10,000 refs in packed-refs", clone: func(t *testing.T, dst string) {
			gitRunT(t, src.Dir, "clone", "-q", src.Dir, dst)
			head := gitOut(t, dst, "rev-parse", "origin/staging")
			var b strings.Builder
			for i := 1; i <= 10_000; i++ {
				fmt.Fprintf(&b, "create refs/pull/%d/head %s\n", i, head)
			}
			cmd := exec.Command("git", "-C", dst, "update-ref", "--stdin")
			cmd.Stdin = strings.NewReader(b.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("update-ref: %v: %s", err, out)
			}
			gitRunT(t, dst, "pack-refs", "--all")
		}, check: func(t *testing.T, dst string) {
			data, err := os.ReadFile(filepath.Join(dst, ".git", "packed-refs"))
			if err != nil || strings.Count(string(data), "refs/pull/") != 10_000 {
				t.Fatalf("packed-refs does not hold 10,000 pull refs: %v", err)
			}
			r := openLocal(t, dst)
			c, err := r.ResolveRevision(context.Background(), "refs/pull/9999/head")
			if err != nil || c.SHA != gitOut(t, dst, "rev-parse", "origin/staging") {
				t.Errorf("refs/pull/9999/head = %s, %v", c.SHA, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "clone")
			tc.clone(t, dst)
			tc.check(t, dst)
			readsLikeGit(t, dst)
		})
	}
}

func hasAlternates(t *testing.T, dst string) {
	t.Helper()
	for _, p := range []string{filepath.Join(dst, ".git", "objects", "info", "alternates"), filepath.Join(dst, "objects", "info", "alternates")} {
		if _, err := os.Stat(p); err == nil {
			if packs, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(p)), "pack", "*.pack")); len(packs) != 0 {
				t.Fatalf("the clone has its own packs %v; want every object read through alternates", packs)
			}
			return
		}
	}
	t.Fatal("the clone has no alternates file")
}

// TestShallowClone: what a depth-1 clone holds is read; a question whose answer lies past the shallow
// boundary fails naming `git fetch --unshallow` instead of answering from truncated history.
func TestShallowClone(t *testing.T) {
	src := cloneSource(t)
	dst := filepath.Join(t.TempDir(), "clone")
	gitRunT(t, src.Dir, "clone", "-q", "--depth", "1", "--no-single-branch", "file://"+src.Dir, dst)
	gitRunT(t, dst, "checkout", "-q", "-b", "feature", "origin/production")
	gitRunT(t, dst, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "change")
	r := openLocal(t, dst)
	ctx := context.Background()

	mb, err := r.MergeBase(ctx, "origin/production", "HEAD")
	if err != nil {
		t.Fatalf("merge base of a branch and the commit it was cut from, both present: %v", err)
	}
	if want := gitOut(t, dst, "rev-parse", "origin/production"); mb != want {
		t.Errorf("merge base = %s, want %s", mb, want)
	}
	for name, call := range map[string]func() error{
		"merge base past the boundary": func() error { _, err := r.MergeBase(ctx, "origin/snapshot", "origin/staging"); return err },
		"parent of a boundary commit":  func() error { _, err := r.ResolveRevision(ctx, "origin/snapshot~1"); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			if !errors.Is(err, ErrShallow) || !strings.Contains(err.Error(), "git fetch --unshallow") {
				t.Fatalf("error = %v, want ErrShallow naming git fetch --unshallow", err)
			}
		})
	}
}

// TestPartialClone: a blob a --filter=blob:none clone lacks is fetched through git when git is on PATH;
// without git the error says what the repository is and what to do.
func TestPartialClone(t *testing.T) {
	src := cloneSource(t)
	dst := filepath.Join(t.TempDir(), "clone.git")
	gitRunT(t, src.Dir, "clone", "-q", "--bare", "--filter=blob:none", "file://"+src.Dir, dst)
	manifest := func(pkg string) string {
		return gitOut(t, src.Dir, "rev-parse", "snapshot:packages/"+pkg+"/5.0.0/manifest.yml")
	}
	// Listing what is on disk (cat-file -e would fetch the object).
	local := gitOut(t, dst, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
	for _, pkg := range []string{"pkg000", "pkg001"} {
		if strings.Contains(local, manifest(pkg)) {
			t.Fatalf("the partial clone already has the manifest of %s", pkg)
		}
	}
	ctx := context.Background()

	t.Run("git on PATH fetches", func(t *testing.T) {
		r := openLocal(t, dst)
		data, err := r.Blob(ctx, manifest("pkg000"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(storagegen.Manifest("pkg000", "5.0.0"), string(data)); diff != "" {
			t.Errorf("manifest (-want +got):\n%s", diff)
		}
	})
	t.Run("no git on PATH", func(t *testing.T) {
		sha := manifest("pkg001")
		t.Setenv("PATH", t.TempDir())
		r := openLocal(t, dst)
		_, err := r.Blob(ctx, sha)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "partial clone") || !strings.Contains(err.Error(), "git is not on PATH") {
			t.Fatalf("error = %v, want ErrNotFound saying the partial clone needs git", err)
		}
	})
}
