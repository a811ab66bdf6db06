package storage

import (
	"context"
	"fmt"
	"testing"
)

// memTrees is a Reader over trees held in memory (only Tree is used by tree identity).
type memTrees map[string][]TreeEntry

func (m memTrees) ResolveRevision(context.Context, string) (Commit, error) {
	return Commit{}, ErrNotFound
}
func (m memTrees) MergeBase(context.Context, string, string) (string, error) { return "", ErrNotFound }
func (m memTrees) Blob(context.Context, string) ([]byte, error)              { return nil, ErrNotFound }
func (m memTrees) Tree(ctx context.Context, sha string, recursive bool) ([]TreeEntry, error) {
	entries, ok := m[sha]
	if !ok {
		return nil, fmt.Errorf("tree %s: %w", sha, ErrNotFound)
	}
	if !recursive {
		return entries, nil
	}
	var out []TreeEntry
	for _, e := range entries {
		out = append(out, e)
		if e.Type == TypeTree {
			sub, err := m.Tree(ctx, e.SHA, true)
			if err != nil {
				return nil, err
			}
			for _, s := range sub {
				s.Path = e.Path + "/" + s.Path
				out = append(out, s)
			}
		}
	}
	return out, nil
}

func blob(path, sha string) TreeEntry {
	return TreeEntry{Path: path, Type: TypeBlob, Mode: "100644", SHA: sha}
}
func dir(path, sha string) TreeEntry {
	return TreeEntry{Path: path, Type: TypeTree, Mode: "040000", SHA: sha}
}

// TestTreeIdentityAgrees holds the two ways storagebot compares copies of a version to one rule (same paths,
// same contents, regular file modes and empty directories ignored): Identical, which reads trees level by
// level (promotion, follow-up, reconcile), and the comparison of recursive listings the check gathers with.
func TestTreeIdentityAgrees(t *testing.T) {
	trees := memTrees{
		"empty":      nil,
		"docs":       {blob("README.md", "b1")},
		"docs-exec":  {{Path: "README.md", Type: TypeBlob, Mode: "100755", SHA: "b1"}},
		"docs-link":  {{Path: "README.md", Type: TypeBlob, Mode: ModeSymlink, SHA: "b1"}},
		"docs-other": {blob("README.md", "b2")},
		"only-empty": {dir("nothing", "empty")},

		"v":              {blob("manifest.yml", "m"), dir("docs", "docs")},
		"v-exec":         {blob("manifest.yml", "m"), dir("docs", "docs-exec")},
		"v-link":         {blob("manifest.yml", "m"), dir("docs", "docs-link")},
		"v-changed":      {blob("manifest.yml", "m"), dir("docs", "docs-other")},
		"v-empty-dir":    {blob("manifest.yml", "m"), dir("docs", "docs"), dir("_empty", "empty")},
		"v-nested-empty": {blob("manifest.yml", "m"), dir("docs", "docs"), dir("_empty", "only-empty")},
		"v-extra":        {blob("manifest.yml", "m"), dir("docs", "docs"), dir("img", "docs")},
		"v-file-for-dir": {blob("manifest.yml", "m"), blob("docs", "b1")},
	}
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same tree", "v", "v", true},
		{"mode flipped", "v", "v-exec", true},
		{"symlink for file", "v", "v-link", false},
		{"content changed", "v", "v-changed", false},
		{"empty directory added", "v", "v-empty-dir", true},
		{"nested empty directories added", "v", "v-nested-empty", true},
		{"directory with files added", "v", "v-extra", false},
		{"file replaces directory", "v", "v-file-for-dir", false},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][2]string{{tc.a, tc.b}, {tc.b, tc.a}} {
				got, err := Identical(ctx, trees, order[0], order[1])
				if err != nil {
					t.Fatal(err)
				}
				la, _ := trees.Tree(ctx, order[0], true)
				lb, _ := trees.Tree(ctx, order[1], true)
				if listed := identicalListings(la, lb); got != tc.want || listed != tc.want {
					t.Errorf("%s vs %s: Identical = %v, listings compare %v; want both %v", order[0], order[1], got, listed, tc.want)
				}
			}
		})
	}
}
