package storage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-github/v50/github"
)

// GitHubReader reads one repository through GitHub's REST API (go-github v50). Trees, blobs, commits and
// merge bases of commit pairs are addressed by SHA and kept in an ObjectCache forever, so a process reads
// each of them at most once; branch heads are asked for every time.
type GitHubReader struct {
	client      *github.Client
	owner, repo string
	cache       *ObjectCache
}

var _ Reader = (*GitHubReader)(nil)

// NewGitHubReader returns a reader of owner/repo. cache may be shared by every reader of the process; nil
// gives the reader a cache of its own.
func NewGitHubReader(client *github.Client, owner, repo string, cache *ObjectCache) *GitHubReader {
	if cache == nil {
		cache = NewObjectCache(0)
	}
	return &GitHubReader{client: client, owner: owner, repo: repo, cache: cache}
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// ResolveRevision resolves a full SHA (from the cache when known), a branch name or "refs/heads/<name>" (one
// call: GitHub's branches endpoint answers the head commit with its tree, revalidated by ETag so it is never
// stale and a 304 costs no rate limit), another full ref name, or anything else GitHub's commits endpoint
// accepts (tags, abbreviated SHAs).
func (g *GitHubReader) ResolveRevision(ctx context.Context, rev string) (Commit, error) {
	if rev == "" {
		return Commit{}, fmt.Errorf("resolve revision: empty revision: %w", ErrNotFound)
	}
	if fullSHA.MatchString(rev) {
		return g.commit(ctx, rev)
	}
	branch, isBranch := strings.CutPrefix(rev, "refs/heads/")
	if isBranch || !strings.HasPrefix(rev, "refs/") {
		var b *github.Branch
		var resp *github.Response
		err := g.call(ctx, func() (err error) {
			b, resp, err = g.client.Repositories.GetBranch(ctx, g.owner, g.repo, branch, false)
			return err
		})
		missing := resp != nil && resp.StatusCode == http.StatusNotFound
		if missing {
			// go-github v50 reports a missing branch as a plain error, not an *ErrorResponse.
			err = fmt.Errorf("%w: no branch %q (%w)", ErrNotFound, branch, err)
		}
		switch {
		case err == nil:
			rc := b.GetCommit()
			c := Commit{SHA: rc.GetSHA(), TreeSHA: rc.GetCommit().GetTree().GetSHA()}
			for _, p := range rc.Parents {
				c.Parents = append(c.Parents, p.GetSHA())
			}
			if c.SHA == "" || c.TreeSHA == "" {
				return Commit{}, fmt.Errorf("resolve revision %q: branch answer of %s/%s lacks the commit or its tree", rev, g.owner, g.repo)
			}
			g.cache.add(g.key("commit", c.SHA), c)
			return c, nil
		case !missing || isBranch:
			return Commit{}, fmt.Errorf("resolve revision %q: read branch %s of %s/%s: %w", rev, branch, g.owner, g.repo, err)
		}
		// Not a branch: a tag or an abbreviated SHA, which the commits endpoint resolves.
		c, err := g.fetchCommit(ctx, rev)
		if err != nil {
			return Commit{}, fmt.Errorf("resolve revision %q: %w", rev, err)
		}
		return c, nil
	}
	var r *github.Reference
	err := g.call(ctx, func() (err error) {
		r, _, err = g.client.Git.GetRef(ctx, g.owner, g.repo, strings.TrimPrefix(rev, "refs/"))
		return err
	})
	if err != nil {
		return Commit{}, fmt.Errorf("resolve revision %q: read ref of %s/%s: %w", rev, g.owner, g.repo, notFound(err))
	}
	c, err := g.commit(ctx, r.GetObject().GetSHA())
	if err != nil {
		return Commit{}, fmt.Errorf("resolve revision %q: %w", rev, err)
	}
	return c, nil
}

// commit returns the commit with this SHA (or the commit a tag with this SHA points at).
func (g *GitHubReader) commit(ctx context.Context, sha string) (Commit, error) {
	v, err := g.cache.get(ctx, g.key("commit", sha), func() (any, error) {
		return g.fetchCommit(ctx, sha)
	})
	if err != nil {
		return Commit{}, err
	}
	return v.(Commit), nil
}

// fetchCommit reads a commit. Full SHAs use the git data endpoint, which answers the commit alone; other
// revisions need the commits endpoint, which resolves names but also computes the commit's file list.
func (g *GitHubReader) fetchCommit(ctx context.Context, rev string) (Commit, error) {
	if fullSHA.MatchString(rev) {
		var gc *github.Commit
		err := g.call(ctx, func() (err error) {
			gc, _, err = g.client.Git.GetCommit(ctx, g.owner, g.repo, rev)
			return err
		})
		if err != nil {
			return Commit{}, fmt.Errorf("read commit %s of %s/%s: %w", rev, g.owner, g.repo, notFound(err))
		}
		c := Commit{SHA: gc.GetSHA(), TreeSHA: gc.GetTree().GetSHA()}
		for _, p := range gc.Parents {
			c.Parents = append(c.Parents, p.GetSHA())
		}
		return c, nil
	}
	var rc *github.RepositoryCommit
	err := g.call(ctx, func() (err error) {
		rc, _, err = g.client.Repositories.GetCommit(ctx, g.owner, g.repo, rev, &github.ListOptions{PerPage: 1})
		return err
	})
	if err != nil {
		return Commit{}, fmt.Errorf("read commit %s of %s/%s: %w", rev, g.owner, g.repo, notFound(err))
	}
	c := Commit{SHA: rc.GetSHA(), TreeSHA: rc.GetCommit().GetTree().GetSHA()}
	for _, p := range rc.Parents {
		c.Parents = append(c.Parents, p.GetSHA())
	}
	if c.SHA != rev {
		g.cache.add(g.key("commit", c.SHA), c)
	}
	return c, nil
}

// MergeBase returns the merge base of two commits from GitHub's compare endpoint; for full SHAs the answer is
// cached, and the merge-base commit itself too.
func (g *GitHubReader) MergeBase(ctx context.Context, a, b string) (string, error) {
	fetch := func() (any, error) {
		var cmp *github.CommitsComparison
		err := g.call(ctx, func() (err error) {
			cmp, _, err = g.client.Repositories.CompareCommits(ctx, g.owner, g.repo, a, b, &github.ListOptions{PerPage: 1})
			return err
		})
		if err != nil {
			return "", fmt.Errorf("merge base of %s and %s in %s/%s: %w", a, b, g.owner, g.repo, notFound(err))
		}
		mb := cmp.GetMergeBaseCommit()
		if mb.GetSHA() == "" {
			return "", fmt.Errorf("merge base of %s and %s in %s/%s: no common ancestor: %w", a, b, g.owner, g.repo, ErrNotFound)
		}
		if tree := mb.GetCommit().GetTree().GetSHA(); tree != "" {
			c := Commit{SHA: mb.GetSHA(), TreeSHA: tree}
			for _, p := range mb.Parents {
				c.Parents = append(c.Parents, p.GetSHA())
			}
			g.cache.add(g.key("commit", c.SHA), c)
		}
		return mb.GetSHA(), nil
	}
	if !fullSHA.MatchString(a) || !fullSHA.MatchString(b) {
		v, err := fetch()
		return v.(string), err
	}
	v, err := g.cache.get(ctx, g.key("merge-base", a+".."+b), fetch)
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// Tree lists the tree with this SHA. A recursive listing GitHub truncates (over 100,000 entries or 7 MB) is
// completed by listing the tree's own entries and reading each subtree recursively, overlapped: the cost grows
// with the number of subtrees too large for one listing, not with the number of directories.
func (g *GitHubReader) Tree(ctx context.Context, sha string, recursive bool) ([]TreeEntry, error) {
	if !recursive {
		v, err := g.cache.get(ctx, g.key("tree", sha), func() (any, error) {
			entries, _, err := g.fetchTree(ctx, sha, false)
			return entries, err
		})
		if err != nil {
			return nil, err
		}
		return slices.Clone(v.([]TreeEntry)), nil
	}
	v, err := g.cache.get(ctx, g.key("tree-recursive", sha), func() (any, error) {
		if _, known := g.cache.lru.Get(g.key("tree-truncated", sha)); !known {
			entries, truncated, err := g.fetchTree(ctx, sha, true)
			if err != nil {
				return nil, err
			}
			if !truncated {
				g.cacheSubtrees(sha, entries)
				return entries, nil
			}
			g.cache.add(g.key("tree-truncated", sha), true)
		}
		return g.descend(ctx, sha)
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.([]TreeEntry)), nil
}

// fetchTree reads one tree listing from GitHub; truncated reports GitHub's flag on a recursive one.
func (g *GitHubReader) fetchTree(ctx context.Context, sha string, recursive bool) ([]TreeEntry, bool, error) {
	var t *github.Tree
	err := g.call(ctx, func() (err error) {
		t, _, err = g.client.Git.GetTree(ctx, g.owner, g.repo, sha, recursive)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("read tree %s of %s/%s: %w", sha, g.owner, g.repo, notFound(err))
	}
	entries := make([]TreeEntry, 0, len(t.Entries))
	for _, e := range t.Entries {
		entries = append(entries, TreeEntry{Path: e.GetPath(), Mode: e.GetMode(), Type: EntryType(e.GetType()), SHA: e.GetSHA()})
	}
	return entries, t.GetTruncated(), nil
}

// descend completes the recursive listing of a tree whose own recursive listing GitHub truncated: its entries
// (one call), then every subtree's recursive listing, read concurrently (each itself descended only when it
// is truncated too).
func (g *GitHubReader) descend(ctx context.Context, sha string) ([]TreeEntry, error) {
	top, err := g.Tree(ctx, sha, false)
	if err != nil {
		return nil, err
	}
	subs := make([][]TreeEntry, len(top))
	grp := newGroup(ctx, g.Concurrency())
	for i, e := range top {
		if e.Type != TypeTree {
			continue
		}
		grp.Go(func(ctx context.Context) error {
			sub, err := g.Tree(ctx, e.SHA, true)
			if err != nil {
				return fmt.Errorf("list %s below truncated tree %s: %w", e.Path, sha, err)
			}
			subs[i] = sub
			return nil
		})
	}
	if err := grp.Wait(); err != nil {
		return nil, err
	}
	var out []TreeEntry
	for i, e := range top {
		out = append(out, e)
		for _, s := range subs[i] {
			s.Path = e.Path + "/" + s.Path
			out = append(out, s)
		}
	}
	return out, nil
}

// PrefetchRecursive reads a tree recursively in one call; every tree below it (and its own single-level
// listing) is then answered from the cache. When GitHub truncates that listing, the prefetch gives up rather
// than descend: its callers need only some of the subtrees, which they read when they need them.
func (g *GitHubReader) PrefetchRecursive(ctx context.Context, sha string) error {
	if _, ok := g.cache.lru.Get(g.key("tree-recursive", sha)); ok {
		return nil
	}
	if _, ok := g.cache.lru.Get(g.key("tree-truncated", sha)); ok {
		return nil
	}
	_, err := g.cache.get(ctx, g.key("prefetch", sha), func() (any, error) {
		entries, truncated, err := g.fetchTree(ctx, sha, true)
		if err != nil {
			return nil, err
		}
		if truncated {
			g.cache.add(g.key("tree-truncated", sha), true)
			return true, nil
		}
		g.cacheSubtrees(sha, entries)
		g.cache.add(g.key("tree-recursive", sha), entries)
		return true, nil
	})
	return err
}

// Concurrency is how many reads of this reader may usefully be in flight at once: the per-account bound of
// its cache. Gather overlaps that many independent reads.
func (g *GitHubReader) Concurrency() int { return g.cache.ReadConcurrency() }

// call runs one GitHub request in one of the account's read slots, so that however many reads an evaluation
// (or several) overlaps, at most the configured number are in flight for the account.
func (g *GitHubReader) call(ctx context.Context, request func() error) error {
	release, err := g.cache.acquire(ctx, g.owner)
	if err != nil {
		return fmt.Errorf("wait for a read slot of %s: %w", g.owner, err)
	}
	defer release()
	return request()
}

// cacheSubtrees derives, from a complete recursive listing of root, the single-level listing of root and
// the single-level and recursive listings of every tree below it. Trees by SHA never change, so these are as
// good as fetched.
func (g *GitHubReader) cacheSubtrees(root string, entries []TreeEntry) {
	type listing struct{ flat, deep []TreeEntry }
	dirs := map[string]*listing{"": {}} // directory path ("" = root) → its listings
	shaOf := map[string]string{"": root}
	for _, e := range entries {
		if e.Type == TypeTree {
			dirs[e.Path] = &listing{}
			shaOf[e.Path] = e.SHA
		}
	}
	for _, e := range entries {
		parent := ""
		if i := strings.LastIndexByte(e.Path, '/'); i >= 0 {
			parent = e.Path[:i]
		}
		flat := e
		flat.Path = e.Path[len(parent):]
		flat.Path = strings.TrimPrefix(flat.Path, "/")
		if d := dirs[parent]; d != nil {
			d.flat = append(d.flat, flat)
		}
		// Every ancestor directory (root excluded: its recursive listing is the one being cached) lists e.
		for dir := parent; dir != ""; {
			if d := dirs[dir]; d != nil {
				rel := e
				rel.Path = e.Path[len(dir)+1:]
				d.deep = append(d.deep, rel)
			}
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
		}
	}
	for path, d := range dirs {
		sha := shaOf[path]
		g.cache.add(g.key("tree", sha), d.flat)
		if path != "" {
			g.cache.add(g.key("tree-recursive", sha), d.deep)
		}
	}
}

// Blob returns the contents of the blob with this SHA.
func (g *GitHubReader) Blob(ctx context.Context, sha string) ([]byte, error) {
	v, err := g.cache.get(ctx, g.key("blob", sha), func() (any, error) {
		var b *github.Blob
		err := g.call(ctx, func() (err error) {
			b, _, err = g.client.Git.GetBlob(ctx, g.owner, g.repo, sha)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read blob %s of %s/%s: %w", sha, g.owner, g.repo, notFound(err))
		}
		if b.GetEncoding() != "base64" {
			return []byte(b.GetContent()), nil
		}
		data, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(b.GetContent(), "\n", ""))
		if err != nil {
			return nil, fmt.Errorf("decode blob %s of %s/%s: %w", sha, g.owner, g.repo, err)
		}
		return data, nil
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.([]byte)), nil
}

func (g *GitHubReader) key(kind, id string) string {
	return g.owner + "/" + g.repo + "\x00" + kind + "\x00" + id
}

// isNotFound reports whether GitHub answered that the object does not exist: 404, or 422 for a SHA that
// names no object.
func isNotFound(err error) bool {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode == http.StatusNotFound || er.Response.StatusCode == http.StatusUnprocessableEntity
	}
	return false
}

// notFound adds ErrNotFound to the chain of a GitHub "does not exist" error.
func notFound(err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
