package githubfake

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/utils/merkletrie"
	"github.com/google/go-cmp/cmp"
)

// goGitDiff is the reference diffTrees is checked against: go-git's own tree diff, which reads every
// subtree but is not in doubt.
func goGitDiff(t *testing.T, r *Repo, a, b plumbing.Hash) []fileChange {
	t.Helper()
	ta, tb := &object.Tree{}, &object.Tree{}
	var err error
	if !a.IsZero() {
		if ta, err = object.GetTree(r.st, a); err != nil {
			t.Fatal(err)
		}
	}
	if !b.IsZero() {
		if tb, err = object.GetTree(r.st, b); err != nil {
			t.Fatal(err)
		}
	}
	changes, err := object.DiffTree(ta, tb)
	if err != nil {
		t.Fatal(err)
	}
	var out []fileChange
	for _, ch := range changes {
		action, err := ch.Action()
		if err != nil {
			t.Fatal(err)
		}
		fc := fileChange{}
		switch action {
		case merkletrie.Insert:
			fc.filename, fc.status, fc.sha = ch.To.Name, "added", ch.To.TreeEntry.Hash.String()
		case merkletrie.Delete:
			fc.filename, fc.status, fc.sha = ch.From.Name, "removed", ch.From.TreeEntry.Hash.String()
		default:
			fc.filename, fc.status, fc.sha = ch.To.Name, "modified", ch.To.TreeEntry.Hash.String()
			fc.previousSHA = ch.From.TreeEntry.Hash.String()
		}
		fc.additions, fc.deletions = lineCounts(r.st, ch)
		out = append(out, fc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].filename < out[j].filename })
	return out
}

func (r *Repo) treeOf(t *testing.T, branch string) plumbing.Hash {
	t.Helper()
	c, err := object.GetCommit(r.st, r.branches[branch])
	if err != nil {
		t.Fatal(err)
	}
	return c.TreeHash
}

// TestDiffTreesMatchesGoGit checks the top-down diff against go-git's on random histories: files added,
// edited, removed, made executable or symlinks, directories replaced by files and files by directories.
func TestDiffTreesMatchesGoGit(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	r := s.CreateRepo("o", "r", "main")
	rng := rand.New(rand.NewPCG(1, 2))
	paths := []string{"a", "b/c", "b/d/e", "b/d/f", "packages/x/1.0.0/manifest.yml", "packages/x/1.0.0/docs/README.md",
		"packages/y/2.0.0/manifest.yml", "packages/y/2.0.0/img/logo.svg", "z/y/x/w"}
	if _, err := r.Commit("main", "init", map[string]*File{"packages/x/1.0.0/manifest.yml": {Content: []byte("name: x\n")}}); err != nil {
		t.Fatal(err)
	}
	trees := []plumbing.Hash{plumbing.ZeroHash, r.treeOf(t, "main")}
	for step := 0; step < 60; step++ {
		changes := map[string]*File{}
		for i := 0; i < 1+rng.IntN(4); i++ {
			p := paths[rng.IntN(len(paths))]
			switch rng.IntN(6) {
			case 0:
				changes[p] = nil // delete
			case 1:
				changes[p] = &File{Content: []byte(fmt.Sprintf("line\nstep %d\n", step)), Mode: "100755"}
			case 2:
				changes[p] = &File{Content: []byte("target"), Mode: "120000"}
			case 3:
				// Replace a directory by a file, or a file by a directory.
				if rng.IntN(2) == 0 {
					changes["b"] = &File{Content: []byte("b is a file now\n")}
				} else {
					changes["a/inner"] = &File{Content: []byte("a is a directory now\n")}
				}
			default:
				changes[p] = &File{Content: []byte(fmt.Sprintf("line\nstep %d %d\nline\n", step, i))}
			}
		}
		if _, err := r.Commit("main", fmt.Sprintf("step %d", step), changes); err != nil {
			continue // e.g. a file below a path that is a file: not a tree the fake can build
		}
		trees = append(trees, r.treeOf(t, "main"))
	}
	if len(trees) < 40 {
		t.Fatalf("only %d of 60 random commits could be built; the comparison needs more histories", len(trees)-2)
	}
	for i := range trees {
		for _, j := range []int{0, i / 2, len(trees) - 1 - i} {
			a, b := trees[j], trees[i]
			got, err := diffTrees(r.st, a, b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(goGitDiff(t, r, a, b), got, cmp.AllowUnexported(fileChange{})); diff != "" {
				t.Fatalf("diffTrees(%d, %d) differs from go-git's (-go-git +diffTrees):\n%s", j, i, diff)
			}
		}
	}
}
