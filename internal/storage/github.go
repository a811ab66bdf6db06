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
		b, resp, err := g.client.Repositories.GetBranch(ctx, g.owner, g.repo, branch, false)
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
	r, _, err := g.client.Git.GetRef(ctx, g.owner, g.repo, strings.TrimPrefix(rev, "refs/"))
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
		gc, _, err := g.client.Git.GetCommit(ctx, g.owner, g.repo, rev)
		if err != nil {
			return Commit{}, fmt.Errorf("read commit %s of %s/%s: %w", rev, g.owner, g.repo, notFound(err))
		}
		c := Commit{SHA: gc.GetSHA(), TreeSHA: gc.GetTree().GetSHA()}
		for _, p := range gc.Parents {
			c.Parents = append(c.Parents, p.GetSHA())
		}
		return c, nil
	}
	rc, _, err := g.client.Repositories.GetCommit(ctx, g.owner, g.repo, rev, &github.ListOptions{PerPage: 1})
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
		cmp, _, err := g.client.Repositories.CompareCommits(ctx, g.owner, g.repo, a, b, &github.ListOptions{PerPage: 1})
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
// completed by walking the subtrees one by one.
func (g *GitHubReader) Tree(ctx context.Context, sha string, recursive bool) ([]TreeEntry, error) {
	kind := "tree"
	if recursive {
		kind = "tree-recursive"
	}
	v, err := g.cache.get(ctx, g.key(kind, sha), func() (any, error) {
		t, _, err := g.client.Git.GetTree(ctx, g.owner, g.repo, sha, recursive)
		if err != nil {
			return nil, fmt.Errorf("read tree %s of %s/%s: %w", sha, g.owner, g.repo, notFound(err))
		}
		if recursive && t.GetTruncated() {
			return g.walk(ctx, sha, "")
		}
		entries := make([]TreeEntry, 0, len(t.Entries))
		for _, e := range t.Entries {
			entries = append(entries, TreeEntry{Path: e.GetPath(), Mode: e.GetMode(), Type: EntryType(e.GetType()), SHA: e.GetSHA()})
		}
		if recursive {
			g.cacheSubtrees(sha, entries)
		}
		return entries, nil
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.([]TreeEntry)), nil
}

// PrefetchRecursive reads a tree recursively in one call; every tree below it (and its own single-level
// listing) is then answered from the cache.
func (g *GitHubReader) PrefetchRecursive(ctx context.Context, sha string) error {
	_, err := g.Tree(ctx, sha, true)
	return err
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

func (g *GitHubReader) walk(ctx context.Context, sha, prefix string) ([]TreeEntry, error) {
	entries, err := g.Tree(ctx, sha, false)
	if err != nil {
		return nil, err
	}
	var out []TreeEntry
	for _, e := range entries {
		e.Path = prefix + e.Path
		out = append(out, e)
		if e.Type == TypeTree {
			sub, err := g.walk(ctx, e.SHA, e.Path+"/")
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

// Blob returns the contents of the blob with this SHA.
func (g *GitHubReader) Blob(ctx context.Context, sha string) ([]byte, error) {
	v, err := g.cache.get(ctx, g.key("blob", sha), func() (any, error) {
		b, _, err := g.client.Git.GetBlob(ctx, g.owner, g.repo, sha)
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
