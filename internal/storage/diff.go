package storage

import (
	"context"
	"fmt"

	"github.com/storagebot/storagebot/internal/keyset"
)

// VersionDelta is one package version whose tree entry differs between two states of a storage branch.
// OldSHA or NewSHA is "" when the version is absent on that side.
type VersionDelta struct {
	Package string
	Version string
	OldSHA  string
	NewSHA  string
	// NewType is the type of the entry on the new side ("" when absent): anything but TypeTree is a file
	// or submodule where a version directory should be.
	NewType EntryType
}

// PackageDelta is an entry directly under packages/ that is not a directory on the new side (a file or a
// submodule where a package directory should be) and differs from the old side.
type PackageDelta struct {
	Package string
	NewType EntryType
	NewSHA  string
}

// Delta is the top-down difference between the packages/ trees of two commits.
type Delta struct {
	Versions []VersionDelta
	// Packages lists changed entries under packages/ that are not directories on the new side.
	Packages []PackageDelta
}

// DiffVersions compares the packages/ trees of two root trees top-down (docs/architecture.md §3): the two packages/
// trees, then the trees of packages whose entry SHA changed, then their version entries. It reads
// 2 + 2·(touched packages) trees at most, however many files the versions hold. Versions come sorted by
// package and version name.
//
// Readers whose reads may overlap (GitHub) read the two sides, and the touched packages, concurrently.
func DiffVersions(ctx context.Context, r Reader, oldRoot, newRoot string) (Delta, error) {
	return diffVersions(ctx, r, oldRoot, newRoot, true)
}

// diffVersions is DiffVersions; prefetch says whether a touched package's new side is read recursively in
// one call (false when a batch read has already cached what the diff reads).
func diffVersions(ctx context.Context, r Reader, oldRoot, newRoot string, prefetch bool) (Delta, error) {
	var d Delta
	if oldRoot == newRoot {
		return d, nil
	}
	var oldPkgs, newPkgs string
	var oldEntries, newEntries map[string]TreeEntry
	sides := newGroup(ctx, readConcurrency(r))
	for _, side := range []struct {
		root    string
		sha     *string
		entries *map[string]TreeEntry
	}{{oldRoot, &oldPkgs, &oldEntries}, {newRoot, &newPkgs, &newEntries}} {
		sides.Go(func(ctx context.Context) error {
			sha, err := Subtree(ctx, r, side.root, PackagesDir)
			if err != nil {
				return err
			}
			*side.sha = sha
			*side.entries, err = TreeByName(ctx, r, sha)
			return err
		})
	}
	if err := sides.Wait(); err != nil {
		return d, fmt.Errorf("diff %s..%s: %w", oldRoot, newRoot, err)
	}
	if oldPkgs == newPkgs {
		return d, nil
	}
	names := keyset.SortedUnion(oldEntries, newEntries)
	versions := make([][]VersionDelta, len(names))
	packages := newGroup(ctx, readConcurrency(r))
	for i, name := range names {
		o, n := oldEntries[name], newEntries[name]
		if o.SHA == n.SHA && o.Type == n.Type {
			continue
		}
		if n.SHA != "" && n.Type != TypeTree {
			d.Packages = append(d.Packages, PackageDelta{Package: name, NewType: n.Type, NewSHA: n.SHA})
		}
		packages.Go(func(ctx context.Context) error {
			vs, err := diffPackage(ctx, r, name, o, n, prefetch)
			if err != nil {
				return fmt.Errorf("diff package %s: %w", name, err)
			}
			versions[i] = vs
			return nil
		})
	}
	if err := packages.Wait(); err != nil {
		return d, err
	}
	for _, vs := range versions {
		d.Versions = append(d.Versions, vs...)
	}
	return d, nil
}

// diffPackage lists the versions of one package whose entries differ between its old and new trees.
func diffPackage(ctx context.Context, r Reader, name string, o, n TreeEntry, prefetch bool) ([]VersionDelta, error) {
	var oldVersions, newVersions map[string]TreeEntry
	sides := newGroup(ctx, readConcurrency(r))
	sides.Go(func(ctx context.Context) (err error) {
		oldVersions, err = versionEntries(ctx, r, o)
		return err
	})
	sides.Go(func(ctx context.Context) (err error) {
		if pf, ok := r.(RecursivePrefetcher); ok && prefetch && n.SHA != "" && n.Type == TypeTree {
			// The new side of a touched package is read whole anyway (its versions, then each changed
			// version's files): one recursive read serves all of it.
			if err := pf.PrefetchRecursive(ctx, n.SHA); err != nil {
				return err
			}
		}
		newVersions, err = versionEntries(ctx, r, n)
		return err
	})
	if err := sides.Wait(); err != nil {
		return nil, err
	}
	var out []VersionDelta
	for _, v := range keyset.SortedUnion(oldVersions, newVersions) {
		ov, nv := oldVersions[v], newVersions[v]
		if ov.SHA == nv.SHA && ov.Type == nv.Type {
			continue
		}
		out = append(out, VersionDelta{Package: name, Version: v, OldSHA: ov.SHA, NewSHA: nv.SHA, NewType: nv.Type})
	}
	return out, nil
}

// versionEntries lists the entries of a package directory; a package entry that is absent or not a
// directory has none.
func versionEntries(ctx context.Context, r Reader, pkg TreeEntry) (map[string]TreeEntry, error) {
	if pkg.SHA == "" || pkg.Type != TypeTree {
		return nil, nil
	}
	return TreeByName(ctx, r, pkg.SHA)
}

// Subtree returns the SHA of the directory at path (one name per level) below the tree root, or "" when it
// is absent (or is not a directory). Each level is read by SHA, so shared levels (the root, packages/) come
// from the reader's cache after the first read.
func Subtree(ctx context.Context, r Reader, root string, path ...string) (string, error) {
	sha := root
	for _, name := range path {
		entries, err := r.Tree(ctx, sha, false)
		if err != nil {
			return "", err
		}
		sha = ""
		for _, e := range entries {
			if e.Path == name && e.Type == TypeTree {
				sha = e.SHA
				break
			}
		}
		if sha == "" {
			return "", nil
		}
	}
	return sha, nil
}

// TreeByName lists a tree by entry name; the empty SHA is the empty tree (an absent directory).
func TreeByName(ctx context.Context, r Reader, sha string) (map[string]TreeEntry, error) {
	if sha == "" {
		return map[string]TreeEntry{}, nil
	}
	entries, err := r.Tree(ctx, sha, false)
	if err != nil {
		return nil, err
	}
	m := make(map[string]TreeEntry, len(entries))
	for _, e := range entries {
		m[e.Path] = e
	}
	return m, nil
}
