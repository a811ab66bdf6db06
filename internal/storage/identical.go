package storage

import (
	"context"
	"fmt"
)

// Identical reports whether two trees hold the same paths with the same blob contents (docs/architecture.md §3). File
// modes of regular files do not count: a copy whose files flipped between 100644 and 100755 is identical.
// A symlink is not identical to a regular file with the same contents, and submodules compare by commit.
//
// Equal SHAs answer at once; otherwise both trees are read and compared entry by entry, recursing only into
// subtrees whose SHAs differ.
func Identical(ctx context.Context, r Reader, treeA, treeB string) (bool, error) {
	if treeA == treeB {
		return true, nil
	}
	a, err := r.Tree(ctx, treeA, false)
	if err != nil {
		return false, fmt.Errorf("compare trees %s and %s: %w", treeA, treeB, err)
	}
	b, err := r.Tree(ctx, treeB, false)
	if err != nil {
		return false, fmt.Errorf("compare trees %s and %s: %w", treeA, treeB, err)
	}
	byName := make(map[string]TreeEntry, len(b))
	for _, e := range b {
		byName[e.Path] = e
	}
	// A directory on one side only holds no path the other has, unless it holds no file at all: git cannot
	// record an empty directory from a work tree, but the Git Data API can, and an empty directory serves
	// nothing, so it does not make two copies differ (the rule the policy gathers by, file listings).
	var subtrees [][2]string
	var oneSided []string
	for _, ea := range a {
		eb, ok := byName[ea.Path]
		if !ok {
			if ea.Type != TypeTree {
				return false, nil
			}
			oneSided = append(oneSided, ea.SHA)
			continue
		}
		delete(byName, ea.Path)
		switch {
		case ea.Type == TypeTree && eb.Type == TypeTree:
			if ea.SHA != eb.SHA {
				subtrees = append(subtrees, [2]string{ea.SHA, eb.SHA})
			}
		case identityOf(ea) != identityOf(eb):
			return false, nil
		}
	}
	for _, eb := range byName {
		if eb.Type != TypeTree {
			return false, nil
		}
		oneSided = append(oneSided, eb.SHA)
	}
	for _, sha := range oneSided {
		files, err := hasFiles(ctx, r, sha)
		if err != nil || files {
			return false, err
		}
	}
	for _, s := range subtrees {
		same, err := Identical(ctx, r, s[0], s[1])
		if err != nil || !same {
			return false, err
		}
	}
	return true, nil
}

// hasFiles reports whether the tree holds anything but (empty) directories.
func hasFiles(ctx context.Context, r Reader, sha string) (bool, error) {
	entries, err := r.Tree(ctx, sha, true)
	if err != nil {
		return false, fmt.Errorf("list tree %s: %w", sha, err)
	}
	for _, e := range entries {
		if e.Type != TypeTree {
			return true, nil
		}
	}
	return false, nil
}

func isSymlink(e TreeEntry) bool {
	return e.Mode == ModeSymlink
}

// fileIdentity is what makes two entries at one path the same under the identity rule: the object (contents
// for a blob, the commit for a submodule), its kind, and whether a blob is a symlink. The mode of a regular
// file does not count.
type fileIdentity struct {
	sha     string
	typ     EntryType
	symlink bool
}

func identityOf(e TreeEntry) fileIdentity {
	return fileIdentity{sha: e.SHA, typ: e.Type, symlink: isSymlink(e)}
}

// identicalListings is Identical answered from two recursive listings already read (the check gathers them
// for the changed versions' paths anyway): the same rule, file by file, directories left out.
func identicalListings(a, b []TreeEntry) bool {
	files := func(l []TreeEntry) map[string]fileIdentity {
		m := make(map[string]fileIdentity, len(l))
		for _, e := range l {
			if e.Type != TypeTree {
				m[e.Path] = identityOf(e)
			}
		}
		return m
	}
	fa, fb := files(a), files(b)
	if len(fa) != len(fb) {
		return false
	}
	for p, f := range fa {
		if g, ok := fb[p]; !ok || g != f {
			return false
		}
	}
	return true
}
