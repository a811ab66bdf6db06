package storage

import (
	"context"
	"slices"
	"testing"

	"github.com/storagebot/storagebot/internal/storagegen"
)

func slicesSort(s []string) { slices.Sort(s) }

func TestIdentical(t *testing.T) {
	str := must[string](t)
	repo := generate(t, storagegen.Options{})
	r := openLocal(t, repo.Dir)
	const v = "packages/pkg000/1.0.0"
	orig := str(repo.TreeSHA("production", v))
	readme := must[[]byte](t)(r.Blob(context.Background(), str(repo.TreeSHA("production", v+"/docs/README.md"))))
	// Each case builds a variant of packages/pkg000/1.0.0 on its own branch and compares it to the original.
	tests := []struct {
		name string
		ops  []storagegen.Op
		want bool
	}{
		{name: "same tree", want: true},
		{name: "file mode flipped to executable", ops: []storagegen.Op{storagegen.PutMode(v+"/docs/README.md", "100755", readme)}, want: true},
		{name: "content changed deep", ops: []storagegen.Op{storagegen.Put(v+"/data_stream/ds00/fields/fields003.yml", []byte("x"))}, want: false},
		{name: "file added", ops: []storagegen.Op{storagegen.Put(v+"/docs/extra.md", []byte("x"))}, want: false},
		{name: "file removed", ops: []storagegen.Op{storagegen.Delete(v + "/img/logo.svg")}, want: false},
		{name: "file renamed", ops: []storagegen.Op{storagegen.Delete(v + "/docs/README.md"), storagegen.Put(v+"/docs/README2.md", readme)}, want: false},
		{name: "file replaced by symlink with same contents", ops: []storagegen.Op{storagegen.PutMode(v+"/docs/README.md", "120000", readme)}, want: false},
		{name: "directory replaced by file", ops: []storagegen.Op{storagegen.Delete(v + "/docs"), storagegen.Put(v+"/docs", readme)}, want: false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			branch := "variant" + string(rune('a'+i))
			if err := repo.Branch(branch, "production"); err != nil {
				t.Fatal(err)
			}
			if len(tc.ops) > 0 {
				str(repo.Commit(branch, tc.name, tc.ops...))
			}
			variant := str(repo.TreeSHA(branch, v))
			if (variant == orig) != (len(tc.ops) == 0) {
				t.Fatalf("variant tree %s vs original %s: the case does not build the variant it names", variant, orig)
			}
			for _, order := range [][2]string{{orig, variant}, {variant, orig}} {
				got, err := Identical(context.Background(), r, order[0], order[1])
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("Identical(%s, %s) = %v, want %v", order[0], order[1], got, tc.want)
				}
			}
		})
	}
}
