package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// LocalReader reads a local git repository, bare or not, with go-git. It reads objects on demand from the
// object database (pack index look-ups), so its cost depends on the trees it is asked for, never on the size
// of the repository.
type LocalReader struct {
	repo  *git.Repository
	packs *packedObjects
	// trees keeps decoded trees: one check reads the root and packages/ trees of several branch states that
	// often share them.
	trees *ObjectCache
}

// localTreeCacheEntries bounds the decoded trees a LocalReader keeps.
const localTreeCacheEntries = 4096

var _ Reader = (*LocalReader)(nil)

// OpenLocal opens the repository at path: a bare repository, a work tree, or any directory inside one.
func OpenLocal(path string) (*LocalReader, error) {
	// A bare repository first (go-git's .git detection walks up past it), then a work tree or a directory
	// inside one.
	repo, err := git.PlainOpen(path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainOpenWithOptions(path, &git.PlainOpenOptions{DetectDotGit: true})
	}
	if err != nil {
		return nil, fmt.Errorf("open git repository %s: %w", path, err)
	}
	fsStorage, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return &LocalReader{repo: repo, trees: NewObjectCache(localTreeCacheEntries)}, nil
	}
	packs, err := openPacks(filepath.Join(fsStorage.Filesystem().Root(), "objects"))
	if err != nil {
		return nil, fmt.Errorf("open git repository %s: %w", path, err)
	}
	// No work tree: the reader only reads objects and references.
	fast, err := git.Open(&packedStorage{Storage: fsStorage, packs: packs}, nil)
	if err != nil {
		packs.close()
		return nil, fmt.Errorf("open git repository %s: %w", path, err)
	}
	return &LocalReader{repo: fast, packs: packs, trees: NewObjectCache(localTreeCacheEntries)}, nil
}

// Close releases the pack files the reader holds open.
func (r *LocalReader) Close() error {
	if r.packs != nil {
		r.packs.close()
	}
	return nil
}

// ResolveRevision resolves rev as a local branch (refs/heads/rev), else a remote-tracking branch of origin
// (refs/remotes/origin/rev), else anything git rev-parse accepts that go-git understands: full ref names,
// HEAD, tags, full and abbreviated commit SHAs.
func (r *LocalReader) ResolveRevision(_ context.Context, rev string) (Commit, error) {
	if rev == "" {
		return Commit{}, fmt.Errorf("resolve revision: empty revision: %w", ErrNotFound)
	}
	for _, name := range []plumbing.ReferenceName{
		plumbing.NewBranchReferenceName(rev),
		plumbing.NewRemoteReferenceName("origin", rev),
	} {
		ref, err := r.repo.Reference(name, true)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			continue
		}
		if err != nil {
			return Commit{}, fmt.Errorf("resolve revision %q: read %s: %w", rev, name, err)
		}
		return r.commit(ref.Hash(), rev)
	}
	if len(rev) == 2*len(plumbing.ZeroHash) && plumbing.IsHash(rev) {
		return r.commit(plumbing.NewHash(rev), rev)
	}
	hash, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return Commit{}, fmt.Errorf("resolve revision %q: %w (%v)", rev, ErrNotFound, err)
	}
	return r.commit(*hash, rev)
}

func (r *LocalReader) commit(hash plumbing.Hash, rev string) (Commit, error) {
	c, err := r.repo.CommitObject(hash)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return Commit{}, fmt.Errorf("resolve revision %q: commit %s: %w", rev, hash, ErrNotFound)
	}
	if err != nil {
		return Commit{}, fmt.Errorf("resolve revision %q: read commit %s: %w", rev, hash, err)
	}
	parents := make([]string, len(c.ParentHashes))
	for i, p := range c.ParentHashes {
		parents[i] = p.String()
	}
	return Commit{SHA: c.Hash.String(), TreeSHA: c.TreeHash.String(), Parents: parents}, nil
}

// MergeBase returns the best common ancestor of commits a and b (revisions are resolved first).
func (r *LocalReader) MergeBase(ctx context.Context, a, b string) (string, error) {
	ca, err := r.commitObject(ctx, a)
	if err != nil {
		return "", fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	cb, err := r.commitObject(ctx, b)
	if err != nil {
		return "", fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	bases, err := ca.MergeBase(cb)
	if err != nil {
		return "", fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	if len(bases) == 0 {
		return "", fmt.Errorf("merge base of %s and %s: no common ancestor: %w", a, b, ErrNotFound)
	}
	return bases[0].Hash.String(), nil
}

func (r *LocalReader) commitObject(ctx context.Context, rev string) (*object.Commit, error) {
	c, err := r.ResolveRevision(ctx, rev)
	if err != nil {
		return nil, err
	}
	obj, err := r.repo.CommitObject(plumbing.NewHash(c.SHA))
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", c.SHA, err)
	}
	return obj, nil
}

// Tree lists the tree with this SHA; recursive walks every subtree below it, listing subtrees too.
func (r *LocalReader) Tree(ctx context.Context, sha string, recursive bool) ([]TreeEntry, error) {
	var entries []TreeEntry
	if err := r.walk(ctx, sha, "", recursive, &entries); err != nil {
		return nil, err
	}
	return entries, nil
}

func (r *LocalReader) walk(ctx context.Context, sha, prefix string, recursive bool, out *[]TreeEntry) error {
	entries, err := r.tree(ctx, sha)
	if err != nil {
		return err
	}
	for _, e := range entries {
		e.Path = prefix + e.Path
		*out = append(*out, e)
		if recursive && e.Type == TypeTree {
			if err := r.walk(ctx, e.SHA, e.Path+"/", true, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// tree returns the entries of one tree, decoded once and kept in the reader's cache. Callers must not
// modify the slice.
func (r *LocalReader) tree(ctx context.Context, sha string) ([]TreeEntry, error) {
	v, err := r.trees.get(ctx, sha, func() (any, error) {
		t, err := object.GetTree(r.repo.Storer, plumbing.NewHash(sha))
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, fmt.Errorf("read tree %s: %w", sha, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("read tree %s: %w", sha, err)
		}
		entries := make([]TreeEntry, len(t.Entries))
		for i, e := range t.Entries {
			entries[i] = TreeEntry{Path: e.Name, Mode: modeString(e.Mode), Type: entryType(e.Mode), SHA: e.Hash.String()}
		}
		return entries, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]TreeEntry), nil
}

// Blob returns the contents of the blob with this SHA.
func (r *LocalReader) Blob(_ context.Context, sha string) ([]byte, error) {
	b, err := r.repo.BlobObject(plumbing.NewHash(sha))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("read blob %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", sha, err)
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", sha, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", sha, err)
	}
	return data, nil
}

// modeString prints a mode the way git and GitHub's trees API do: six octal digits.
func modeString(m filemode.FileMode) string {
	return fmt.Sprintf("%06o", uint32(m))
}

func entryType(m filemode.FileMode) EntryType {
	switch m {
	case filemode.Dir:
		return TypeTree
	case filemode.Submodule:
		return TypeCommit
	default:
		return TypeBlob
	}
}
