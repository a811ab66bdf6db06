package githubfake

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func (s *Server) getRepository(c *call) (int, any, error) {
	m := c.repo.repositoryJSON()
	m["permissions"] = map[string]any{"admin": false, "maintain": false, "push": true, "triage": true, "pull": true}
	return http.StatusOK, m, nil
}

func (r *Repo) refJSON(branch string, h plumbing.Hash) map[string]any {
	return r.fullRefJSON("refs/heads/"+branch, h)
}

// fullRefJSON is a ref as the git refs API shows it; tags are lightweight here, so every ref names a commit.
func (r *Repo) fullRefJSON(ref string, h plumbing.Hash) map[string]any {
	return map[string]any{
		"ref": ref, "node_id": nodeID("REF_", userID(r.FullName()+ref)), "url": r.apiURL() + "/git/" + ref,
		"object": map[string]any{"type": "commit", "sha": h.String(), "url": r.apiURL() + "/git/commits/" + h.String()},
	}
}

// refs returns every ref of the repository, branches and tags, by full name.
func (r *Repo) refs() map[string]plumbing.Hash {
	all := make(map[string]plumbing.Hash, len(r.branches)+len(r.tags))
	for name, h := range r.branches {
		all["refs/heads/"+name] = h
	}
	for name, h := range r.tags {
		all["refs/tags/"+name] = h
	}
	return all
}

// branchOf turns "heads/x" or "refs/heads/x" into "x"; other namespaces are not supported.
func branchOf(ref string) (string, bool) {
	ref = strings.TrimPrefix(ref, "refs/")
	b, ok := strings.CutPrefix(ref, "heads/")
	return b, ok && b != ""
}

// getRef answers GET /git/ref/{ref}: the ref is spelled heads/<branch> or tags/<tag>, and only an exact name
// is found.
func (s *Server) getRef(c *call) (int, any, error) {
	ref := "refs/" + strings.TrimPrefix(c.params["ref"], "refs/")
	h, ok := c.repo.refs()[ref]
	if !ok {
		return 0, nil, errNotFound
	}
	return http.StatusOK, c.repo.fullRefJSON(ref, h), nil
}

// matchingRefs answers GET /git/matching-refs/{ref}: every branch and tag whose name, spelled heads/… or
// tags/…, starts with ref — a plain string prefix across slashes, as GitHub matches ("heads/feat" finds
// heads/feature/x) — sorted by name, and an empty list when none does.
func (s *Server) matchingRefs(c *call) (int, any, error) {
	prefix := "refs/" + strings.TrimPrefix(c.params["ref"], "refs/")
	all := c.repo.refs()
	out := []any{}
	for _, ref := range sortedKeys(all) {
		if strings.HasPrefix(ref, prefix) {
			out = append(out, c.repo.fullRefJSON(ref, all[ref]))
		}
	}
	return http.StatusOK, out, nil
}

func (s *Server) createRef(c *call) (int, any, error) {
	r := c.repo
	var in struct{ Ref, SHA string }
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	b, ok := branchOf(in.Ref)
	if !ok || !strings.HasPrefix(in.Ref, "refs/") {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Reference name must start with 'refs/heads/'")
	}
	if _, exists := r.branches[b]; exists {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Reference already exists")
	}
	h := plumbing.NewHash(in.SHA)
	if _, err := object.GetCommit(r.st, h); err != nil || !isSHA(in.SHA) {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Object does not exist")
	}
	r.branches[b] = h
	return http.StatusCreated, r.refJSON(b, h), nil
}

func (s *Server) updateRef(c *call) (int, any, error) {
	r := c.repo
	b, ok := branchOf(c.params["ref"])
	old, exists := r.branches[b]
	if !ok || !exists {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Reference does not exist")
	}
	var in struct {
		SHA   string `json:"sha"`
		Force bool   `json:"force"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	h := plumbing.NewHash(in.SHA)
	next, err := object.GetCommit(r.st, h)
	if err != nil || !isSHA(in.SHA) {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Object does not exist")
	}
	if !in.Force && old != h {
		prev, err := object.GetCommit(r.st, old)
		if err != nil {
			return 0, nil, fmt.Errorf("read %s: %w", old, err)
		}
		ff, err := prev.IsAncestor(next)
		if err != nil {
			return 0, nil, fmt.Errorf("check fast-forward of %s: %w", b, err)
		}
		if !ff {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "Update is not a fast forward")
		}
	}
	r.branches[b] = h
	return http.StatusOK, r.refJSON(b, h), nil
}

func (s *Server) deleteRef(c *call) (int, any, error) {
	b, ok := branchOf(c.params["ref"])
	if _, exists := c.repo.branches[b]; !ok || !exists {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Reference does not exist")
	}
	delete(c.repo.branches, b)
	return http.StatusNoContent, nil, nil
}

// GitHub's caps on one recursive tree listing: "The limit for the tree array is 100,000 entries with a maximum
// size of 7 MB when using the recursive parameter." Past either, the answer holds the entries that fit and
// "truncated": true.
const (
	DefaultTreeMaxEntries = 100_000
	DefaultTreeMaxBytes   = 7 << 20
)

// errTreeFull stops a recursive listing that reached a cap.
var errTreeFull = errors.New("tree listing full")

// treeJSON lists a tree, recursively when asked; sha may name a tree, a commit or a branch. A recursive
// listing stops at maxEntries entries or maxBytes bytes of JSON entries, whichever comes first, and says
// "truncated": true, as GitHub's does (non-positive caps: GitHub's).
func (r *Repo) treeJSON(h plumbing.Hash, recursive bool, maxEntries, maxBytes int) (map[string]any, error) {
	t, err := object.GetTree(r.st, h)
	if err != nil {
		return nil, errNotFound
	}
	if maxEntries <= 0 {
		maxEntries = DefaultTreeMaxEntries
	}
	if maxBytes <= 0 {
		maxBytes = DefaultTreeMaxBytes
	}
	entries := []any{}
	size := 0
	var walk func(t *object.Tree, prefix string) error
	walk = func(t *object.Tree, prefix string) error {
		for _, e := range t.Entries {
			p := prefix + e.Name
			m := map[string]any{
				"path": p, "mode": modeString(e.Mode), "type": objectType(e.Mode), "sha": e.Hash.String(),
			}
			switch objectType(e.Mode) {
			case "blob":
				if size, err := r.st.EncodedObjectSize(e.Hash); err == nil {
					m["size"] = size
				}
				m["url"] = r.apiURL() + "/git/blobs/" + e.Hash.String()
			case "tree":
				m["url"] = r.apiURL() + "/git/trees/" + e.Hash.String()
			}
			if recursive {
				b, err := json.Marshal(m)
				if err != nil {
					return fmt.Errorf("encode tree entry %s: %w", p, err)
				}
				if len(entries) >= maxEntries || size+len(b)+1 > maxBytes {
					return errTreeFull
				}
				size += len(b) + 1
			}
			entries = append(entries, m)
			if recursive && e.Mode == filemode.Dir {
				sub, err := object.GetTree(r.st, e.Hash)
				if err != nil {
					return fmt.Errorf("read tree %s: %w", p, err)
				}
				if err := walk(sub, p+"/"); err != nil {
					return err
				}
			}
		}
		return nil
	}
	truncated := false
	if err := walk(t, ""); errors.Is(err, errTreeFull) {
		truncated = true
	} else if err != nil {
		return nil, err
	}
	return map[string]any{"sha": h.String(), "url": r.apiURL() + "/git/trees/" + h.String(), "tree": entries, "truncated": truncated}, nil
}

func (s *Server) getTree(c *call) (int, any, error) {
	r := c.repo
	ref := c.params["tree_sha"]
	h := plumbing.NewHash(ref)
	if commit, ok := r.resolve(ref); ok {
		cm, err := object.GetCommit(r.st, commit)
		if err != nil {
			return 0, nil, fmt.Errorf("read commit %s: %w", commit, err)
		}
		h = cm.TreeHash
	} else if !isSHA(ref) {
		return 0, nil, errNotFound
	}
	rec := c.r.URL.Query().Get("recursive")
	out, err := r.treeJSON(h, rec != "" && rec != "0" && rec != "false", s.treeMaxEntries, s.treeMaxBytes)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

func (s *Server) createTree(c *call) (int, any, error) {
	r := c.repo
	var in struct {
		BaseTree string `json:"base_tree"`
		Tree     []struct {
			Path    string  `json:"path"`
			Mode    string  `json:"mode"`
			Type    string  `json:"type"`
			SHA     *string `json:"sha"`
			Content *string `json:"content"`
		} `json:"tree"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	var base plumbing.Hash
	if in.BaseTree != "" {
		base = plumbing.NewHash(in.BaseTree)
		if _, err := object.GetTree(r.st, base); err != nil || !isSHA(in.BaseTree) {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "base_tree %s is not a valid tree", in.BaseTree)
		}
	}
	changes := make([]treeChange, 0, len(in.Tree))
	for _, e := range in.Tree {
		mode, err := filemode.New(e.Mode)
		if err != nil || e.Path == "" || strings.HasPrefix(e.Path, "/") {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "tree.path %q or tree.mode %q is invalid", e.Path, e.Mode)
		}
		switch mode {
		case filemode.Regular, filemode.Executable, filemode.Symlink, filemode.Dir, filemode.Submodule:
		default:
			return 0, nil, errorf(http.StatusUnprocessableEntity, "tree.mode %q is not one of 100644, 100755, 040000, 160000, 120000", e.Mode)
		}
		switch {
		case e.Content != nil:
			h, err := writeBlob(r.st, []byte(*e.Content))
			if err != nil {
				return 0, nil, err
			}
			changes = append(changes, treeChange{path: e.Path, mode: mode, hash: h})
		case e.SHA == nil:
			// GitHub documents "sha": null as deleting a file. For a directory it is not documented
			// and must not be relied on: refuse it like any other invalid tree entry, so a caller has
			// to write the parent tree without the entry instead.
			if mode == filemode.Dir || e.Type == "tree" || r.isTreeAt(base, e.Path) {
				return 0, nil, errorf(http.StatusUnprocessableEntity,
					"tree.sha is null for %q, which is a directory: only files can be deleted with a null sha (GitHub answers 422 for this tree entry)", e.Path)
			}
			changes = append(changes, treeChange{path: e.Path, del: true})
		default:
			h := plumbing.NewHash(*e.SHA)
			if mode != filemode.Submodule {
				if _, err := r.st.EncodedObject(plumbing.AnyObject, h); err != nil || !isSHA(*e.SHA) {
					return 0, nil, errorf(http.StatusUnprocessableEntity, "tree.sha %s is not a valid %s", *e.SHA, objectType(mode))
				}
			}
			changes = append(changes, treeChange{path: e.Path, mode: mode, hash: h})
		}
	}
	h, _, err := applyChanges(r.st, base, changes)
	if err != nil {
		return 0, nil, err
	}
	out, err := r.treeJSON(h, false, 0, 0)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, out, nil
}

// isTreeAt reports whether path names a directory in the tree root (false when root is zero or the path
// is absent).
func (r *Repo) isTreeAt(root plumbing.Hash, p string) bool {
	if root.IsZero() {
		return false
	}
	t, err := object.GetTree(r.st, root)
	if err != nil {
		return false
	}
	e, err := t.FindEntry(strings.Trim(p, "/"))
	return err == nil && e.Mode == filemode.Dir
}

func (s *Server) getGitCommit(c *call) (int, any, error) {
	if !isSHA(c.params["commit_sha"]) {
		return 0, nil, errNotFound
	}
	m, err := c.repo.gitCommitJSON(c.params["commit_sha"])
	if err != nil {
		return 0, nil, errNotFound
	}
	return http.StatusOK, m, nil
}

func (s *Server) createGitCommit(c *call) (int, any, error) {
	r := c.repo
	type person struct {
		Name  string     `json:"name"`
		Email string     `json:"email"`
		Date  *time.Time `json:"date"`
	}
	var in struct {
		Message string   `json:"message"`
		Tree    string   `json:"tree"`
		Parents []string `json:"parents"`
		Author  *person  `json:"author"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	tree := plumbing.NewHash(in.Tree)
	if _, err := object.GetTree(r.st, tree); err != nil || !isSHA(in.Tree) {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Tree SHA does not exist")
	}
	parents := make([]plumbing.Hash, 0, len(in.Parents))
	for _, p := range in.Parents {
		h := plumbing.NewHash(p)
		if _, err := object.GetCommit(r.st, h); err != nil || !isSHA(p) {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "Parent SHA does not exist or is not a commit object")
		}
		parents = append(parents, h)
	}
	author := signature{name: appSlug + "[bot]", email: appSlug + "[bot]@users.noreply.github.com"}
	when := time.Now()
	if in.Author != nil {
		author = signature{name: in.Author.Name, email: in.Author.Email}
		if in.Author.Date != nil {
			when = *in.Author.Date
		}
	}
	h, err := writeCommit(r.st, tree, parents, in.Message, author, when)
	if err != nil {
		return 0, nil, err
	}
	m, err := r.gitCommitJSON(h.String())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, m, nil
}

func (s *Server) getBlob(c *call) (int, any, error) {
	r := c.repo
	sha := c.params["file_sha"]
	if !isSHA(sha) {
		return 0, nil, errNotFound
	}
	data, err := readBlob(r.st, plumbing.NewHash(sha))
	if err != nil {
		return 0, nil, errNotFound
	}
	return http.StatusOK, map[string]any{
		"sha": sha, "node_id": nodeID("B_", userID(sha)), "size": len(data), "url": r.apiURL() + "/git/blobs/" + sha,
		"content": wrapBase64(data), "encoding": "base64",
	}, nil
}

// wrapBase64 encodes data with a newline every 60 characters, as GitHub does.
func wrapBase64(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60])
		b.WriteString("\n")
		enc = enc[60:]
	}
	b.WriteString(enc)
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

func (s *Server) createBlob(c *call) (int, any, error) {
	r := c.repo
	var in struct {
		Content  *string `json:"content"`
		Encoding string  `json:"encoding"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Content == nil {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: content is missing")
	}
	var data []byte
	switch in.Encoding {
	case "", "utf-8":
		data = []byte(*in.Content)
	case "base64":
		d, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(*in.Content, "\n", ""))
		if err != nil {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: content is not valid base64")
		}
		data = d
	default:
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: encoding %q is not utf-8 or base64", in.Encoding)
	}
	h, err := writeBlob(r.st, data)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"sha": h.String(), "url": r.apiURL() + "/git/blobs/" + h.String()}, nil
}

// filesJSON renders file changes as GitHub lists them in pulls, commits and compare answers.
func (r *Repo) filesJSON(files []fileChange, ref string) []any {
	out := make([]any, 0, len(files))
	for _, f := range files {
		m := map[string]any{
			"sha": f.sha, "filename": f.filename, "status": f.status, "additions": f.additions,
			"deletions": f.deletions, "changes": f.additions + f.deletions,
			"blob_url":     r.htmlURL() + "/blob/" + ref + "/" + f.filename,
			"raw_url":      r.htmlURL() + "/raw/" + ref + "/" + f.filename,
			"contents_url": r.apiURL() + "/contents/" + f.filename + "?ref=" + ref,
		}
		if f.previousSHA != "" {
			m["previous_sha"] = f.previousSHA
		}
		out = append(out, m)
	}
	return out
}

// repositoryCommitJSON is a commit as GET /commits/{ref} answers it, files included.
func (r *Repo) repositoryCommitJSON(cm *object.Commit, withFiles bool) (map[string]any, error) {
	sha := cm.Hash.String()
	git, err := r.gitCommitJSON(sha)
	if err != nil {
		return nil, err
	}
	delete(git, "sha")
	delete(git, "node_id")
	delete(git, "html_url")
	delete(git, "parents")
	git["comment_count"] = 0
	parents := []any{}
	for _, p := range cm.ParentHashes {
		parents = append(parents, map[string]any{"sha": p.String(), "url": r.apiURL() + "/commits/" + p.String(), "html_url": r.htmlURL() + "/commit/" + p.String()})
	}
	m := map[string]any{
		"sha": sha, "node_id": nodeID("C_", userID(sha)), "commit": git, "url": r.apiURL() + "/commits/" + sha,
		"html_url": r.htmlURL() + "/commit/" + sha, "comments_url": r.apiURL() + "/commits/" + sha + "/comments",
		"author": nil, "committer": nil, "parents": parents,
	}
	if withFiles {
		var parentTree plumbing.Hash
		if len(cm.ParentHashes) > 0 {
			pc, err := object.GetCommit(r.st, cm.ParentHashes[0])
			if err != nil {
				return nil, fmt.Errorf("read parent of %s: %w", sha, err)
			}
			parentTree = pc.TreeHash
		}
		files, err := diffTrees(r.st, parentTree, cm.TreeHash)
		if err != nil {
			return nil, err
		}
		add, del := 0, 0
		for _, f := range files {
			add, del = add+f.additions, del+f.deletions
		}
		if len(files) > 300 {
			files = files[:300]
		}
		m["files"] = r.filesJSON(files, sha)
		m["stats"] = map[string]any{"total": add + del, "additions": add, "deletions": del}
	}
	return m, nil
}

func (s *Server) getCommit(c *call) (int, any, error) {
	cm, err := c.repo.commitAt(c.params["ref"])
	if err != nil {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "No commit found for SHA: %s", c.params["ref"])
	}
	m, err := c.repo.repositoryCommitJSON(cm, true)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, m, nil
}

func (s *Server) compare(c *call) (int, any, error) {
	r := c.repo
	base, head, ok := strings.Cut(c.params["basehead"], "...")
	if !ok {
		return 0, nil, errNotFound
	}
	bc, err := r.commitAt(base)
	if err != nil {
		return 0, nil, errNotFound
	}
	hc, err := r.commitAt(head)
	if err != nil {
		return 0, nil, errNotFound
	}
	mb, _, err := r.mergeBase(base, head)
	if err != nil {
		return 0, nil, err
	}
	if mb == nil {
		return 0, nil, errorf(http.StatusNotFound, "No common ancestor between %s and %s.", base, head)
	}
	ahead, err := r.commitsBetween(bc.Hash.String(), hc.Hash.String())
	if err != nil {
		return 0, nil, err
	}
	behind, err := r.commitsBetween(hc.Hash.String(), bc.Hash.String())
	if err != nil {
		return 0, nil, err
	}
	status := "diverged"
	switch {
	case len(ahead) == 0 && len(behind) == 0:
		status = "identical"
	case len(behind) == 0:
		status = "ahead"
	case len(ahead) == 0:
		status = "behind"
	}
	files, err := diffTrees(r.st, mb.TreeHash, hc.TreeHash)
	if err != nil {
		return 0, nil, err
	}
	baseJSON, err := r.repositoryCommitJSON(bc, false)
	if err != nil {
		return 0, nil, err
	}
	mbJSON, err := r.repositoryCommitJSON(mb, false)
	if err != nil {
		return 0, nil, err
	}
	commits := make([]any, 0, len(ahead))
	for _, cm := range ahead {
		j, err := r.repositoryCommitJSON(cm, false)
		if err != nil {
			return 0, nil, err
		}
		commits = append(commits, j)
	}
	spec := c.params["basehead"]
	return http.StatusOK, map[string]any{
		"url": r.apiURL() + "/compare/" + spec, "html_url": r.htmlURL() + "/compare/" + spec,
		"permalink_url": r.htmlURL() + "/compare/" + spec, "diff_url": r.htmlURL() + "/compare/" + spec + ".diff",
		"patch_url":   r.htmlURL() + "/compare/" + spec + ".patch",
		"base_commit": baseJSON, "merge_base_commit": mbJSON, "status": status,
		"ahead_by": len(ahead), "behind_by": len(behind), "total_commits": len(ahead),
		"commits": commits, "files": paginate(c, r.filesJSON(files, hc.Hash.String()), 300, 300),
	}, nil
}

func (s *Server) getBranch(c *call) (int, any, error) {
	r := c.repo
	name := c.params["branch"]
	h, ok := r.branches[name]
	if !ok {
		return 0, nil, errorf(http.StatusNotFound, "Branch not found")
	}
	cm, err := object.GetCommit(r.st, h)
	if err != nil {
		return 0, nil, fmt.Errorf("read head of %s: %w", name, err)
	}
	commit, err := r.repositoryCommitJSON(cm, false)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{
		"name": name, "commit": commit, "protected": false,
		"_links": map[string]any{"self": r.apiURL() + "/branches/" + name, "html": r.htmlURL() + "/tree/" + name},
		"protection": map[string]any{"enabled": false, "required_status_checks": map[string]any{
			"enforcement_level": "off", "contexts": []string{}, "checks": []any{}}},
		"protection_url": r.apiURL() + "/branches/" + name + "/protection",
	}, nil
}

// maxContentsEntries is where the contents API stops listing a directory.
const maxContentsEntries = 1000

func (s *Server) getContents(c *call) (int, any, error) {
	r := c.repo
	ref := c.r.URL.Query().Get("ref")
	if ref == "" {
		ref = r.defaultBranch
	}
	cm, err := r.commitAt(ref)
	if err != nil {
		return 0, nil, errorf(http.StatusNotFound, "No commit found for the ref %s", ref)
	}
	p := strings.Trim(c.params["path"], "/")
	e, err := r.entryAt(cm.Hash.String(), p)
	if err != nil {
		return 0, nil, errNotFound
	}
	item := func(p string, e object.TreeEntry, withContent bool) (map[string]any, error) {
		typ := "file"
		switch e.Mode {
		case filemode.Dir:
			typ = "dir"
		case filemode.Symlink:
			typ = "symlink"
		case filemode.Submodule:
			typ = "submodule"
		}
		api := r.apiURL() + "/contents/" + p + "?ref=" + ref
		gitURL := r.apiURL() + "/git/blobs/" + e.Hash.String()
		if typ == "dir" {
			gitURL = r.apiURL() + "/git/trees/" + e.Hash.String()
		}
		m := map[string]any{
			"type": typ, "name": path.Base(p), "path": p, "sha": e.Hash.String(), "size": 0, "url": api,
			"git_url": gitURL, "html_url": r.htmlURL() + "/blob/" + ref + "/" + p,
			"download_url": r.s.WebURL() + "raw/" + r.FullName() + "/" + ref + "/" + p,
			"_links":       map[string]any{"self": api, "git": gitURL, "html": r.htmlURL() + "/blob/" + ref + "/" + p},
		}
		if typ == "file" || typ == "symlink" {
			data, err := readBlob(r.st, e.Hash)
			if err != nil {
				return nil, err
			}
			m["size"] = len(data)
			if typ == "symlink" && withContent {
				m["target"] = string(data)
			} else if withContent {
				m["content"], m["encoding"] = wrapBase64(data), "base64"
			}
		}
		return m, nil
	}
	if e.Mode != filemode.Dir {
		m, err := item(p, e, true)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, m, nil
	}
	t, err := object.GetTree(r.st, e.Hash)
	if err != nil {
		return 0, nil, fmt.Errorf("read tree %s: %w", p, err)
	}
	out := []any{}
	entries := t.Entries
	// GitHub lists at most 1,000 entries of a directory here ("use the Git Trees API" for more), and
	// says nothing about the rest.
	if len(entries) > maxContentsEntries {
		entries = entries[:maxContentsEntries]
	}
	for _, child := range entries {
		cp := strings.TrimPrefix(p+"/"+child.Name, "/")
		m, err := item(cp, child, false)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, m)
	}
	return http.StatusOK, out, nil
}

func sortedKeys(m map[string]plumbing.Hash) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}
