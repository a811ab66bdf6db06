// Package githubapi is the one implementation, over go-github, of the narrow GitHub interfaces the services
// declare for themselves (prcheck.GitHub, promotion.GitHub, commandrun.GitHub, reconcile.GitHub, handlers'
// own): each service names the few calls it makes, so it is unit-tested against an in-memory fake in
// milliseconds, while this type is what runs against GitHub (and the HTTP fake in end-to-end tests). Errors
// are go-github's, unchanged, so each service reads GitHub's status codes itself. It also holds the one
// pagination helper every listing uses.
package githubapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/storage"
)

// PerPage is the page size of every listing: GitHub's maximum, so a listing costs as few calls as it can.
const PerPage = 100

// AllPages calls list for page 1, 2, … until GitHub's Link header names no next page, and returns every item.
// list gets the page to ask for (0 for the first) and must ask for PerPage items.
func AllPages[T any](ctx context.Context, list func(ctx context.Context, page int) ([]T, *github.Response, error)) ([]T, error) {
	var all []T
	page := 0
	for {
		items, resp, err := list(ctx, page)
		if err != nil {
			return all, err
		}
		all = append(all, items...)
		if resp == nil || resp.NextPage == 0 {
			return all, nil
		}
		page = resp.NextPage
	}
}

// Client is one installation's GitHub API, as the services call it.
type Client struct {
	gh    *github.Client
	cache *storage.ObjectCache
}

// New wraps an installation client; cache holds the git objects read by SHA (shared by every event).
func New(gh *github.Client, cache *storage.ObjectCache) *Client {
	return &Client{gh: gh, cache: cache}
}

// GoGitHub is the go-github client underneath, for the rollout controller, which wraps it in a client of its
// own (rollout.Client).
func (c *Client) GoGitHub() *github.Client { return c.gh }

// GitData returns a reader of the repository's git objects by SHA, sharing the process's object cache.
func (c *Client) GitData(owner, name string) storage.Reader {
	return storage.NewGitHubReader(c.gh, owner, name, c.cache)
}

// CreateCheckRun creates a check run.
func (c *Client) CreateCheckRun(ctx context.Context, owner, name string, opts github.CreateCheckRunOptions) (*github.CheckRun, error) {
	run, _, err := c.gh.Checks.CreateCheckRun(ctx, owner, name, opts)
	return run, err
}

// UpdateCheckRun updates a check run.
func (c *Client) UpdateCheckRun(ctx context.Context, owner, name string, id int64, opts github.UpdateCheckRunOptions) error {
	_, _, err := c.gh.Checks.UpdateCheckRun(ctx, owner, name, id, opts)
	return err
}

// CheckRuns lists the check runs on ref that opts selects (every page).
func (c *Client) CheckRuns(ctx context.Context, owner, name, ref string, opts github.ListCheckRunsOptions) ([]*github.CheckRun, error) {
	return AllPages(ctx, func(ctx context.Context, page int) ([]*github.CheckRun, *github.Response, error) {
		opts.ListOptions = github.ListOptions{Page: page, PerPage: PerPage}
		list, resp, err := c.gh.Checks.ListCheckRunsForRef(ctx, owner, name, ref, &opts)
		if err != nil {
			return nil, resp, err
		}
		return list.CheckRuns, resp, nil
	})
}

// IssueComments lists every comment of an issue or PR, oldest first.
func (c *Client) IssueComments(ctx context.Context, owner, name string, number int) ([]*github.IssueComment, error) {
	return AllPages(ctx, func(ctx context.Context, page int) ([]*github.IssueComment, *github.Response, error) {
		return c.gh.Issues.ListComments(ctx, owner, name, number, &github.IssueListCommentsOptions{ListOptions: github.ListOptions{Page: page, PerPage: PerPage}})
	})
}

// CreateComment comments on an issue or PR.
func (c *Client) CreateComment(ctx context.Context, owner, name string, number int, body string) error {
	_, _, err := c.gh.Issues.CreateComment(ctx, owner, name, number, &github.IssueComment{Body: &body})
	return err
}

// DeleteComment deletes an issue comment; one already deleted (404) is no error.
func (c *Client) DeleteComment(ctx context.Context, owner, name string, id int64) error {
	resp, err := c.gh.Issues.DeleteComment(ctx, owner, name, id)
	if err != nil && resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil
	}
	return err
}

// ReactToComment adds a reaction (e.g. "eyes") to an issue comment.
func (c *Client) ReactToComment(ctx context.Context, owner, name string, commentID int64, content string) error {
	_, _, err := c.gh.Reactions.CreateIssueCommentReaction(ctx, owner, name, commentID, content)
	return err
}

// PullRequest reads one PR.
func (c *Client) PullRequest(ctx context.Context, owner, name string, number int) (*github.PullRequest, error) {
	pr, _, err := c.gh.PullRequests.Get(ctx, owner, name, number)
	return pr, err
}

// OpenPullRequests lists the open PRs, into base when base is not empty.
func (c *Client) OpenPullRequests(ctx context.Context, owner, name, base string) ([]*github.PullRequest, error) {
	return AllPages(ctx, func(ctx context.Context, page int) ([]*github.PullRequest, *github.Response, error) {
		return c.gh.PullRequests.List(ctx, owner, name, &github.PullRequestListOptions{
			State: "open", Base: base, ListOptions: github.ListOptions{Page: page, PerPage: PerPage},
		})
	})
}

// EditTitle sets a PR's title.
func (c *Client) EditTitle(ctx context.Context, owner, name string, number int, title string) error {
	_, _, err := c.gh.PullRequests.Edit(ctx, owner, name, number, &github.PullRequest{Title: &title})
	return err
}

// Permission returns user's repository permission (admin, maintain, write, triage, read, or None), read the
// way GitHub means it: see permissionResponse.
func (c *Client) Permission(ctx context.Context, owner, name, user string) (repoconfig.Permission, error) {
	return permission(ctx, c.gh, owner, name, user)
}

// Config loads the repository configuration from the default branch.
func (c *Client) Config(ctx context.Context, owner, name, defaultBranch string) (*repoconfig.Config, error) {
	return repoconfig.Load(ctx, c.gh, owner, name, defaultBranch)
}

// BranchExists reports whether the branch exists (false on 404; an error on anything else).
func (c *Client) BranchExists(ctx context.Context, owner, name, branch string) (bool, error) {
	_, resp, err := c.gh.Repositories.GetBranch(ctx, owner, name, branch, false)
	if err == nil {
		return true, nil
	}
	if resp != nil && resp.StatusCode == 404 {
		return false, nil
	}
	return false, fmt.Errorf("read branch %s of %s/%s: %w", branch, owner, name, err)
}

// Repositories lists the repositories the installation may access.
func (c *Client) Repositories(ctx context.Context) ([]*github.Repository, error) {
	return AllPages(ctx, func(ctx context.Context, page int) ([]*github.Repository, *github.Response, error) {
		list, resp, err := c.gh.Apps.ListRepos(ctx, &github.ListOptions{Page: page, PerPage: PerPage})
		if err != nil {
			return nil, resp, err
		}
		return list.Repositories, resp, nil
	})
}

// Branch reads a branch: its head commit with the commit's tree, in one call. Branch heads are mutable: the
// answer is revalidated, never served stale.
func (c *Client) Branch(ctx context.Context, owner, name, branch string) (*github.Branch, error) {
	b, _, err := c.gh.Repositories.GetBranch(ctx, owner, name, branch, false)
	return b, err
}

// BranchHead reads the commit refs/heads/<branch> points at. A missing branch is GitHub's 404, returned as is.
func (c *Client) BranchHead(ctx context.Context, owner, name, branch string) (string, error) {
	ref, _, err := c.gh.Git.GetRef(ctx, owner, name, "heads/"+branch)
	if err != nil {
		return "", err
	}
	return ref.GetObject().GetSHA(), nil
}

// CreateBranch creates refs/heads/<branch> at sha. An existing branch is GitHub's 422 "Reference already
// exists", returned as is: the caller decides whether what it holds will do.
func (c *Client) CreateBranch(ctx context.Context, owner, name, branch, sha string) error {
	_, _, err := c.gh.Git.CreateRef(ctx, owner, name, &github.Reference{
		Ref: github.String("refs/heads/" + branch), Object: &github.GitObject{SHA: github.String(sha)},
	})
	return err
}

// ResetBranch force-moves refs/heads/<branch> to sha.
func (c *Client) ResetBranch(ctx context.Context, owner, name, branch, sha string) error {
	_, _, err := c.gh.Git.UpdateRef(ctx, owner, name, &github.Reference{
		Ref: github.String("refs/heads/" + branch), Object: &github.GitObject{SHA: github.String(sha)},
	}, true)
	return err
}

// DeleteBranch deletes refs/heads/<branch>; GitHub closes the open PRs whose head it was.
func (c *Client) DeleteBranch(ctx context.Context, owner, name, branch string) error {
	_, err := c.gh.Git.DeleteRef(ctx, owner, name, "heads/"+branch)
	return err
}

// CreateTree writes a tree of entries, on top of the tree base when base is not "" (a complete tree
// otherwise), and returns its SHA. Entries point at existing objects by SHA: nothing is uploaded.
func (c *Client) CreateTree(ctx context.Context, owner, name, base string, entries []*github.TreeEntry) (string, error) {
	tree, _, err := c.gh.Git.CreateTree(ctx, owner, name, base, entries)
	if err != nil {
		return "", err
	}
	return tree.GetSHA(), nil
}

// CreateCommit writes a commit of tree on parents and returns its SHA.
func (c *Client) CreateCommit(ctx context.Context, owner, name, message, tree string, parents ...string) (string, error) {
	commit := &github.Commit{Message: github.String(message), Tree: &github.Tree{SHA: github.String(tree)}}
	for _, p := range parents {
		commit.Parents = append(commit.Parents, &github.Commit{SHA: github.String(p)})
	}
	created, _, err := c.gh.Git.CreateCommit(ctx, owner, name, commit)
	if err != nil {
		return "", err
	}
	return created.GetSHA(), nil
}

// PullRequestsFrom lists the PRs whose head is branch of this repository, in state ("open", "closed" or
// "all"), newest first: the first page of 10, more than a deterministic branch ever has. The head filter is
// "owner:branch": GitHub ignores a bare branch name and returns every PR (docs/architecture.md §10).
func (c *Client) PullRequestsFrom(ctx context.Context, owner, name, branch, state string) ([]*github.PullRequest, error) {
	prs, _, err := c.gh.PullRequests.List(ctx, owner, name, &github.PullRequestListOptions{
		Head: owner + ":" + branch, State: state, ListOptions: github.ListOptions{PerPage: 10},
	})
	return prs, err
}

// RecentlyClosedPullRequests lists the n most recently updated closed PRs into base (one page; n ≤ PerPage).
// GitHub's list answer has merged_at and merge_commit_sha, but no "merged" field.
func (c *Client) RecentlyClosedPullRequests(ctx context.Context, owner, name, base string, n int) ([]*github.PullRequest, error) {
	prs, _, err := c.gh.PullRequests.List(ctx, owner, name, &github.PullRequestListOptions{
		State: "closed", Base: base, Sort: "updated", Direction: "desc", ListOptions: github.ListOptions{PerPage: n},
	})
	return prs, err
}

// CreatePullRequest opens a PR from the branch head into base. One already open from head is GitHub's 422
// "A pull request already exists", returned as is.
func (c *Client) CreatePullRequest(ctx context.Context, owner, name, head, base, title, body string) (*github.PullRequest, error) {
	pr, _, err := c.gh.PullRequests.Create(ctx, owner, name, &github.NewPullRequest{
		Title: github.String(title), Head: github.String(head), Base: github.String(base), Body: github.String(body),
	})
	return pr, err
}

// ClosePullRequest closes a PR without merging it.
func (c *Client) ClosePullRequest(ctx context.Context, owner, name string, number int) error {
	_, _, err := c.gh.PullRequests.Edit(ctx, owner, name, number, &github.PullRequest{State: github.String("closed")})
	return err
}

// MergePullRequest merges a PR with method ("merge", "squash" or "rebase") if its head is still sha; GitHub
// answers 405 when the PR cannot be merged and 409 when the head moved.
func (c *Client) MergePullRequest(ctx context.Context, owner, name string, number int, sha, method string) error {
	_, _, err := c.gh.PullRequests.Merge(ctx, owner, name, number, "", &github.PullRequestOptions{MergeMethod: method, SHA: sha})
	return err
}

// CombinedStatus reads the combined commit status of ref (the statuses API, not check runs).
func (c *Client) CombinedStatus(ctx context.Context, owner, name, ref string) (*github.CombinedStatus, error) {
	status, _, err := c.gh.Repositories.GetCombinedStatus(ctx, owner, name, ref, nil)
	return status, err
}

// AddLabels adds labels to an issue or PR (labels it has already are kept; a label missing from the
// repository is created by GitHub).
func (c *Client) AddLabels(ctx context.Context, owner, name string, number int, labels ...string) error {
	_, _, err := c.gh.Issues.AddLabelsToIssue(ctx, owner, name, number, labels)
	return err
}
