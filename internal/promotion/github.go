package promotion

import (
	"context"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/storage"
)

// GitHub is what the promotion service asks of GitHub: git data by SHA, branches, trees and commits written by
// reference, PRs, labels, comments and the checks that gate an auto-merge. githubapi.Client implements it over
// go-github; the unit tests use an in-memory one. Errors are GitHub's answers as go-github returns them
// (*github.ErrorResponse with the status), so that this package decides what "already exists" or "not
// found" means for each write. Every read takes the context, so reads may be overlapped.
type GitHub interface {
	// GitData reads the repository's git objects by SHA (cached: objects never change).
	GitData(owner, name string) storage.Reader

	// Branch reads a branch's head commit and its tree.
	Branch(ctx context.Context, owner, name, branch string) (*github.Branch, error)
	// BranchHead reads the commit a branch points at (404 when there is no such branch).
	BranchHead(ctx context.Context, owner, name, branch string) (string, error)
	// CreateBranch creates a branch at sha (422 "Reference already exists" when it exists).
	CreateBranch(ctx context.Context, owner, name, branch, sha string) error
	// ResetBranch force-moves a branch to sha.
	ResetBranch(ctx context.Context, owner, name, branch, sha string) error
	// DeleteBranch deletes a branch.
	DeleteBranch(ctx context.Context, owner, name, branch string) error
	// CreateTree writes a tree on top of base ("" for a complete tree) and returns its SHA.
	CreateTree(ctx context.Context, owner, name, base string, entries []*github.TreeEntry) (string, error)
	// CreateCommit writes a commit of tree on parents and returns its SHA.
	CreateCommit(ctx context.Context, owner, name, message, tree string, parents ...string) (string, error)

	// PullRequest reads one PR.
	PullRequest(ctx context.Context, owner, name string, number int) (*github.PullRequest, error)
	// PullRequestsFrom lists the PRs from branch of this repository in state, newest first (one page).
	PullRequestsFrom(ctx context.Context, owner, name, branch, state string) ([]*github.PullRequest, error)
	// OpenPullRequests lists every open PR into base.
	OpenPullRequests(ctx context.Context, owner, name, base string) ([]*github.PullRequest, error)
	// RecentlyClosedPullRequests lists the n most recently updated closed PRs into base.
	RecentlyClosedPullRequests(ctx context.Context, owner, name, base string, n int) ([]*github.PullRequest, error)
	// CreatePullRequest opens a PR (422 "A pull request already exists" when one is open from head).
	CreatePullRequest(ctx context.Context, owner, name, head, base, title, body string) (*github.PullRequest, error)
	// ClosePullRequest closes a PR unmerged.
	ClosePullRequest(ctx context.Context, owner, name string, number int) error
	// MergePullRequest merges a PR whose head is still sha (405 not mergeable, 409 head moved).
	MergePullRequest(ctx context.Context, owner, name string, number int, sha, method string) error
	// AddLabels adds labels to a PR.
	AddLabels(ctx context.Context, owner, name string, number int, labels ...string) error

	// IssueComments lists every comment of a PR, oldest first.
	IssueComments(ctx context.Context, owner, name string, number int) ([]*github.IssueComment, error)
	// CreateComment comments on a PR.
	CreateComment(ctx context.Context, owner, name string, number int, body string) error
	// DeleteComment deletes a comment; one already gone is no error.
	DeleteComment(ctx context.Context, owner, name string, id int64) error

	// CheckRuns lists the check runs on ref that opts selects (every page).
	CheckRuns(ctx context.Context, owner, name, ref string, opts github.ListCheckRunsOptions) ([]*github.CheckRun, error)
	// CombinedStatus reads the combined commit status of ref.
	CombinedStatus(ctx context.Context, owner, name, ref string) (*github.CombinedStatus, error)
}
