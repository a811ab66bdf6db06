package promotion

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/commands"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// RemovalLabel is the label of every removal PR the bot opens.
const RemovalLabel = "storage/removal"

// Branch prefixes of the PRs the bot opens; the rest of the name is deterministic.
const (
	PromoteBranchPrefix = "storagebot/promote/"
	RemoveBranchPrefix  = "storagebot/remove/"
)

// Service performs promotions and removal follow-ups on one installation's repositories. It is safe for
// concurrent use and stateless apart from the shared object cache (trees by SHA never change).
type Service struct {
	// Cache holds git objects read by SHA; nil gives every call a cache of its own.
	Cache *storage.ObjectCache
}

// Repo is a storage repository and the client that may write to it.
type Repo struct {
	Client      *github.Client
	Owner, Name string
	// Config is the repository's configuration; nil means repoconfig.Default().
	Config *repoconfig.Config
}

// PRRef identifies a pull request the bot opened or found.
type PRRef struct {
	Number int
	URL    string
	Branch string
}

// Refusal says why a version is not promoted (or removed). Reason names the rule involved and what would
// make it pass.
type Refusal struct {
	Version commands.VersionRef
	Reason  string
}

func (r Repo) config() *repoconfig.Config {
	if r.Config != nil {
		return r.Config
	}
	return repoconfig.Default()
}

func (r Repo) fullName() string { return r.Owner + "/" + r.Name }

func (s *Service) reader(repo Repo) *storage.GitHubReader {
	return storage.NewGitHubReader(repo.Client, repo.Owner, repo.Name, s.Cache)
}

// head is a channel branch's head commit and its root tree.
type head struct {
	Channel repoconfig.Channel
	Commit  string
	Tree    string
}

// branchHead reads a channel branch's head in one call (the branches endpoint returns the commit with its
// tree), always from GitHub: branch heads are mutable.
func branchHead(ctx context.Context, repo Repo, ch repoconfig.Channel) (head, error) {
	b, _, err := repo.Client.Repositories.GetBranch(ctx, repo.Owner, repo.Name, ch.Branch, false)
	if err != nil {
		return head{}, fmt.Errorf("read head of branch %s (channel %s) of %s: %w", ch.Branch, ch.Name, repo.fullName(), err)
	}
	h := head{Channel: ch, Commit: b.GetCommit().GetSHA(), Tree: b.GetCommit().GetCommit().GetTree().GetSHA()}
	if h.Commit == "" || h.Tree == "" {
		return head{}, fmt.Errorf("read head of branch %s of %s: answer lacks the commit or its tree", ch.Branch, repo.fullName())
	}
	return h, nil
}

// packageVersions lists the version directories of one package at ref (a branch or commit SHA) with one
// contents call: version → tree SHA. A package that is absent has no versions.
func packageVersions(ctx context.Context, repo Repo, pkg, ref string) (map[string]string, error) {
	_, dir, _, err := repo.Client.Repositories.GetContents(ctx, repo.Owner, repo.Name, storage.PackagesDir+"/"+pkg,
		&github.RepositoryContentGetOptions{Ref: ref})
	if hasStatus(err, http.StatusNotFound) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list versions of %s at %s in %s: %w", pkg, ref, repo.fullName(), err)
	}
	out := make(map[string]string, len(dir))
	for _, e := range dir {
		if e.GetType() == "dir" {
			out[e.GetName()] = e.GetSHA()
		}
	}
	return out, nil
}

// findPR returns the PR whose head is branch of this repository in state ("open", "closed" or "all"), the
// most recent first; nil when there is none. The head filter must be "owner:branch": GitHub ignores a bare
// branch name and returns every PR (docs/architecture.md §10).
func findPR(ctx context.Context, repo Repo, branch, state string) (*github.PullRequest, error) {
	prs, _, err := repo.Client.PullRequests.List(ctx, repo.Owner, repo.Name, &github.PullRequestListOptions{
		Head: repo.Owner + ":" + branch, State: state, ListOptions: github.ListOptions{PerPage: 10},
	})
	if err != nil {
		return nil, fmt.Errorf("look up %s PRs from %s in %s: %w", state, branch, repo.fullName(), err)
	}
	for _, pr := range prs {
		// Guard against a host that ignores the filter: only this exact branch counts.
		if pr.GetHead().GetRef() == branch {
			return pr, nil
		}
	}
	return nil, nil
}

// createBranch creates refs/heads/<branch> at sha. created is false when the branch already existed (422
// "Reference already exists"), which callers treat as success after checking what it holds.
func createBranch(ctx context.Context, repo Repo, branch, sha string) (created bool, err error) {
	_, _, err = repo.Client.Git.CreateRef(ctx, repo.Owner, repo.Name, &github.Reference{
		Ref: github.String("refs/heads/" + branch), Object: &github.GitObject{SHA: github.String(sha)},
	})
	switch {
	case err == nil:
		return true, nil
	case hasStatus(err, http.StatusUnprocessableEntity) && strings.Contains(errorMessage(err), "already exists"):
		return false, nil
	}
	return false, fmt.Errorf("create branch %s at %s in %s: %w", branch, sha, repo.fullName(), err)
}

// branchCommit reads the commit a branch points at; "" when the branch does not exist.
func branchCommit(ctx context.Context, repo Repo, branch string) (string, error) {
	ref, _, err := repo.Client.Git.GetRef(ctx, repo.Owner, repo.Name, "heads/"+branch)
	if hasStatus(err, http.StatusNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read branch %s of %s: %w", branch, repo.fullName(), err)
	}
	return ref.GetObject().GetSHA(), nil
}

// resetBranch force-moves branch to sha.
func resetBranch(ctx context.Context, repo Repo, branch, sha string) error {
	_, _, err := repo.Client.Git.UpdateRef(ctx, repo.Owner, repo.Name, &github.Reference{
		Ref: github.String("refs/heads/" + branch), Object: &github.GitObject{SHA: github.String(sha)},
	}, true)
	if err != nil {
		return fmt.Errorf("reset branch %s to %s in %s: %w", branch, sha, repo.fullName(), err)
	}
	return nil
}

// commitTree writes a tree on top of baseTree with entries, then a commit of it on parent.
func commitTree(ctx context.Context, repo Repo, baseTree, parent, message string, entries []*github.TreeEntry) (string, error) {
	tree, _, err := repo.Client.Git.CreateTree(ctx, repo.Owner, repo.Name, baseTree, entries)
	if err != nil {
		return "", fmt.Errorf("create tree on %s in %s: %w", baseTree, repo.fullName(), err)
	}
	c, _, err := repo.Client.Git.CreateCommit(ctx, repo.Owner, repo.Name, &github.Commit{
		Message: github.String(message), Tree: &github.Tree{SHA: tree.SHA}, Parents: []*github.Commit{{SHA: github.String(parent)}},
	})
	if err != nil {
		return "", fmt.Errorf("create commit of tree %s on %s in %s: %w", tree.GetSHA(), parent, repo.fullName(), err)
	}
	return c.GetSHA(), nil
}

// openPR opens a PR from branch into base; when GitHub answers that one already exists (a retry after a
// lost response, or a concurrent replica), the open one is looked up and returned with created false.
func openPR(ctx context.Context, repo Repo, branch, base, title, body string) (pr *github.PullRequest, created bool, err error) {
	pr, _, err = repo.Client.PullRequests.Create(ctx, repo.Owner, repo.Name, &github.NewPullRequest{
		Title: github.String(title), Head: github.String(branch), Base: github.String(base), Body: github.String(body),
	})
	if err == nil {
		return pr, true, nil
	}
	if !hasStatus(err, http.StatusUnprocessableEntity) || !strings.Contains(errorMessage(err), "already exists") {
		return nil, false, fmt.Errorf("open PR from %s into %s in %s: %w", branch, base, repo.fullName(), err)
	}
	pr, lookErr := findPR(ctx, repo, branch, "open")
	if lookErr != nil {
		return nil, false, lookErr
	}
	if pr == nil {
		return nil, false, fmt.Errorf("open PR from %s into %s in %s: GitHub says one exists but none is open: %w", branch, base, repo.fullName(), err)
	}
	return pr, false, nil
}

func prRef(pr *github.PullRequest) PRRef {
	return PRRef{Number: pr.GetNumber(), URL: pr.GetHTMLURL(), Branch: pr.GetHead().GetRef()}
}

// hasStatus reports whether err is a GitHub answer with this HTTP status.
func hasStatus(err error, status int) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == status
}

// errorMessage is GitHub's message of an error answer, with its validation errors.
func errorMessage(err error) string {
	var er *github.ErrorResponse
	if !errors.As(err, &er) {
		return err.Error()
	}
	msg := er.Message
	for _, e := range er.Errors {
		msg += " " + e.Message
	}
	return msg
}

// sortRefs sorts versions by package, then by semver (text for anything that is not strict semver), and
// drops duplicates.
func sortRefs(in []commands.VersionRef) []commands.VersionRef {
	out := append([]commands.VersionRef(nil), in...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Package != out[j].Package {
			return out[i].Package < out[j].Package
		}
		if c, err := policy.CompareVersions(out[i].Version, out[j].Version); err == nil && c != 0 {
			return c < 0
		}
		return out[i].Version < out[j].Version
	})
	uniq := out[:0]
	for i, v := range out {
		if i == 0 || v != out[i-1] {
			uniq = append(uniq, v)
		}
	}
	return uniq
}

// listRefs writes versions as "a@1, b@2" for titles and replies.
func listRefs(vs []commands.VersionRef) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}
