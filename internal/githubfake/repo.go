package githubfake

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/memory"
)

// File is a file to commit. Mode "" means "100644"; "100755" is executable; "120000" is a symlink
// whose Content is its target.
type File struct {
	Content []byte
	Mode    string
}

// MergeFiles is one commit's changes made of several sets (path → file); a later set wins on a path.
func MergeFiles(sets ...map[string]*File) map[string]*File {
	out := map[string]*File{}
	for _, set := range sets {
		maps.Copy(out, set)
	}
	return out
}

// Repo is one repository of the fake, with its git objects, branches, issues, PRs and check runs.
type Repo struct {
	s             *Server
	id            int64
	owner, name   string
	defaultBranch string
	created       time.Time
	st            *memory.Storage
	branches      map[string]plumbing.Hash
	perms         map[string]string
	issues        map[int]*issueState
	nextNumber    int
	comments      map[int64]*commentState
	checkRuns     map[int64]*checkRunState
	checkOrder    []int64
	actions       *actionsState            // actions.go
	deployments   []*deploymentState       // deployments.go
	tags          map[string]plumbing.Hash // tags.go
}

// issueState is an issue or, with pr set, a pull request.
type issueState struct {
	number           int
	title, body      string
	user             string
	state            string
	labels           []string
	created, updated time.Time
	closed           time.Time
	comments         []int64
	pr               *prState
}

// prState is what a pull request adds to an issue.
type prState struct {
	id               int64
	head, base       string
	headSHA, baseSHA string
	merged           bool
	mergedAt         time.Time
	mergedBy         string
	mergeCommitSHA   string
	draft            bool
	// fork is the owner of the fork the head branch lives in ("" when it is a branch of this repository).
	// The fake keeps a fork's commits in this repository's object store under the head branch name, as
	// GitHub keeps them reachable through refs/pull/N/head; only the payloads say fork.
	fork string
}

type commentState struct {
	id               int64
	number           int
	user, body       string
	created, updated time.Time
	reactions        []reaction
}

type reaction struct {
	id      int64
	user    string
	content string
}

// fakeAuthor signs the commits tests make directly.
var fakeAuthor = signature{name: "Fake Author", email: "author@example.com"}

// CreateRepo adds an empty repository whose defaultBranch holds one commit with a README.
func (s *Server) CreateRepo(owner, name, defaultBranch string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Repo{
		s: s, id: s.newID(), owner: owner, name: name, defaultBranch: defaultBranch,
		created: time.Now().UTC().Truncate(time.Second), st: memory.NewStorage(),
		branches: map[string]plumbing.Hash{}, perms: map[string]string{}, issues: map[int]*issueState{},
		comments: map[int64]*commentState{}, checkRuns: map[int64]*checkRunState{},
	}
	if _, err := r.commitLocked(defaultBranch, "Initial commit", map[string]*File{
		"README.md": {Content: []byte("# " + name + "\n")},
	}); err != nil {
		panic(fmt.Sprintf("githubfake: initial commit of %s/%s: %v", owner, name, err))
	}
	s.repos[strings.ToLower(owner+"/"+name)] = r
	s.repoOrder = append(s.repoOrder, r)
	return r
}

// FullName is "owner/name".
func (r *Repo) FullName() string { return r.owner + "/" + r.name }

// Storer is the repository's object store, for tests that build big trees directly.
func (r *Repo) Storer() storage.Storer { return r.st }

// Commit commits changes (a nil *File deletes the path, file or directory) on branch, creating the
// branch from the default branch's head when missing. It emits no webhook.
func (r *Repo) Commit(branch, message string, changes map[string]*File) (string, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	h, err := r.commitLocked(branch, message, changes)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (r *Repo) commitLocked(branch, message string, changes map[string]*File) (plumbing.Hash, error) {
	parent, ok := r.branches[branch]
	if !ok {
		parent = r.branches[r.defaultBranch]
	}
	var tree plumbing.Hash
	var parents []plumbing.Hash
	if !parent.IsZero() {
		c, err := object.GetCommit(r.st, parent)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("read head of %s: %w", branch, err)
		}
		tree, parents = c.TreeHash, []plumbing.Hash{parent}
	}
	tcs, err := r.fileChanges(changes)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	newTree, _, err := applyChanges(r.st, tree, tcs)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("build tree for %s: %w", branch, err)
	}
	h, err := writeCommit(r.st, newTree, parents, message, fakeAuthor, time.Now())
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit on %s: %w", branch, err)
	}
	r.branches[branch] = h
	return h, nil
}

// fileChanges stores the files' blobs and returns the tree changes, in path order.
func (r *Repo) fileChanges(changes map[string]*File) ([]treeChange, error) {
	paths := make([]string, 0, len(changes))
	for p := range changes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := make([]treeChange, 0, len(paths))
	for _, p := range paths {
		f := changes[p]
		if f == nil {
			out = append(out, treeChange{path: p, del: true})
			continue
		}
		mode := filemode.Regular
		if f.Mode != "" {
			m, err := filemode.New(f.Mode)
			if err != nil || (m != filemode.Regular && m != filemode.Executable && m != filemode.Symlink) {
				return nil, fmt.Errorf("file %s: unsupported mode %q", p, f.Mode)
			}
			mode = m
		}
		h, err := writeBlob(r.st, f.Content)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", p, err)
		}
		out = append(out, treeChange{path: p, mode: mode, hash: h})
	}
	return out, nil
}

// CreateBranch points a new branch at fromSHA.
func (r *Repo) CreateBranch(name, fromSHA string) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if _, ok := r.branches[name]; ok {
		return fmt.Errorf("create branch %s: already exists", name)
	}
	h := plumbing.NewHash(fromSHA)
	if _, err := object.GetCommit(r.st, h); err != nil {
		return fmt.Errorf("create branch %s at %s: %w", name, fromSHA, err)
	}
	r.branches[name] = h
	return nil
}

// BranchSHA is the head commit of a branch, "" when it does not exist.
func (r *Repo) BranchSHA(name string) string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	h, ok := r.branches[name]
	if !ok {
		return ""
	}
	return h.String()
}

// TreeSHA is the SHA of the tree or blob at path ("" = root) in a branch or commit.
func (r *Repo) TreeSHA(ref, path string) (string, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	e, err := r.entryAt(ref, path)
	if err != nil {
		return "", err
	}
	return e.Hash.String(), nil
}

// ReadFile reads the file at path in a branch or commit.
func (r *Repo) ReadFile(ref, path string) ([]byte, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	e, err := r.entryAt(ref, path)
	if err != nil {
		return nil, err
	}
	if e.Mode == filemode.Dir {
		return nil, fmt.Errorf("read %s at %s: is a directory", path, ref)
	}
	return readBlob(r.st, e.Hash)
}

// SetPermission gives user a role: read, triage, write, maintain or admin. Users never given one
// have no access at all.
func (r *Repo) SetPermission(user, role string) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.perms[strings.ToLower(user)] = role
}

// resolve turns a branch name, "refs/heads/x", "heads/x" or a commit SHA into a commit hash.
func (r *Repo) resolve(ref string) (plumbing.Hash, bool) {
	name := strings.TrimPrefix(strings.TrimPrefix(ref, "refs/"), "heads/")
	if h, ok := r.branches[name]; ok {
		return h, true
	}
	if isSHA(ref) {
		h := plumbing.NewHash(ref)
		if _, err := object.GetCommit(r.st, h); err == nil {
			return h, true
		}
	}
	return plumbing.ZeroHash, false
}

// commitAt reads the commit a ref resolves to.
func (r *Repo) commitAt(ref string) (*object.Commit, error) {
	h, ok := r.resolve(ref)
	if !ok {
		return nil, fmt.Errorf("resolve %q: no such branch or commit", ref)
	}
	c, err := object.GetCommit(r.st, h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c, nil
}

// entryAt finds the entry at path in ref's tree; path "" is the root tree.
func (r *Repo) entryAt(ref, path string) (object.TreeEntry, error) {
	c, err := r.commitAt(ref)
	if err != nil {
		return object.TreeEntry{}, err
	}
	path = strings.Trim(path, "/")
	if path == "" {
		return object.TreeEntry{Name: "", Mode: filemode.Dir, Hash: c.TreeHash}, nil
	}
	t, err := object.GetTree(r.st, c.TreeHash)
	if err != nil {
		return object.TreeEntry{}, fmt.Errorf("read tree of %s: %w", ref, err)
	}
	e, err := t.FindEntry(path)
	if err != nil {
		return object.TreeEntry{}, fmt.Errorf("find %s at %s: %w", path, ref, err)
	}
	return *e, nil
}

// permission is a user's role, "" for none.
func (r *Repo) permission(user string) string { return r.perms[strings.ToLower(user)] }
