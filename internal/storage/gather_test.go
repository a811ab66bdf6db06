package storage

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/storagebot/storagebot/internal/storagegen"
	"github.com/storagebot/storagebot/policy"
)

// changeView is the part of a policy.Change a test states by hand; tree SHAs are checked against git.
type changeView struct {
	Package, Version string
	Kind             policy.ChangeKind
	Paths            []string
	Manifest         bool
	ChannelVersions  []string
	// Others maps each channel holding the version to whether its copy is identical.
	Others map[string]bool
}

type gatherView struct {
	Changes  []changeView
	Layout   []policy.LayoutProblem
	Touched  bool
	Registry [2]string // Dockerfile, go.mod at head when touched
}

func view(in policy.Input) gatherView {
	v := gatherView{Layout: in.Layout, Touched: in.Registry.Touched, Registry: [2]string{string(in.Registry.Dockerfile), string(in.Registry.GoMod)}}
	for _, c := range in.Changes {
		cv := changeView{Package: c.Package, Version: c.Version, Kind: c.Kind, Paths: c.Paths, Manifest: c.Manifest.Present,
			ChannelVersions: c.ChannelVersions, Others: map[string]bool{}}
		for name, cp := range c.Others {
			cv.Others[name] = cp.Identical
		}
		v.Changes = append(v.Changes, cv)
	}
	return v
}

func versionFiles(pkg, version string) []string {
	dir := "packages/" + pkg + "/" + version + "/"
	return []string{dir + "data_stream/ds00/fields/fields003.yml", dir + "data_stream/ds00/fields/fields004.yml", dir + "docs/README.md", dir + "img/logo.svg", dir + "manifest.yml"}
}

func TestGather(t *testing.T) {
	const readme = "packages/pkg001/1.0.0/docs/README.md"
	snapshotReq := Request{Channel: "snapshot", Base: "snapshot", Head: "pr", Others: map[string]string{"staging": "staging", "production": "production"}}
	tests := []struct {
		name string
		// setup makes the scenario on a fresh generated storage (pkg000…pkg002 at 1.0.0 and 1.1.0 on every
		// channel, branch pr at snapshot) and returns the request.
		setup func(t *testing.T, repo *storagegen.Repo) Request
		want  gatherView
	}{
		{
			name: "version added",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.AddVersion("pr", "pkg000", "2.0.0"))
				return snapshotReq
			},
			want: gatherView{Changes: []changeView{{Package: "pkg000", Version: "2.0.0", Kind: policy.Added, Paths: versionFiles("pkg000", "2.0.0"),
				Manifest: true, ChannelVersions: []string{"1.0.0", "1.1.0"}, Others: map[string]bool{}}}},
		},
		{
			name: "file modified",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.ModifyFile("pr", readme, []byte("new\n")))
				return snapshotReq
			},
			want: gatherView{Changes: []changeView{{Package: "pkg001", Version: "1.0.0", Kind: policy.Modified, Paths: []string{readme},
				Manifest: true, ChannelVersions: []string{"1.0.0", "1.1.0"}, Others: map[string]bool{"staging": false, "production": false}}}},
		},
		{
			name: "version removed",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.RemoveVersion("pr", "pkg002", "1.1.0"))
				return snapshotReq
			},
			want: gatherView{Changes: []changeView{{Package: "pkg002", Version: "1.1.0", Kind: policy.Removed,
				ChannelVersions: []string{"1.0.0", "1.1.0"}, Others: map[string]bool{"staging": true, "production": true}}}},
		},
		{
			name: "file mode flipped only",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				blob := must[string](t)(repo.TreeSHA("snapshot", readme))
				data := must[[]byte](t)(openLocal(t, repo.Dir).Blob(context.Background(), blob))
				must[string](t)(repo.Commit("pr", "chmod", storagegen.PutMode(readme, "100755", data)))
				if must[string](t)(repo.TreeSHA("pr", readme)) != blob {
					t.Fatal("set-up changed the contents, not only the mode")
				}
				if must[string](t)(repo.TreeSHA("pr", "packages/pkg001/1.0.0")) == must[string](t)(repo.TreeSHA("snapshot", "packages/pkg001/1.0.0")) {
					t.Fatal("set-up left the version tree unchanged")
				}
				return snapshotReq
			},
			want: gatherView{},
		},
		{
			name: "base moved on after the branch point",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.AddVersion("pr", "pkg001", "2.0.0"))
				must[string](t)(repo.RemoveVersion("snapshot", "pkg000", "1.0.0"))
				must[string](t)(repo.ModifyFile("snapshot", readme, []byte("base edit\n")))
				return snapshotReq
			},
			want: gatherView{Changes: []changeView{{Package: "pkg001", Version: "2.0.0", Kind: policy.Added, Paths: versionFiles("pkg001", "2.0.0"),
				Manifest: true, ChannelVersions: []string{"1.0.0", "1.1.0"}, Others: map[string]bool{}}}},
		},
		{
			name: "same version already at base",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.AddVersion("pr", "pkg001", "2.0.0"))
				must[string](t)(repo.CopyVersion("pr", "snapshot", "pkg001", "2.0.0"))
				return snapshotReq
			},
			want: gatherView{},
		},
		{
			name: "promotion from snapshot to staging",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.AddVersion("snapshot", "pkg000", "2.0.0"))
				if err := repo.Branch("promote", "staging"); err != nil {
					t.Fatal(err)
				}
				must[string](t)(repo.CopyVersion("snapshot", "promote", "pkg000", "2.0.0"))
				return Request{Channel: "staging", Base: "staging", Head: "promote", Others: map[string]string{"snapshot": "snapshot", "production": "production"}}
			},
			want: gatherView{Changes: []changeView{{Package: "pkg000", Version: "2.0.0", Kind: policy.Added, Paths: versionFiles("pkg000", "2.0.0"),
				Manifest: true, ChannelVersions: []string{"1.0.0", "1.1.0"}, Others: map[string]bool{"snapshot": true}}}},
		},
		{
			name: "symlink and submodule in a version",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				head := must[string](t)(repo.Head("snapshot"))
				must[string](t)(repo.Commit("pr", "links",
					storagegen.PutMode("packages/pkg000/1.0.0/docs/link.md", "120000", []byte("README.md")),
					storagegen.Gitlink("packages/pkg000/1.0.0/vendor", head)))
				return snapshotReq
			},
			want: gatherView{
				Changes: []changeView{{Package: "pkg000", Version: "1.0.0", Kind: policy.Modified,
					Paths:    []string{"packages/pkg000/1.0.0/docs/link.md", "packages/pkg000/1.0.0/vendor"},
					Manifest: true, ChannelVersions: []string{"1.0.0", "1.1.0"}, Others: map[string]bool{"staging": false, "production": false}}},
				Layout: []policy.LayoutProblem{
					{Path: "packages/pkg000/1.0.0/docs/link.md", Kind: "symlink", Package: "pkg000", Version: "1.0.0"},
					{Path: "packages/pkg000/1.0.0/vendor", Kind: "submodule", Package: "pkg000", Version: "1.0.0"},
				},
			},
		},
		{
			name: "files where package and version directories should be",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.Commit("pr", "stray files",
					storagegen.Put("packages/notes.txt", []byte("x")),
					storagegen.Put("packages/pkg002/README.md", []byte("x"))))
				return snapshotReq
			},
			want: gatherView{Layout: []policy.LayoutProblem{
				{Path: "packages/notes.txt", Kind: "not-a-directory", Package: "notes.txt"},
				{Path: "packages/pkg002/README.md", Kind: "not-a-directory", Package: "pkg002", Version: "README.md"},
			}},
		},
		{
			name: "manifest removed",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.Commit("pr", "no manifest", storagegen.Delete("packages/pkg000/1.1.0/manifest.yml")))
				return snapshotReq
			},
			want: gatherView{Changes: []changeView{{Package: "pkg000", Version: "1.1.0", Kind: policy.Modified,
				ChannelVersions: []string{"1.0.0", "1.1.0"}, Others: map[string]bool{"staging": false, "production": false}}}},
		},
		{
			name: "Dockerfile touched",
			setup: func(t *testing.T, repo *storagegen.Repo) Request {
				must[string](t)(repo.ModifyFile("pr", "Dockerfile", []byte(storagegen.Dockerfile("v1.16.0"))))
				return snapshotReq
			},
			want: gatherView{Touched: true, Registry: [2]string{storagegen.Dockerfile("v1.16.0"), storagegen.GoMod("v1.15.0")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := generate(t, storagegen.Options{})
			if err := repo.Branch("pr", "snapshot"); err != nil {
				t.Fatal(err)
			}
			req := tc.setup(t, repo)
			r := openLocal(t, repo.Dir)
			res, err := Gather(context.Background(), r, req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, view(res.Input), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("gathered input (-want +got):\n%s", diff)
			}
			str := must[string](t)
			if res.Base != str(repo.Head(req.Base)) || res.Head != str(repo.Head(req.Head)) {
				t.Errorf("base, head = %s, %s; want the heads of %s and %s", res.Base, res.Head, req.Base, req.Head)
			}
			if want := str(gitCmd(repo.Dir, "merge-base", req.Base, req.Head)); res.MergeBase != want {
				t.Errorf("merge base = %s, want %s", res.MergeBase, want)
			}
			for _, c := range res.Input.Changes {
				side := req.Head
				if c.Kind == policy.Removed {
					side = req.Base
				}
				if want := str(repo.TreeSHA(side, VersionPath(c.Package, c.Version))); c.Tree != want {
					t.Errorf("%s@%s: tree = %s, want %s (at %s)", c.Package, c.Version, c.Tree, want, side)
				}
				if c.Kind != policy.Added && c.BaseTree != str(repo.TreeSHA(req.Base, VersionPath(c.Package, c.Version))) {
					t.Errorf("%s@%s: base tree = %s, want the tree at %s", c.Package, c.Version, c.BaseTree, req.Base)
				}
				for name, cp := range c.Others {
					if want := str(repo.TreeSHA(req.Others[name], VersionPath(c.Package, c.Version))); cp.TreeSHA != want {
						t.Errorf("%s@%s in %s: tree = %s, want %s", c.Package, c.Version, name, cp.TreeSHA, want)
					}
				}
			}
		})
	}
}
