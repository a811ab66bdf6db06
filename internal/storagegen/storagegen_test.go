package storagegen

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func TestGenerate(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		wantFiles int
		wantBare  string
	}{
		{name: "defaults", opts: Options{}, wantFiles: 2 + 3*2*5, wantBare: "false"},
		{name: "bare", opts: Options{Bare: true, Packages: 2, VersionsPerPackage: 3, FilesPerVersion: 4}, wantFiles: 2 + 2*3*4, wantBare: "true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := Generate(dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := gitOut(t, dir, "rev-parse", "--is-bare-repository"); got != tc.wantBare {
				t.Errorf("bare = %s, want %s", got, tc.wantBare)
			}
			files := strings.Split(gitOut(t, dir, "ls-tree", "-r", "--name-only", "production"), "\n")
			if len(files) != tc.wantFiles {
				t.Errorf("production has %d files, want %d", len(files), tc.wantFiles)
			}
			var heads []string
			for _, b := range Channels {
				h, err := r.Head(b)
				if err != nil {
					t.Fatal(err)
				}
				heads = append(heads, h)
			}
			if heads[0] != heads[1] || heads[1] != heads[2] {
				t.Errorf("channel heads differ: %v", heads)
			}
			manifest := gitOut(t, dir, "show", "production:packages/pkg000/1.0.0/manifest.yml")
			if !strings.Contains(manifest, "name: pkg000\n") || !strings.Contains(manifest, "version: 1.0.0\n") {
				t.Errorf("manifest lacks name or version:\n%s", manifest)
			}
			if got := gitOut(t, dir, "show", "production:Dockerfile"); !strings.Contains(got, "ARG PACKAGE_REGISTRY=v1.15.0") {
				t.Errorf("Dockerfile does not pin v1.15.0:\n%s", got)
			}
			if got := gitOut(t, dir, "show", "production:go.mod"); !strings.Contains(got, "github.com/elastic/package-registry v1.15.0") {
				t.Errorf("go.mod does not require v1.15.0:\n%s", got)
			}
		})
	}
}

func TestGenerateDeterministic(t *testing.T) {
	heads := map[uint64][]string{}
	for _, seed := range []uint64{1, 1, 2} {
		r, err := Generate(t.TempDir(), Options{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		h, err := r.Head("production")
		if err != nil {
			t.Fatal(err)
		}
		heads[seed] = append(heads[seed], h)
	}
	if diff := cmp.Diff(heads[1][0], heads[1][1]); diff != "" {
		t.Errorf("same seed, different commits (-first +second):\n%s", diff)
	}
	if heads[1][0] == heads[2][0] {
		t.Errorf("seeds 1 and 2 gave the same commit %s", heads[1][0])
	}
}

func TestChanges(t *testing.T) {
	dir := t.TempDir()
	r, err := Generate(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() (string, error)
		want string // git diff --name-status of the commit against its parent, first line
	}{
		{name: "add version", do: func() (string, error) { return r.AddVersion("snapshot", "pkg001", "9.0.0") }, want: "A\tpackages/pkg001/9.0.0/data_stream/ds00/fields/fields003.yml"},
		{name: "modify file", do: func() (string, error) {
			return r.ModifyFile("snapshot", "packages/pkg000/1.0.0/docs/README.md", []byte("changed\n"))
		}, want: "M\tpackages/pkg000/1.0.0/docs/README.md"},
		{name: "remove version", do: func() (string, error) { return r.RemoveVersion("staging", "pkg002", "1.1.0") }, want: "D\tpackages/pkg002/1.1.0/data_stream/ds00/fields/fields003.yml"},
		{name: "copy version", do: func() (string, error) { return r.CopyVersion("snapshot", "staging", "pkg001", "9.0.0") }, want: "A\tpackages/pkg001/9.0.0/data_stream/ds00/fields/fields003.yml"},
		{name: "symlink", do: func() (string, error) {
			return r.Commit("snapshot", "link", PutMode("packages/pkg000/1.0.0/link", "120000", []byte("docs/README.md")))
		}, want: "A\tpackages/pkg000/1.0.0/link"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			sha, err := s.do()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(gitOut(t, dir, "diff", "--name-status", sha+"^", sha), "\n")[0]
			if diff := cmp.Diff(s.want, got); diff != "" {
				t.Errorf("first changed path (-want +got):\n%s", diff)
			}
		})
	}
	snap, err := r.TreeSHA("snapshot", "packages/pkg001/9.0.0")
	if err != nil {
		t.Fatal(err)
	}
	staging, err := r.TreeSHA("staging", "packages/pkg001/9.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if snap != staging {
		t.Errorf("promoted copy has tree %s, source %s", staging, snap)
	}
}
