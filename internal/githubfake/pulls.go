package githubfake

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// PROptions describe a pull request to open.
type PROptions struct {
	Head, Base  string // branch names in this repository
	Title, Body string
	User        string // author login
	// Fork, when set, is the owner of the fork the head branch comes from (e.g. the author's): the PR's
	// head.repo is that fork, and check runs on its head list no pull requests, as on GitHub.
	Fork string
}

// PullRequest is a snapshot of a pull request.
type PullRequest struct {
	Number         int
	Title, Body    string
	User           string
	Head, Base     string
	HeadSHA        string
	BaseSHA        string
	State          string // open | closed
	Merged         bool
	MergeCommitSHA string
	Labels         []string
	Fork           string // the fork's owner for a fork PR, else ""
}

// maxPullFiles is where GitHub stops listing a pull request's files.
const maxPullFiles = 3000

// GitHub's length limits, in characters: issue and pull request titles, and bodies of issues, pull
// requests and comments. Over them GitHub answers 422 Validation Failed.
const (
	MaxTitleLength = 256
	MaxBodyLength  = 65536
)

// checkLength refuses value when it is longer than limit characters, as GitHub does: 422 "Validation
// Failed" with one error naming the resource and field ("title is too long (maximum is 256 characters)").
func checkLength(resource, field, value string, limit int) error {
	if utf8.RuneCountInString(value) <= limit {
		return nil
	}
	return &apiError{status: http.StatusUnprocessableEntity, message: "Validation Failed", errors: []map[string]any{{
		"resource": resource, "code": "custom", "field": field,
		"message": fmt.Sprintf("%s is too long (maximum is %d characters)", field, limit),
	}}}
}

// checkIssueText applies the title and body limits to an issue or pull request (GitHub reports both as
// resource "Issue"); nil values are not being set.
func checkIssueText(title, body *string) error {
	if title != nil {
		if err := checkLength("Issue", "title", *title, MaxTitleLength); err != nil {
			return err
		}
	}
	if body != nil {
		if err := checkLength("Issue", "body", *body, MaxBodyLength); err != nil {
			return err
		}
	}
	return nil
}

// OpenPullRequest opens a pull request and emits pull_request "opened".
func (r *Repo) OpenPullRequest(o PROptions) (*PullRequest, error) {
	r.s.mu.Lock()
	is, events, err := r.openPullLocked(o)
	var snap PullRequest
	if err == nil {
		snap = r.pullSnapshot(is)
	}
	r.s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r.s.emit(events)
	return &snap, nil
}

func (r *Repo) openPullLocked(o PROptions) (*issueState, []event, error) {
	if err := checkIssueText(&o.Title, &o.Body); err != nil {
		return nil, nil, err
	}
	head, ok := r.branches[o.Head]
	if !ok {
		return nil, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: head %q does not exist", o.Head)
	}
	base, ok := r.branches[o.Base]
	if !ok {
		return nil, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: base %q does not exist", o.Base)
	}
	for _, is := range r.issues {
		if is.pr != nil && is.state == "open" && is.pr.head == o.Head && is.pr.base == o.Base && is.pr.fork == o.Fork {
			return nil, nil, errorf(http.StatusUnprocessableEntity, "A pull request already exists for %s:%s.", r.owner, o.Head)
		}
	}
	if n, err := r.aheadBy(base.String(), head.String()); err != nil || n == 0 {
		return nil, nil, errorf(http.StatusUnprocessableEntity, "No commits between %s and %s", o.Base, o.Head)
	}
	now := time.Now().UTC().Truncate(time.Second)
	r.nextNumber++
	is := &issueState{
		number: r.nextNumber, title: o.Title, body: o.Body, user: o.User, state: "open",
		created: now, updated: now,
		pr: &prState{id: r.s.newID(), head: o.Head, base: o.Base, headSHA: head.String(), baseSHA: base.String(), fork: o.Fork},
	}
	r.issues[is.number] = is
	ev := r.newEvent("pull_request", "opened", o.User, map[string]any{"number": is.number, "pull_request": r.pullJSON(is)})
	return is, []event{ev}, nil
}

// PushToPullRequest commits changes on the pull request's head branch and emits push and
// pull_request "synchronize".
func (r *Repo) PushToPullRequest(number int, message string, changes map[string]*File) (string, error) {
	r.s.mu.Lock()
	is, err := r.pull(number)
	if err != nil {
		r.s.mu.Unlock()
		return "", err
	}
	before := r.branches[is.pr.head]
	after, err := r.commitLocked(is.pr.head, message, changes)
	if err != nil {
		r.s.mu.Unlock()
		return "", err
	}
	is.pr.headSHA = after.String()
	is.updated = time.Now().UTC().Truncate(time.Second)
	events := []event{
		r.pushEvent(is.pr.head, before, after, []plumbing.Hash{after}, is.user),
		r.newEvent("pull_request", "synchronize", is.user, map[string]any{
			"number": number, "before": before.String(), "after": after.String(), "pull_request": r.pullJSON(is),
		}),
	}
	r.s.mu.Unlock()
	r.s.emit(events)
	return after.String(), nil
}

// EditPullRequestTitle changes the title and emits pull_request "edited".
func (r *Repo) EditPullRequestTitle(number int, title string) error {
	r.s.mu.Lock()
	is, err := r.pull(number)
	if err == nil {
		err = checkIssueText(&title, nil)
	}
	if err != nil {
		r.s.mu.Unlock()
		return err
	}
	events := r.editIssueLocked(is, is.user, &title, nil, "", "")
	r.s.mu.Unlock()
	r.s.emit(events)
	return nil
}

// PREdit is an edit of a pull request; nil fields stay as they are.
type PREdit struct {
	Title, Body, Base *string
}

// EditPullRequest applies e as user and emits pull_request "edited" with the changes GitHub reports.
func (r *Repo) EditPullRequest(number int, user string, e PREdit) error {
	r.s.mu.Lock()
	is, err := r.pull(number)
	if err != nil {
		r.s.mu.Unlock()
		return err
	}
	baseFrom, err := r.changeBaseLocked(is, e.Base)
	if err != nil {
		r.s.mu.Unlock()
		return err
	}
	events := r.editIssueLocked(is, user, e.Title, e.Body, "", baseFrom)
	r.s.mu.Unlock()
	r.s.emit(events)
	return nil
}

// changeBaseLocked retargets an open pull request to base and returns the base it had ("" when unchanged).
func (r *Repo) changeBaseLocked(is *issueState, base *string) (string, error) {
	if base == nil || *base == "" || *base == is.pr.base {
		return "", nil
	}
	if _, ok := r.branches[*base]; !ok {
		return "", errorf(http.StatusUnprocessableEntity, "Validation Failed: base %q does not exist", *base)
	}
	from := is.pr.base
	is.pr.base = *base
	return from, nil
}

// editIssueLocked applies title, body and state edits and returns the pull_request events GitHub
// would send (none for a plain issue: the fake does not emit issues events). baseFrom is the base branch a
// pull request had before changeBaseLocked retargeted it ("" when it kept its base).
func (r *Repo) editIssueLocked(is *issueState, by string, title, body *string, state, baseFrom string) []event {
	changes := map[string]any{}
	if baseFrom != "" {
		changes["base"] = map[string]any{
			"ref": map[string]any{"from": baseFrom}, "sha": map[string]any{"from": r.branches[baseFrom].String()},
		}
	}
	if title != nil && *title != is.title {
		changes["title"] = map[string]any{"from": is.title}
		is.title = *title
	}
	if body != nil && *body != is.body {
		changes["body"] = map[string]any{"from": is.body}
		is.body = *body
	}
	now := time.Now().UTC().Truncate(time.Second)
	is.updated = now
	var events []event
	if is.pr != nil && len(changes) > 0 {
		events = append(events, r.newEvent("pull_request", "edited", by, map[string]any{
			"number": is.number, "changes": changes, "pull_request": r.pullJSON(is),
		}))
	}
	if state != "" && state != is.state && !(is.pr != nil && is.pr.merged) {
		action := "reopened"
		if state == "closed" {
			action = "closed"
			if is.pr != nil {
				is.pr.headSHA, is.pr.baseSHA = r.prSHAs(is)
			}
			is.closed = now
		} else {
			is.closed = time.Time{}
		}
		is.state = state
		if is.pr != nil {
			events = append(events, r.newEvent("pull_request", action, by, map[string]any{
				"number": is.number, "pull_request": r.pullJSON(is),
			}))
		}
	}
	return events
}

// MergePullRequest merges with method "merge" (a two-parent merge commit), "squash" (one commit) or
// "rebase" (each commit replayed onto the base; merge_commit_sha is the last of them), moves the base branch and emits push then pull_request "closed" with merged true. Paths changed differently
// on both sides make it fail with a 409 error.
func (r *Repo) MergePullRequest(number int, method string) (string, error) {
	r.s.mu.Lock()
	is, err := r.pull(number)
	if err != nil {
		r.s.mu.Unlock()
		return "", err
	}
	sha, events, err := r.mergeLocked(is, method, "", "", "", r.owner)
	r.s.mu.Unlock()
	if err != nil {
		return "", err
	}
	r.s.emit(events)
	return sha, nil
}

func (r *Repo) mergeLocked(is *issueState, method, expectSHA, title, message, by string) (string, []event, error) {
	pr := is.pr
	if pr.merged || is.state != "open" {
		return "", nil, errorf(http.StatusMethodNotAllowed, "Pull Request is not mergeable")
	}
	head, hok := r.branches[pr.head]
	base, bok := r.branches[pr.base]
	if !hok || !bok {
		return "", nil, errorf(http.StatusMethodNotAllowed, "Pull Request is not mergeable: a branch is gone")
	}
	if expectSHA != "" && expectSHA != head.String() {
		return "", nil, errorf(http.StatusConflict, "Head branch was modified. Review and try the merge again.")
	}
	headC, err := object.GetCommit(r.st, head)
	if err != nil {
		return "", nil, fmt.Errorf("read head %s: %w", head, err)
	}
	baseC, err := object.GetCommit(r.st, base)
	if err != nil {
		return "", nil, fmt.Errorf("read base %s: %w", base, err)
	}
	var ancestorTree plumbing.Hash
	bases, err := baseC.MergeBase(headC)
	if err != nil {
		return "", nil, fmt.Errorf("merge base of %s and %s: %w", base, head, err)
	}
	if len(bases) > 0 {
		ancestorTree = bases[0].TreeHash
	}
	tree, err := mergeTrees(r.st, ancestorTree, baseC.TreeHash, headC.TreeHash, "")
	if err != nil {
		if strings.Contains(err.Error(), errMergeConflict.Error()) {
			return "", nil, errorf(http.StatusConflict, "Merge conflict: %v", err)
		}
		return "", nil, err
	}
	var parents []plumbing.Hash
	pushed := []plumbing.Hash{}
	switch method {
	case "", "merge":
		if title == "" {
			title = fmt.Sprintf("Merge pull request #%d from %s/%s", is.number, r.owner, pr.head)
		}
		if message == "" {
			message = is.title
		}
		parents = []plumbing.Hash{base, head}
		pushed = append(pushed, head)
	case "squash":
		if title == "" {
			title = fmt.Sprintf("%s (#%d)", is.title, is.number)
		}
		if message == "" {
			message = is.body
		}
		parents = []plumbing.Hash{base}
	case "rebase":
		// GitHub replays each commit of the pull request onto the base and moves the base to the last
		// one: there is no merge commit, and merge_commit_sha is that last rebased commit.
		rebased, err := r.rebaseLocked(base, headC)
		if err != nil {
			return "", nil, err
		}
		last := rebased[len(rebased)-1]
		r.branches[pr.base] = last
		now := time.Now().UTC().Truncate(time.Second)
		pr.merged, pr.mergedAt, pr.mergedBy, pr.mergeCommitSHA = true, now, by, last.String()
		pr.headSHA, pr.baseSHA = head.String(), base.String()
		is.state, is.closed, is.updated = "closed", now, now
		events := []event{
			r.pushEvent(pr.base, base, last, rebased, by),
			r.newEvent("pull_request", "closed", by, map[string]any{"number": is.number, "pull_request": r.pullJSON(is)}),
		}
		return last.String(), events, nil
	default:
		return "", nil, errorf(http.StatusMethodNotAllowed, "Merge method %s is not allowed on this repository", method)
	}
	msg := title
	if message != "" {
		msg += "\n\n" + message
	}
	now := time.Now().UTC().Truncate(time.Second)
	merged, err := writeCommit(r.st, tree, parents, msg, signature{name: "GitHub", email: "noreply@github.com"}, now)
	if err != nil {
		return "", nil, err
	}
	r.branches[pr.base] = merged
	pr.merged, pr.mergedAt, pr.mergedBy, pr.mergeCommitSHA = true, now, by, merged.String()
	pr.headSHA, pr.baseSHA = head.String(), base.String()
	is.state, is.closed, is.updated = "closed", now, now
	events := []event{
		r.pushEvent(pr.base, base, merged, append(pushed, merged), by),
		r.newEvent("pull_request", "closed", by, map[string]any{"number": is.number, "pull_request": r.pullJSON(is)}),
	}
	return merged.String(), events, nil
}

// rebaseLocked replays the commits of head that base lacks onto base, oldest first, each keeping its author,
// message and date, and returns the new commits. It follows head's first parents back to base's history
// (a merge commit on the branch is replayed as its change against its first parent, which is what it
// brought in), and refuses with GitHub's 405 when a commit does not apply cleanly.
func (r *Repo) rebaseLocked(base plumbing.Hash, head *object.Commit) ([]plumbing.Hash, error) {
	inBase := map[plumbing.Hash]bool{}
	bc, err := object.GetCommit(r.st, base)
	if err != nil {
		return nil, fmt.Errorf("read base %s: %w", base, err)
	}
	if err := object.NewCommitPreorderIter(bc, nil, nil).ForEach(func(c *object.Commit) error {
		inBase[c.Hash] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("walk %s: %w", base, err)
	}
	var chain []*object.Commit
	for c := head; !inBase[c.Hash]; {
		chain = append(chain, c)
		if len(c.ParentHashes) == 0 {
			break
		}
		if c, err = object.GetCommit(r.st, c.ParentHashes[0]); err != nil {
			return nil, fmt.Errorf("read parent: %w", err)
		}
	}
	if len(chain) == 0 {
		return nil, errorf(http.StatusMethodNotAllowed, "Pull Request is not mergeable: no commits to rebase")
	}
	onto, tree := base, bc.TreeHash
	var out []plumbing.Hash
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i]
		var parentTree plumbing.Hash
		if len(c.ParentHashes) > 0 {
			p, err := object.GetCommit(r.st, c.ParentHashes[0])
			if err != nil {
				return nil, fmt.Errorf("read parent of %s: %w", c.Hash, err)
			}
			parentTree = p.TreeHash
		}
		next, err := mergeTrees(r.st, parentTree, tree, c.TreeHash, "")
		if err != nil {
			if strings.Contains(err.Error(), errMergeConflict.Error()) {
				return nil, errorf(http.StatusMethodNotAllowed, "This branch can't be rebased: %v", err)
			}
			return nil, err
		}
		h, err := writeCommit(r.st, next, []plumbing.Hash{onto}, c.Message, signature{name: c.Author.Name, email: c.Author.Email}, c.Author.When)
		if err != nil {
			return nil, err
		}
		onto, tree = h, next
		out = append(out, h)
	}
	return out, nil
}

// pushEvent describes moving branch from before to after, adding commits.
func (r *Repo) pushEvent(branch string, before, after plumbing.Hash, commits []plumbing.Hash, by string) event {
	var list []any
	var headCommit any
	for _, h := range commits {
		c, err := object.GetCommit(r.st, h)
		if err != nil {
			continue
		}
		parent := plumbing.ZeroHash
		if len(c.ParentHashes) > 0 {
			parent = c.ParentHashes[0]
		}
		var parentTree plumbing.Hash
		if pc, err := object.GetCommit(r.st, parent); err == nil {
			parentTree = pc.TreeHash
		}
		added, removed, modified := []string{}, []string{}, []string{}
		if files, err := diffTrees(r.st, parentTree, c.TreeHash); err == nil {
			for _, f := range files {
				switch f.status {
				case "added":
					added = append(added, f.filename)
				case "removed":
					removed = append(removed, f.filename)
				default:
					modified = append(modified, f.filename)
				}
			}
		}
		person := func(s object.Signature) map[string]any {
			return map[string]any{"name": s.Name, "email": s.Email, "username": strings.ToLower(strings.ReplaceAll(s.Name, " ", "-"))}
		}
		item := map[string]any{
			"id": h.String(), "tree_id": c.TreeHash.String(), "distinct": true, "message": c.Message,
			"timestamp": isoTime(c.Committer.When), "url": r.htmlURL() + "/commit/" + h.String(),
			"author": person(c.Author), "committer": person(c.Committer),
			"added": added, "removed": removed, "modified": modified,
		}
		list = append(list, item)
		headCommit = item
	}
	if list == nil {
		list = []any{}
	}
	return r.newEvent("push", "", by, map[string]any{
		"ref": "refs/heads/" + branch, "before": before.String(), "after": after.String(),
		"created": before.IsZero(), "deleted": after.IsZero(), "forced": false, "base_ref": nil,
		"compare": fmt.Sprintf("%s/compare/%s...%s", r.htmlURL(), before.String()[:12], after.String()[:12]),
		"commits": list, "head_commit": headCommit,
		"pusher": map[string]any{"name": by, "email": by + "@users.noreply.github.com"},
	})
}

// pull finds an open or closed pull request by number.
func (r *Repo) pull(number int) (*issueState, error) {
	is := r.issues[number]
	if is == nil || is.pr == nil {
		return nil, errNotFound
	}
	return is, nil
}

func (r *Repo) pullSnapshot(is *issueState) PullRequest {
	head, base := r.prSHAs(is)
	return PullRequest{
		Number: is.number, Title: is.title, Body: is.body, User: is.user, Head: is.pr.head, Base: is.pr.base,
		HeadSHA: head, BaseSHA: base, State: is.state, Merged: is.pr.merged, MergeCommitSHA: is.pr.mergeCommitSHA,
		Labels: append([]string(nil), is.labels...), Fork: is.pr.fork,
	}
}

// PullRequest is a snapshot of pull request number (the zero value when there is none).
func (r *Repo) PullRequest(number int) PullRequest {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	is, err := r.pull(number)
	if err != nil {
		return PullRequest{}
	}
	return r.pullSnapshot(is)
}

// PullRequests are snapshots of every pull request, by number.
func (r *Repo) PullRequests() []PullRequest {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []PullRequest
	for _, is := range r.sortedIssues() {
		if is.pr != nil {
			out = append(out, r.pullSnapshot(is))
		}
	}
	return out
}

func (r *Repo) sortedIssues() []*issueState {
	out := make([]*issueState, 0, len(r.issues))
	for _, is := range r.issues {
		out = append(out, is)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	return out
}

// prFiles lists the files a pull request changes (three-dot: merge base to head).
func (r *Repo) prFiles(is *issueState) ([]fileChange, error) {
	head, base := r.prSHAs(is)
	return r.compareFiles(base, head)
}

// compareFiles diffs head against its merge base with base.
func (r *Repo) compareFiles(base, head string) ([]fileChange, error) {
	mb, hc, err := r.mergeBase(base, head)
	if err != nil {
		return nil, err
	}
	var from plumbing.Hash
	if mb != nil {
		from = mb.TreeHash
	}
	return diffTrees(r.st, from, hc.TreeHash)
}

// mergeBase returns the best common ancestor of base and head (nil when none) and head's commit.
func (r *Repo) mergeBase(base, head string) (*object.Commit, *object.Commit, error) {
	bc, err := r.commitAt(base)
	if err != nil {
		return nil, nil, err
	}
	hc, err := r.commitAt(head)
	if err != nil {
		return nil, nil, err
	}
	bases, err := bc.MergeBase(hc)
	if err != nil {
		return nil, nil, fmt.Errorf("merge base of %s and %s: %w", base, head, err)
	}
	if len(bases) == 0 {
		return nil, hc, nil
	}
	return bases[0], hc, nil
}

// aheadBy counts commits reachable from head but not from base.
func (r *Repo) aheadBy(base, head string) (int, error) {
	list, err := r.commitsBetween(base, head)
	return len(list), err
}

// commitsBetween lists commits reachable from head but not from base, oldest first.
func (r *Repo) commitsBetween(base, head string) ([]*object.Commit, error) {
	bc, err := r.commitAt(base)
	if err != nil {
		return nil, err
	}
	hc, err := r.commitAt(head)
	if err != nil {
		return nil, err
	}
	seen := map[plumbing.Hash]bool{}
	iter := object.NewCommitPreorderIter(bc, nil, nil)
	if err := iter.ForEach(func(c *object.Commit) error { seen[c.Hash] = true; return nil }); err != nil {
		return nil, fmt.Errorf("walk %s: %w", base, err)
	}
	var out []*object.Commit
	iter = object.NewCommitPreorderIter(hc, seen, nil)
	if err := iter.ForEach(func(c *object.Commit) error {
		if !seen[c.Hash] {
			out = append(out, c)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("walk %s: %w", head, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Committer.When.Before(out[j].Committer.When) })
	return out, nil
}
