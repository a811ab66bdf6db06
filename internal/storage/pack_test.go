package storage

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/storagebot/storagebot/internal/storagegen"
)

// TestPackedObjects reads every object of repositories packed in different ways through the lazy pack
// reader and compares it with `git cat-file`.
func TestPackedObjects(t *testing.T) {
	tests := []struct {
		name string
		// pack rewrites the object database after the commits.
		pack       func(t *testing.T, dir string)
		wantDeltas bool
	}{
		{name: "fast-import packs", pack: func(*testing.T, string) {}},
		{name: "repacked with delta chains", wantDeltas: true, pack: func(t *testing.T, dir string) {
			gitRunT(t, dir, "repack", "-a", "-d", "-f", "--window=50", "--depth=50")
		}},
		{name: "repacked with deltas by reference", wantDeltas: true, pack: func(t *testing.T, dir string) {
			gitRunT(t, dir, "-c", "repack.useDeltaBaseOffset=false", "repack", "-a", "-d", "-f", "--window=50", "--depth=50")
		}},
		{name: "loose objects", pack: func(t *testing.T, dir string) {
			gitRunT(t, dir, "repack", "-a", "-d")
			packs := must[[]string](t)(filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*")))
			aside := t.TempDir()
			var pack string
			for _, f := range packs {
				moved := filepath.Join(aside, filepath.Base(f))
				if err := os.Rename(f, moved); err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(f, ".pack") {
					pack = moved
				}
			}
			in, err := os.Open(pack)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if left := must[[]string](t)(filepath.Glob(filepath.Join(dir, "objects", "pack", "*.idx"))); len(left) != 0 {
				t.Fatalf("packs left: %v", left)
			}
			cmd := exec.Command("git", "-C", dir, "unpack-objects", "-q")
			cmd.Stdin = in
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("unpack-objects: %v: %s", err, out)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := generate(t, storagegen.Options{Bare: true, FileSize: 2048})
			readme := "packages/pkg000/1.0.0/docs/README.md"
			content := bytes.Repeat([]byte("line of documentation\n"), 200)
			for i := range 5 {
				content = append(content, []byte("another paragraph\n")...)
				must[string](t)(repo.ModifyFile("snapshot", readme, append([]byte(nil), content[i:]...)))
			}
			tc.pack(t, repo.Dir)
			if tc.wantDeltas {
				out := must[string](t)(gitCmd(repo.Dir, "count-objects", "-v"))
				if !strings.Contains(out, "packs: 1") {
					t.Fatalf("want one pack after repack:\n%s", out)
				}
				idx := must[[]string](t)(filepath.Glob(filepath.Join(repo.Dir, "objects", "pack", "*.idx")))
				verify := must[string](t)(gitCmd(repo.Dir, "verify-pack", "-v", idx[0]))
				if !strings.Contains(verify, "chain length = 2") {
					t.Fatalf("repack made no delta chains:\n%s", verify)
				}
			}
			r := openLocal(t, repo.Dir)
			objects := strings.Fields(must[string](t)(gitCmd(repo.Dir, "rev-list", "--objects", "--no-object-names", "--all")))
			if len(objects) < 30 {
				t.Fatalf("only %d objects listed", len(objects))
			}
			oracle := catFile(t, repo.Dir, objects)
			for _, sha := range objects {
				h, _ := parseOID(sha)
				typ, data, err := r.objects.read(context.Background(), h)
				if err != nil {
					t.Fatalf("read %s: %v", sha, err)
				}
				want := oracle[sha]
				if typ.String() != want.typ || !bytes.Equal(data, want.data) {
					t.Errorf("object %s: got %s of %d bytes, want %s of %d bytes", sha, typ, len(data), want.typ, len(want.data))
				}
			}
		})
	}
}

type gitObject struct {
	typ  string
	data []byte
}

// catFile reads objects with `git cat-file --batch`, the oracle for the reader.
func catFile(t *testing.T, dir string, shas []string) map[string]gitObject {
	t.Helper()
	cmd := exec.Command("git", "-C", dir, "cat-file", "--batch")
	cmd.Stdin = strings.NewReader(strings.Join(shas, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git cat-file: %v", err)
	}
	objects := map[string]gitObject{}
	for len(out) > 0 {
		header, rest, _ := bytes.Cut(out, []byte("\n"))
		f := strings.Fields(string(header))
		if len(f) != 3 {
			t.Fatalf("git cat-file: unexpected header %q", header)
		}
		n := must[int](t)(strconv.Atoi(f[2]))
		objects[f[0]] = gitObject{typ: f[1], data: rest[:n]}
		out = rest[n+1:]
	}
	return objects
}

func gitRunT(t *testing.T, dir string, args ...string) {
	t.Helper()
	if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
}
