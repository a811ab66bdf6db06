package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// LocalReader reads a local git repository, bare or not, from its files: references (loose and
// packed-refs), objects in packs, loose objects and alternates, on demand, so its cost depends on the
// trees it is asked for, never on the size of the repository. It reads any clone git itself reads with the
// default SHA-1 object format and files reference backend: linked work trees, `--shared` and `--reference`
// clones, shallow clones (history questions past the boundary fail naming `git fetch --unshallow`) and
// partial clones (missing objects are fetched through git when it is on PATH).
type LocalReader struct {
	g       *gitDir
	refs    *refStore
	objects *objectDB
	// trees keeps decoded trees: one check reads the root and packages/ trees of several branch states that
	// often share them.
	trees *ObjectCache

	mu      sync.Mutex
	commits map[oid]commitInfo
}

// localTreeCacheEntries bounds the decoded trees a LocalReader keeps.
const localTreeCacheEntries = 4096

var _ Reader = (*LocalReader)(nil)

// OpenLocal opens the repository at path: a bare repository, a git directory, a work tree or any directory
// inside one.
func OpenLocal(path string) (*LocalReader, error) {
	g, err := findGitDir(path)
	if err != nil {
		return nil, fmt.Errorf("open git repository %s: %w", path, err)
	}
	objects, err := openObjectDB(g)
	if err != nil {
		return nil, fmt.Errorf("open git repository %s: %w", path, err)
	}
	return &LocalReader{
		g:       g,
		refs:    &refStore{g: g},
		objects: objects,
		trees:   NewObjectCache(localTreeCacheEntries),
		commits: map[oid]commitInfo{},
	}, nil
}

// Close releases the pack files and the packed-refs mapping the reader holds.
func (r *LocalReader) Close() error {
	r.objects.close()
	return r.refs.close()
}

// ResolveRevision resolves rev exactly as `git rev-parse rev^{commit}` does (see Resolve).
func (r *LocalReader) ResolveRevision(ctx context.Context, rev string) (Commit, error) {
	res, err := r.Resolve(ctx, rev)
	if err != nil {
		return Commit{}, err
	}
	return res.Commit, nil
}

// Resolve resolves rev as `git rev-parse rev^{commit}` does: a full or unique abbreviated SHA, HEAD, a
// branch, tag, remote-tracking branch or full ref name (git's order: refs/X, refs/tags/X, refs/heads/X,
// refs/remotes/X, refs/remotes/X/HEAD), with ~N, ^N and ^{...} suffixes. Annotated tags are peeled to their
// commit. The result says which reference the name matched.
func (r *LocalReader) Resolve(ctx context.Context, rev string) (Revision, error) {
	if rev == "" {
		return Revision{}, fmt.Errorf("resolve revision: empty revision: %w", ErrNotFound)
	}
	h, typ, ref, err := r.revParse(ctx, rev)
	if err != nil {
		return Revision{}, fmt.Errorf("resolve %w", err)
	}
	if h, _, err = r.peel(ctx, h, typ, "commit"); err != nil {
		return Revision{}, fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	c, err := r.commitInfo(ctx, h)
	if err != nil {
		return Revision{}, fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	parents := make([]string, len(c.parents))
	for i, p := range c.parents {
		parents[i] = p.String()
	}
	return Revision{Rev: rev, Ref: ref, Commit: Commit{SHA: h.String(), TreeSHA: c.tree.String(), Parents: parents}}, nil
}

// Ref resolves one full reference name exactly (no rules), following symbolic references. found is false
// when it does not exist.
func (r *LocalReader) Ref(ctx context.Context, name string) (Revision, bool, error) {
	h, final, found, err := r.refs.resolve(name)
	if err != nil || !found {
		return Revision{}, false, err
	}
	res, err := r.Resolve(ctx, h.String())
	if err != nil {
		return Revision{}, false, fmt.Errorf("reference %s: %w", name, err)
	}
	res.Rev, res.Ref = name, final
	return res, true, nil
}

func (r *LocalReader) cachedCommit(h oid) (commitInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.commits[h]
	return c, ok
}

// commitInfo reads and parses a commit once. A shallow commit has no parents, as git grafts it.
func (r *LocalReader) commitInfo(ctx context.Context, h oid) (commitInfo, error) {
	if c, ok := r.cachedCommit(h); ok {
		return c, nil
	}
	typ, data, err := r.objects.read(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return commitInfo{}, fmt.Errorf("commit %s: %w", h, err)
	}
	if err != nil {
		return commitInfo{}, fmt.Errorf("read commit %s: %w", h, err)
	}
	if typ != objCommit {
		return commitInfo{}, fmt.Errorf("object %s is a %s, not a commit: %w", h, typ, ErrNotFound)
	}
	c, err := parseCommit(data)
	if err != nil {
		return commitInfo{}, fmt.Errorf("read commit %s: %w", h, err)
	}
	if r.g.shallow[h] {
		c.parents = nil
	}
	r.mu.Lock()
	r.commits[h] = c
	r.mu.Unlock()
	return c, nil
}

// MergeBase returns the best common ancestor of commits a and b (revisions are resolved first).
func (r *LocalReader) MergeBase(ctx context.Context, a, b string) (string, error) {
	ca, err := r.revCommit(ctx, a)
	if err != nil {
		return "", fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	cb, err := r.revCommit(ctx, b)
	if err != nil {
		return "", fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	base, err := r.mergeBase(ctx, ca, cb)
	if err != nil {
		return "", fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	return base.String(), nil
}

func (r *LocalReader) revCommit(ctx context.Context, rev string) (oid, error) {
	if h, ok := parseOID(rev); ok {
		if _, err := r.commitInfo(ctx, h); err == nil {
			return h, nil
		}
	}
	c, err := r.ResolveRevision(ctx, rev)
	if err != nil {
		return oid{}, err
	}
	h, _ := parseOID(c.SHA)
	return h, nil
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
		data, err := r.typed(ctx, sha, objTree)
		if err != nil {
			return nil, fmt.Errorf("read tree %s: %w", sha, err)
		}
		entries, err := parseTree(data)
		if err != nil {
			return nil, fmt.Errorf("read tree %s: %w", sha, err)
		}
		return entries, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]TreeEntry), nil
}

// Blob returns the contents of the blob with this SHA.
func (r *LocalReader) Blob(ctx context.Context, sha string) ([]byte, error) {
	data, err := r.typed(ctx, sha, objBlob)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", sha, err)
	}
	return data, nil
}

// typed reads an object that must be of type want.
func (r *LocalReader) typed(ctx context.Context, sha string, want objectType) ([]byte, error) {
	h, ok := parseOID(sha)
	if !ok {
		return nil, fmt.Errorf("%q is not an object name: %w", sha, ErrNotFound)
	}
	typ, data, err := r.objects.read(ctx, h)
	if err != nil {
		return nil, err
	}
	if typ != want {
		return nil, fmt.Errorf("object is a %s, not a %s: %w", typ, want, ErrNotFound)
	}
	return data, nil
}
