package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storagebot/storagebot/internal/storagegen"
)

func generate(t *testing.T, opts storagegen.Options) *storagegen.Repo {
	t.Helper()
	repo, err := storagegen.Generate(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func openLocal(t *testing.T, dir string) *LocalReader {
	t.Helper()
	r, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// must returns a function that fails t on an error and otherwise returns the value, for one-line set-ups.
func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestLocalReaderResolveRevision(t *testing.T) {
	str := must[string](t)
	for _, bare := range []bool{false, true} {
		repo := generate(t, storagegen.Options{Bare: bare})
		prod := str(repo.Head("production"))
		feature := str(repo.AddVersion("feature", "pkg000", "5.0.0"))
		// A remote-tracking branch with no local branch of that name, as in a CI clone: git rev-parse needs
		// origin/ci-only, as the reader does.
		remote := str(repo.AddVersion("snapshot", "pkg001", "5.0.0"))
		if out, err := exec.Command("git", "-C", repo.Dir, "update-ref", "refs/remotes/origin/ci-only", remote).CombinedOutput(); err != nil {
			t.Fatalf("update-ref: %v: %s", err, out)
		}
		r := openLocal(t, repo.Dir)
		tests := []struct {
			name    string
			rev     string
			want    string
			wantErr string
		}{
			{name: "branch", rev: "production", want: prod},
			{name: "branch with own commit", rev: "feature", want: feature},
			{name: "remote-tracking branch", rev: "origin/ci-only", want: remote},
			{name: "remote-tracking branch needs its remote", rev: "ci-only", wantErr: `"ci-only"`},
			{name: "full ref", rev: "refs/heads/feature", want: feature},
			{name: "full sha", rev: prod, want: prod},
			{name: "short sha", rev: feature[:10], want: feature},
			{name: "unknown branch", rev: "no-such-branch", wantErr: `"no-such-branch"`},
			{name: "unknown sha", rev: strings.Repeat("0", 40), wantErr: strings.Repeat("0", 40)},
		}
		for _, tc := range tests {
			t.Run(map[bool]string{false: "worktree/", true: "bare/"}[bare]+tc.name, func(t *testing.T) {
				c, err := r.ResolveRevision(context.Background(), tc.rev)
				if tc.wantErr != "" {
					if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("error = %v, want ErrNotFound naming %s", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, c.SHA); diff != "" {
					t.Errorf("commit (-want +got):\n%s", diff)
				}
				if c.TreeSHA != str(repo.TreeSHA(tc.want, "")) {
					t.Errorf("tree = %s, want the commit's root tree", c.TreeSHA)
				}
			})
		}
	}
}

func TestLocalReaderMergeBaseTreeBlob(t *testing.T) {
	str := must[string](t)
	repo := generate(t, storagegen.Options{})
	fork := str(repo.Head("snapshot"))
	str(repo.AddVersion("snapshot", "pkg000", "5.0.0"))
	str(repo.AddVersion("staging", "pkg001", "5.0.0"))
	r := openLocal(t, repo.Dir)
	ctx := context.Background()

	mb := str(r.MergeBase(ctx, "snapshot", "staging"))
	if diff := cmp.Diff(fork, mb); diff != "" {
		t.Errorf("merge base (-want +got):\n%s", diff)
	}

	versionTree := str(repo.TreeSHA("snapshot", "packages/pkg000/5.0.0"))
	entries := must[[]TreeEntry](t)(r.Tree(ctx, versionTree, true))
	var paths []string
	for _, e := range entries {
		paths = append(paths, string(e.Type)+" "+e.Mode+" "+e.Path)
	}
	want := []string{
		"blob 100644 data_stream/ds00/fields/fields003.yml",
		"blob 100644 data_stream/ds00/fields/fields004.yml",
		"tree 040000 data_stream",
		"tree 040000 data_stream/ds00",
		"tree 040000 data_stream/ds00/fields",
		"tree 040000 docs",
		"blob 100644 docs/README.md",
		"tree 040000 img",
		"blob 100644 img/logo.svg",
		"blob 100644 manifest.yml",
	}
	slicesSort(paths)
	slicesSort(want)
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("recursive tree (-want +got):\n%s", diff)
	}
	manifest := str(repo.TreeSHA("snapshot", "packages/pkg000/5.0.0/manifest.yml"))
	if diff := cmp.Diff(storagegen.Manifest("pkg000", "5.0.0"), string(must[[]byte](t)(r.Blob(ctx, manifest)))); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	if _, err := r.Tree(ctx, strings.Repeat("1", 40), false); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tree: error = %v, want ErrNotFound", err)
	}
}

func gitCmd(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}

func TestReadFile(t *testing.T) {
	repo := generate(t, storagegen.Options{})
	must[string](t)(repo.Commit("production", "config", storagegen.Put(".github/storagebot.yml", []byte("fix_titles: true\n"))))
	r := openLocal(t, repo.Dir)
	root := must[string](t)(repo.TreeSHA("production", ""))
	tests := []struct {
		name      string
		path      string
		want      string
		wantFound bool
	}{
		{name: "nested file", path: ".github/storagebot.yml", want: "fix_titles: true\n", wantFound: true},
		{name: "root file", path: "go.mod", want: storagegen.GoMod("v1.15.0"), wantFound: true},
		{name: "missing file", path: ".github/other.yml"},
		{name: "missing directory", path: "nope/storagebot.yml"},
		{name: "directory, not a file", path: ".github"},
		{name: "file used as a directory", path: "go.mod/x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, found, err := ReadFile(context.Background(), r, root, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if found != tc.wantFound {
				t.Errorf("found = %v, want %v", found, tc.wantFound)
			}
			if diff := cmp.Diff(tc.want, string(data)); diff != "" {
				t.Errorf("contents (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenLocal(t *testing.T) {
	worktree := generate(t, storagegen.Options{})
	bare := generate(t, storagegen.Options{Bare: true})
	sub := worktree.Dir + "/packages/deep"
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr bool
	}{
		{name: "work tree", path: worktree.Dir},
		{name: "directory inside a work tree", path: sub},
		{name: "git directory of a work tree", path: worktree.Dir + "/.git"},
		{name: "bare repository", path: bare.Dir},
		{name: "not a repository", path: t.TempDir(), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := OpenLocal(tc.path)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.path) {
					t.Fatalf("error = %v, want one naming %s", err, tc.path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.ResolveRevision(context.Background(), "production"); err != nil {
				t.Errorf("resolve production: %v", err)
			}
		})
	}
}
