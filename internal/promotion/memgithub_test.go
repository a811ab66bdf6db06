package promotion

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/storage"
)

// memGitHub is one repository's GitHub in memory, as the promotion service sees it through its GitHub
// interface: content-addressed git objects, branches, PRs, labels, comments, check runs and statuses. It
// answers the way GitHub documents, refusals included (422 for an existing ref, an open PR from the same
// head or a body over 65,536 characters; 405 and 409 on a merge; 404 for a missing branch), with go-github's
// *github.ErrorResponse, so the service's own reading of GitHub's answers is what the tests exercise.
//
// Limits, stricter than GitHub and never lenient: a squash merge needs the base not to have moved since the
// head forked from it (the fake does no three-way merge and answers 405 as for a conflict), and every
// comment is written as the bot.
type memGitHub struct {
	owner, name string
	bot         string // the login comments are written as
	appID       int64  // the App check runs are written as, unless a test names another

	mu       sync.Mutex
	objects  map[string]any // SHA → []storage.TreeEntry (tree), storage.Commit, []byte (blob)
	refs     map[string]string
	prs      []*github.PullRequest
	number   int // last PR number
	comments map[int][]*github.IssueComment
	lastID   int64
	runs     map[string][]*github.CheckRun // by head SHA
	statuses map[string][]*github.RepoStatus
	tick     int // a clock for updated_at and commit identity
	calls    map[string]int
	faults   []memFault
}

// memFault makes the next times calls of method fail with err; when applied is set the call takes effect
// first (an answer lost after GitHub did the work).
type memFault struct {
	method  string
	err     error
	applied bool
	times   int
}

func newMemGitHub(owner, name string) *memGitHub {
	return &memGitHub{
		owner: owner, name: name, bot: "storagebot[bot]", appID: 42,
		objects: map[string]any{}, refs: map[string]string{}, comments: map[int][]*github.IssueComment{},
		runs: map[string][]*github.CheckRun{}, statuses: map[string][]*github.RepoStatus{}, calls: map[string]int{},
	}
}

var _ GitHub = (*memGitHub)(nil)

// apiError is GitHub's error answer as go-github returns it.
func apiError(status int, method, path, message string) error {
	req, _ := http.NewRequest(method, "https://api.github.com/"+path, nil)
	return &github.ErrorResponse{Response: &http.Response{StatusCode: status, Request: req}, Message: message}
}

// fail adds a fault: the next times calls of method fail with status (a 502 or a refusal), after taking
// effect when applied (a lost answer).
func (m *memGitHub) fail(method string, times int, applied bool, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = append(m.faults, memFault{method: method, times: times, applied: applied,
		err: apiError(status, "POST", method, http.StatusText(status))})
}

// enter counts a call of method. A fault that fails the call before it takes effect is returned as an error;
// one whose answer is lost after the call took effect is returned for done. Call with mu held.
func (m *memGitHub) enter(method string) (*memFault, error) {
	m.calls[method]++
	for i := range m.faults {
		if f := &m.faults[i]; f.method == method && f.times > 0 {
			f.times--
			if !f.applied {
				return nil, f.err
			}
			return f, nil
		}
	}
	return nil, nil
}

// done is the answer of a call whose outcome was err: the fault's error when its answer is lost.
func done(f *memFault, err error) error {
	if f != nil {
		return f.err
	}
	return err
}

func (m *memGitHub) writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, method := range []string{"CreateBranch", "ResetBranch", "DeleteBranch", "CreateTree", "CreateCommit",
		"CreatePullRequest", "ClosePullRequest", "MergePullRequest", "AddLabels", "CreateComment", "DeleteComment"} {
		n += m.calls[method]
	}
	return n
}

// Git objects.

func (m *memGitHub) put(kind string, canonical string, obj any) string {
	sum := sha1.Sum([]byte(kind + "\x00" + canonical))
	sha := hex.EncodeToString(sum[:])
	m.objects[sha] = obj
	return sha
}

func (m *memGitHub) putBlob(content string) string { return m.put("blob", content, []byte(content)) }

func (m *memGitHub) putTree(entries []storage.TreeEntry) string {
	sorted := append([]storage.TreeEntry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var b strings.Builder
	for _, e := range sorted {
		fmt.Fprintf(&b, "%s %s %s %s\n", e.Mode, e.Type, e.SHA, e.Path)
	}
	return m.put("tree", b.String(), sorted)
}

func (m *memGitHub) putCommit(tree string, parents ...string) string {
	m.tick++
	c := storage.Commit{TreeSHA: tree, Parents: parents}
	c.SHA = m.put("commit", fmt.Sprintf("%s %v %d", tree, parents, m.tick), c)
	m.objects[c.SHA] = c
	return c.SHA
}

func (m *memGitHub) tree(sha string) ([]storage.TreeEntry, bool) {
	t, ok := m.objects[sha].([]storage.TreeEntry)
	return t, ok
}

func (m *memGitHub) commit(sha string) (storage.Commit, bool) {
	c, ok := m.objects[sha].(storage.Commit)
	return c, ok
}

// treeNode is a tree being rewritten by CreateTree.
type treeNode struct {
	entries  map[string]storage.TreeEntry
	children map[string]*treeNode
}

func (m *memGitHub) node(sha string) *treeNode {
	n := &treeNode{entries: map[string]storage.TreeEntry{}, children: map[string]*treeNode{}}
	entries, _ := m.tree(sha)
	for _, e := range entries {
		n.entries[e.Path] = e
	}
	return n
}

func (m *memGitHub) write(n *treeNode) string {
	for name, child := range n.children {
		n.entries[name] = storage.TreeEntry{Path: name, Mode: "040000", Type: storage.TypeTree, SHA: m.write(child)}
	}
	list := make([]storage.TreeEntry, 0, len(n.entries))
	for _, e := range n.entries {
		list = append(list, e)
	}
	return m.putTree(list)
}

// files writes a commit of files (path → content) on top of branch's head (a new branch when it has none).
func (m *memGitHub) files(tb testing.TB, branch string, files map[string]string) string {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var entries []*github.TreeEntry
	for p, content := range files {
		entries = append(entries, &github.TreeEntry{Path: github.String(p), Mode: github.String("100644"), Type: github.String("blob"),
			SHA: github.String(m.putBlob(content))})
	}
	parent := m.refs[branch]
	base := ""
	if c, ok := m.commit(parent); ok {
		base = c.TreeSHA
	}
	tree, err := m.createTree(base, entries)
	if err != nil {
		tb.Fatal(err)
	}
	var parents []string
	if parent != "" {
		parents = []string{parent}
	}
	m.refs[branch] = m.putCommit(tree, parents...)
	return m.refs[branch]
}

func (m *memGitHub) createTree(base string, entries []*github.TreeEntry) (string, error) {
	if base != "" {
		if _, ok := m.tree(base); !ok {
			return "", apiError(http.StatusUnprocessableEntity, "POST", "git/trees", "base_tree is not a valid tree")
		}
	}
	root := m.node(base)
	for _, e := range entries {
		if _, ok := m.objects[e.GetSHA()]; !ok {
			return "", apiError(http.StatusUnprocessableEntity, "POST", "git/trees", "tree.sha "+e.GetSHA()+" is not a valid object")
		}
		parts := strings.Split(e.GetPath(), "/")
		n := root
		for _, dir := range parts[:len(parts)-1] {
			child, ok := n.children[dir]
			if !ok {
				child = m.node(n.entries[dir].SHA)
				n.children[dir] = child
			}
			n = child
		}
		last := parts[len(parts)-1]
		delete(n.children, last)
		n.entries[last] = storage.TreeEntry{Path: last, Mode: e.GetMode(), Type: storage.EntryType(e.GetType()), SHA: e.GetSHA()}
	}
	return m.write(root), nil
}

// GitHub interface: git data.

func (m *memGitHub) GitData(owner, name string) storage.Reader { return memReader{m} }

func (m *memGitHub) Branch(_ context.Context, _, _, branch string) (*github.Branch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("Branch")
	if ferr != nil {
		return nil, ferr
	}
	sha, ok := m.refs[branch]
	if !ok {
		return nil, done(f, apiError(http.StatusNotFound, "GET", "branches/"+branch, "Branch not found"))
	}
	c, _ := m.commit(sha)
	b := &github.Branch{Name: github.String(branch), Commit: &github.RepositoryCommit{SHA: github.String(sha),
		Commit: &github.Commit{Tree: &github.Tree{SHA: github.String(c.TreeSHA)}}}}
	return b, done(f, nil)
}

func (m *memGitHub) BranchHead(_ context.Context, _, _, branch string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("BranchHead")
	if ferr != nil {
		return "", ferr
	}
	sha, ok := m.refs[branch]
	if !ok {
		return "", done(f, apiError(http.StatusNotFound, "GET", "git/ref/heads/"+branch, "Not Found"))
	}
	return sha, done(f, nil)
}

func (m *memGitHub) CreateBranch(_ context.Context, _, _, branch, sha string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("CreateBranch")
	if ferr != nil {
		return ferr
	}
	if _, ok := m.refs[branch]; ok {
		return done(f, apiError(http.StatusUnprocessableEntity, "POST", "git/refs", "Reference already exists"))
	}
	if _, ok := m.commit(sha); !ok {
		return done(f, apiError(http.StatusUnprocessableEntity, "POST", "git/refs", "Object does not exist"))
	}
	m.refs[branch] = sha
	return done(f, nil)
}

func (m *memGitHub) ResetBranch(_ context.Context, _, _, branch, sha string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("ResetBranch")
	if ferr != nil {
		return ferr
	}
	if _, ok := m.refs[branch]; !ok {
		return done(f, apiError(http.StatusUnprocessableEntity, "PATCH", "git/refs/heads/"+branch, "Reference does not exist"))
	}
	if _, ok := m.commit(sha); !ok {
		return done(f, apiError(http.StatusUnprocessableEntity, "PATCH", "git/refs/heads/"+branch, "Object does not exist"))
	}
	m.refs[branch] = sha
	return done(f, nil)
}

func (m *memGitHub) DeleteBranch(_ context.Context, _, _, branch string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("DeleteBranch")
	if ferr != nil {
		return ferr
	}
	if _, ok := m.refs[branch]; !ok {
		return done(f, apiError(http.StatusUnprocessableEntity, "DELETE", "git/refs/heads/"+branch, "Reference does not exist"))
	}
	delete(m.refs, branch)
	for _, pr := range m.prs { // GitHub closes the open PRs whose head branch goes
		if pr.GetState() == "open" && pr.GetHead().GetRef() == branch {
			pr.State = github.String("closed")
		}
	}
	return done(f, nil)
}

func (m *memGitHub) CreateTree(_ context.Context, _, _, base string, entries []*github.TreeEntry) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("CreateTree")
	if ferr != nil {
		return "", ferr
	}
	sha, err := m.createTree(base, entries)
	return sha, done(f, err)
}

func (m *memGitHub) CreateCommit(_ context.Context, _, _, _, tree string, parents ...string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("CreateCommit")
	if ferr != nil {
		return "", ferr
	}
	if _, ok := m.tree(tree); !ok {
		return "", done(f, apiError(http.StatusUnprocessableEntity, "POST", "git/commits", "Tree SHA does not exist"))
	}
	for _, p := range parents {
		if _, ok := m.commit(p); !ok {
			return "", done(f, apiError(http.StatusUnprocessableEntity, "POST", "git/commits", "Parent SHA does not exist or is not a commit object"))
		}
	}
	return m.putCommit(tree, parents...), done(f, nil)
}

// GitHub interface: pull requests.

// view is a PR as GitHub answers it: the head SHA follows the head branch while the PR is open.
func (m *memGitHub) view(pr *github.PullRequest, listed bool) *github.PullRequest {
	c := *pr
	head, base := *pr.Head, *pr.Base
	c.Head, c.Base = &head, &base
	if c.GetState() == "open" {
		if sha, ok := m.refs[head.GetRef()]; ok {
			c.Head.SHA = github.String(sha)
		}
	}
	c.Labels = append([]*github.Label(nil), pr.Labels...)
	if listed {
		c.Merged = nil // a listing has merged_at, not "merged"
	}
	return &c
}

func (m *memGitHub) pr(number int) *github.PullRequest {
	for _, pr := range m.prs {
		if pr.GetNumber() == number {
			return pr
		}
	}
	return nil
}

func (m *memGitHub) PullRequest(_ context.Context, _, _ string, number int) (*github.PullRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("PullRequest")
	if ferr != nil {
		return nil, ferr
	}
	pr := m.pr(number)
	if pr == nil {
		return nil, done(f, apiError(http.StatusNotFound, "GET", fmt.Sprintf("pulls/%d", number), "Not Found"))
	}
	return m.view(pr, false), done(f, nil)
}

func (m *memGitHub) list(keep func(*github.PullRequest) bool) []*github.PullRequest {
	var out []*github.PullRequest
	for i := len(m.prs) - 1; i >= 0; i-- { // newest first, as GitHub sorts by default
		if keep(m.prs[i]) {
			out = append(out, m.view(m.prs[i], true))
		}
	}
	return out
}

func (m *memGitHub) PullRequestsFrom(_ context.Context, _, _, branch, state string) ([]*github.PullRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("PullRequestsFrom")
	if ferr != nil {
		return nil, ferr
	}
	out := m.list(func(pr *github.PullRequest) bool {
		return pr.GetHead().GetRef() == branch && (state == "all" || pr.GetState() == state)
	})
	if len(out) > 10 {
		out = out[:10]
	}
	return out, done(f, nil)
}

func (m *memGitHub) OpenPullRequests(_ context.Context, _, _, base string) ([]*github.PullRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("OpenPullRequests")
	if ferr != nil {
		return nil, ferr
	}
	return m.list(func(pr *github.PullRequest) bool {
		return pr.GetState() == "open" && (base == "" || pr.GetBase().GetRef() == base)
	}), done(f, nil)
}

func (m *memGitHub) RecentlyClosedPullRequests(_ context.Context, _, _, base string, n int) ([]*github.PullRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("RecentlyClosedPullRequests")
	if ferr != nil {
		return nil, ferr
	}
	out := m.list(func(pr *github.PullRequest) bool { return pr.GetState() == "closed" && pr.GetBase().GetRef() == base })
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetUpdatedAt().After(out[j].GetUpdatedAt().Time) })
	if len(out) > n {
		out = out[:n]
	}
	return out, done(f, nil)
}

func (m *memGitHub) stamp() *github.Timestamp {
	m.tick++
	return &github.Timestamp{Time: time.Date(2026, 1, 1, 0, 0, m.tick, 0, time.UTC)}
}

func (m *memGitHub) CreatePullRequest(_ context.Context, _, _, head, base, title, body string) (*github.PullRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("CreatePullRequest")
	if ferr != nil {
		return nil, ferr
	}
	fail := func(msg string) (*github.PullRequest, error) {
		return nil, done(f, apiError(http.StatusUnprocessableEntity, "POST", "pulls", msg))
	}
	headSHA, okHead := m.refs[head]
	baseSHA, okBase := m.refs[base]
	switch {
	case !okHead || !okBase:
		return fail("Validation Failed: head or base invalid")
	case headSHA == baseSHA:
		return fail("Validation Failed: No commits between " + base + " and " + head)
	case utf8.RuneCountInString(title) > MaxTitleLength:
		return fail("Validation Failed: title is too long (maximum is 256 characters)")
	case utf8.RuneCountInString(body) > MaxBodyLength:
		return fail("Validation Failed: body is too long (maximum is 65536 characters)")
	}
	for _, pr := range m.prs {
		if pr.GetState() == "open" && pr.GetHead().GetRef() == head && pr.GetBase().GetRef() == base {
			return fail("Validation Failed: A pull request already exists for " + m.owner + ":" + head + ".")
		}
	}
	m.number++
	pr := &github.PullRequest{
		Number: github.Int(m.number), State: github.String("open"), Title: github.String(title), Body: github.String(body),
		HTMLURL: github.String(fmt.Sprintf("https://github.com/%s/%s/pull/%d", m.owner, m.name, m.number)),
		User:    &github.User{Login: github.String(m.bot)}, Merged: github.Bool(false), UpdatedAt: m.stamp(),
		Head: &github.PullRequestBranch{Ref: github.String(head), SHA: github.String(headSHA)},
		Base: &github.PullRequestBranch{Ref: github.String(base), SHA: github.String(baseSHA)},
	}
	m.prs = append(m.prs, pr)
	return m.view(pr, false), done(f, nil)
}

func (m *memGitHub) ClosePullRequest(_ context.Context, _, _ string, number int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("ClosePullRequest")
	if ferr != nil {
		return ferr
	}
	pr := m.pr(number)
	if pr == nil {
		return done(f, apiError(http.StatusNotFound, "PATCH", fmt.Sprintf("pulls/%d", number), "Not Found"))
	}
	if pr.GetState() == "open" {
		pr.State, pr.UpdatedAt = github.String("closed"), m.stamp()
	}
	return done(f, nil)
}

func (m *memGitHub) MergePullRequest(_ context.Context, _, _ string, number int, sha, method string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("MergePullRequest")
	if ferr != nil {
		return ferr
	}
	path := fmt.Sprintf("pulls/%d/merge", number)
	pr := m.pr(number)
	if pr == nil {
		return done(f, apiError(http.StatusNotFound, "PUT", path, "Not Found"))
	}
	head, base := m.refs[pr.GetHead().GetRef()], m.refs[pr.GetBase().GetRef()]
	switch {
	case pr.GetState() != "open":
		return done(f, apiError(http.StatusMethodNotAllowed, "PUT", path, "Pull Request is not mergeable"))
	case sha != "" && sha != head:
		return done(f, apiError(http.StatusConflict, "PUT", path, "Head branch was modified. Review and try the merge again."))
	case !m.ancestor(base, head):
		return done(f, apiError(http.StatusMethodNotAllowed, "PUT", path, "Pull Request is not mergeable"))
	}
	hc, _ := m.commit(head)
	merge := m.putCommit(hc.TreeSHA, base, head) // a merge commit; its tree is the head's, the base being an ancestor
	if method == "squash" {
		merge = m.putCommit(hc.TreeSHA, base)
	}
	m.refs[pr.GetBase().GetRef()] = merge
	pr.Head.SHA = github.String(head)
	pr.State, pr.Merged, pr.MergeCommitSHA = github.String("closed"), github.Bool(true), github.String(merge)
	pr.MergedAt = m.stamp()
	pr.UpdatedAt = pr.MergedAt
	return done(f, nil)
}

// ancestor reports whether commit a is b or one of its ancestors. Call with mu held.
func (m *memGitHub) ancestor(a, b string) bool {
	for _, c := range m.ancestors(b) {
		if c == a {
			return true
		}
	}
	return false
}

// ancestors lists sha and every commit before it, nearest first. Call with mu held.
func (m *memGitHub) ancestors(sha string) []string {
	var out []string
	seen := map[string]bool{}
	queue := []string{sha}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
		c, _ := m.commit(s)
		queue = append(queue, c.Parents...)
	}
	return out
}

func (m *memGitHub) AddLabels(_ context.Context, _, _ string, number int, labels ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("AddLabels")
	if ferr != nil {
		return ferr
	}
	pr := m.pr(number)
	if pr == nil {
		return done(f, apiError(http.StatusNotFound, "POST", fmt.Sprintf("issues/%d/labels", number), "Not Found"))
	}
	for _, l := range labels {
		has := false
		for _, e := range pr.Labels {
			has = has || e.GetName() == l
		}
		if !has {
			pr.Labels = append(pr.Labels, &github.Label{Name: github.String(l)})
		}
	}
	return done(f, nil)
}

// GitHub interface: comments, checks and statuses.

func (m *memGitHub) IssueComments(_ context.Context, _, _ string, number int) ([]*github.IssueComment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("IssueComments")
	if ferr != nil {
		return nil, ferr
	}
	out := make([]*github.IssueComment, 0, len(m.comments[number]))
	for _, c := range m.comments[number] {
		cc := *c
		out = append(out, &cc)
	}
	return out, done(f, nil)
}

// comment adds a comment by login; the service's own posts go through CreateComment.
func (m *memGitHub) comment(number int, login, body string) int64 {
	m.lastID++
	m.comments[number] = append(m.comments[number], &github.IssueComment{ID: github.Int64(m.lastID), Body: github.String(body),
		User: &github.User{Login: github.String(login)}})
	return m.lastID
}

func (m *memGitHub) CreateComment(_ context.Context, _, _ string, number int, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("CreateComment")
	if ferr != nil {
		return ferr
	}
	m.comment(number, m.bot, body)
	return done(f, nil)
}

func (m *memGitHub) DeleteComment(_ context.Context, _, _ string, id int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("DeleteComment")
	if ferr != nil {
		return ferr
	}
	for n, list := range m.comments {
		for i, c := range list {
			if c.GetID() == id {
				m.comments[n] = append(list[:i:i], list[i+1:]...)
				return done(f, nil)
			}
		}
	}
	return done(f, nil) // already gone: no error, as the interface promises
}

// checkRun records a completed check run on sha by the App appID.
func (m *memGitHub) checkRun(sha, name string, appID int64, conclusion string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastID++
	m.runs[sha] = append(m.runs[sha], &github.CheckRun{ID: github.Int64(m.lastID), Name: github.String(name), HeadSHA: github.String(sha),
		Status: github.String("completed"), Conclusion: github.String(conclusion),
		App: &github.App{ID: github.Int64(appID), Slug: github.String(fmt.Sprintf("app-%d", appID))}})
}

func (m *memGitHub) CheckRuns(_ context.Context, _, _, ref string, opts github.ListCheckRunsOptions) ([]*github.CheckRun, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("CheckRuns")
	if ferr != nil {
		return nil, ferr
	}
	runs := m.runs[ref]
	if opts.GetFilter() == "latest" { // the newest run of each name and App
		newest := map[string]*github.CheckRun{}
		for _, r := range runs {
			newest[fmt.Sprintf("%s\x00%d", r.GetName(), r.GetApp().GetID())] = r
		}
		runs = nil
		for _, r := range newest {
			runs = append(runs, r)
		}
	}
	return runs, done(f, nil)
}

func (m *memGitHub) CombinedStatus(_ context.Context, _, _, ref string) (*github.CombinedStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ferr := m.enter("CombinedStatus")
	if ferr != nil {
		return nil, ferr
	}
	st := &github.CombinedStatus{State: github.String("pending"), Statuses: m.statuses[ref]} // GitHub's answer with no status
	for _, s := range m.statuses[ref] {
		switch s.GetState() {
		case "failure", "error":
			st.State = s.State
		case "success":
			if st.GetState() == "pending" {
				st.State = s.State
			}
		}
	}
	return st, done(f, nil)
}

// memReader is storage.Reader over memGitHub's objects. It asks for its reads to be overlapped
// (storage.ReadConcurrency), as GitHub's reader does, so that the unit tests run the service's concurrent
// reads (under -race too).
type memReader struct{ m *memGitHub }

// Concurrency is the bound the service overlaps this reader's reads within.
func (memReader) Concurrency() int { return memReadConcurrency }

// memReadConcurrency is memReader's bound: small, but over 1 so that reads do overlap.
const memReadConcurrency = 4

func (r memReader) ResolveRevision(_ context.Context, rev string) (storage.Commit, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if sha, ok := r.m.refs[strings.TrimPrefix(rev, "refs/heads/")]; ok {
		rev = sha
	}
	c, ok := r.m.commit(rev)
	if !ok {
		return storage.Commit{}, fmt.Errorf("revision %s: %w", rev, storage.ErrNotFound)
	}
	return c, nil
}

func (r memReader) MergeBase(_ context.Context, a, b string) (string, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	ofA := map[string]bool{}
	for _, c := range r.m.ancestors(a) {
		ofA[c] = true
	}
	for _, c := range r.m.ancestors(b) {
		if ofA[c] {
			return c, nil
		}
	}
	return "", fmt.Errorf("merge base of %s and %s: %w", a, b, storage.ErrNotFound)
}

func (r memReader) Tree(_ context.Context, sha string, recursive bool) ([]storage.TreeEntry, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return r.m.listTree(sha, "", recursive)
}

func (m *memGitHub) listTree(sha, prefix string, recursive bool) ([]storage.TreeEntry, error) {
	entries, ok := m.tree(sha)
	if !ok {
		return nil, fmt.Errorf("tree %s: %w", sha, storage.ErrNotFound)
	}
	var out []storage.TreeEntry
	for _, e := range entries {
		e.Path = prefix + e.Path
		out = append(out, e)
		if recursive && e.Type == storage.TypeTree {
			sub, err := m.listTree(e.SHA, e.Path+"/", true)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

func (r memReader) Blob(_ context.Context, sha string) ([]byte, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	b, ok := r.m.objects[sha].([]byte)
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", sha, storage.ErrNotFound)
	}
	return b, nil
}
