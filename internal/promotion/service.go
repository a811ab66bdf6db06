package promotion

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/botcomment"
	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/keylock"
	"github.com/storagebot/storagebot/internal/overlap"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
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
// concurrent use; its only state is the per-PR follow-up locks (see HandleMerged). Use it by pointer.
type Service struct {
	// Cache is the git object cache the installation clients made for this service share (the handlers' and
	// the reconciler's): the service itself reads git data through Repo.Client, which holds it.
	Cache *storage.ObjectCache
	// Seal signs the markers in the PR bodies and notes the bot writes and verifies them when read back; the
	// zero Key trusts no marker.
	Seal seal.Key
	// BotLogin returns the App's bot login ("<slug>[bot]"), or why GitHub could not tell it. The follow-up
	// note is recognised only among that user's comments (anyone can write a comment holding the marker).
	// nil: this service posts no notes (tools and tests that want only the PRs).
	BotLogin func(context.Context) (string, error)
	// AppID is this GitHub App's ID: only its own storage-policy run lets a removal PR merge.
	AppID int64
	// Notes posts each follow-up note once, also when GitHub applies a post whose answer was lost late.
	Notes botcomment.Writer

	followUpLocks keylock.Striped // per merged PR; see HandleMerged
}

// Repo is a storage repository and the client that may write to it.
type Repo struct {
	Client      GitHub
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
	Version commandparse.VersionRef
	Reason  string
}

func (r Repo) config() *repoconfig.Config {
	if r.Config != nil {
		return r.Config
	}
	return repoconfig.Default()
}

func (r Repo) fullName() string { return r.Owner + "/" + r.Name }

func (s *Service) reader(repo Repo) storage.Reader {
	return repo.Client.GitData(repo.Owner, repo.Name)
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
	b, err := repo.Client.Branch(ctx, repo.Owner, repo.Name, ch.Branch)
	if err != nil {
		return head{}, fmt.Errorf("read head of branch %s (channel %s) of %s: %w", ch.Branch, ch.Name, repo.fullName(), err)
	}
	h := head{Channel: ch, Commit: b.GetCommit().GetSHA(), Tree: b.GetCommit().GetCommit().GetTree().GetSHA()}
	if h.Commit == "" || h.Tree == "" {
		return head{}, fmt.Errorf("read head of branch %s of %s: answer lacks the commit or its tree", ch.Branch, repo.fullName())
	}
	return h, nil
}

// packageVersionsAt lists the version directories of one package in a root tree: version → tree SHA; none
// when the package is absent. It reads git trees, never the contents API, which lists at most 1,000 entries
// of a directory: a package with more versions would lose some silently. The root and packages/ trees are
// read by SHA, so they come from the cache after the first package.
func packageVersionsAt(ctx context.Context, r storage.Reader, root, pkg string) (map[string]string, error) {
	sha, err := storage.Subtree(ctx, r, root, storage.PackagesDir, pkg)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", pkg, err)
	}
	if sha == "" {
		return map[string]string{}, nil
	}
	entries, err := r.Tree(ctx, sha, false)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", pkg, err)
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		if e.Type == storage.TypeTree {
			out[e.Path] = e.SHA
		}
	}
	return out, nil
}

// identical is storage.Identical, its two trees first listed recursively at once when the reader can (GitHub:
// one call each, overlapped, instead of one call per directory one after another); the comparison then reads
// from the cache. A side whose listing GitHub truncates is compared directory by directory, as before.
func identical(ctx context.Context, r storage.Reader, a, b string) (bool, error) {
	if p, ok := r.(storage.RecursivePrefetcher); ok && a != b {
		both := overlap.NewGroup(ctx, storage.ReadConcurrency(r))
		for _, sha := range []string{a, b} {
			both.Go(func(ctx context.Context) error { return p.PrefetchRecursive(ctx, sha) })
		}
		if err := both.Wait(); err != nil {
			return false, fmt.Errorf("compare trees %s and %s: %w", a, b, err)
		}
	}
	return storage.Identical(ctx, r, a, b)
}

// removeVersionsTree writes a root tree like root without the given version directories, and returns it.
// GitHub documents "sha": null in a tree entry only for files, so a version directory is dropped by writing
// its package tree again without it, and a package left empty by writing packages/ again without the
// package. Every entry written points at an existing SHA: nothing is uploaded.
func removeVersionsTree(ctx context.Context, repo Repo, r storage.Reader, root string, versions []commandparse.VersionRef) (string, error) {
	rootEntries, err := r.Tree(ctx, root, false)
	if err != nil {
		return "", fmt.Errorf("read root tree %s: %w", root, err)
	}
	pkgsSHA := entrySHA(rootEntries, storage.PackagesDir)
	if pkgsSHA == "" {
		return root, nil
	}
	pkgEntries, err := r.Tree(ctx, pkgsSHA, false)
	if err != nil {
		return "", fmt.Errorf("read %s tree %s: %w", storage.PackagesDir, pkgsSHA, err)
	}
	drop := map[string]map[string]bool{}
	var pkgs []string
	for _, v := range versions {
		if drop[v.Package] == nil {
			drop[v.Package] = map[string]bool{}
			pkgs = append(pkgs, v.Package)
		}
		drop[v.Package][v.Version] = true
	}
	sort.Strings(pkgs)
	rewritten := map[string]string{} // package → new tree SHA; "" when it empties
	for _, pkg := range pkgs {
		sha := entrySHA(pkgEntries, pkg)
		if sha == "" {
			continue
		}
		entries, err := r.Tree(ctx, sha, false)
		if err != nil {
			return "", fmt.Errorf("read tree of package %s: %w", pkg, err)
		}
		kept := withoutEntries(entries, drop[pkg])
		if len(kept) == len(entries) {
			continue
		}
		if len(kept) == 0 {
			rewritten[pkg] = ""
			continue
		}
		if rewritten[pkg], err = createTree(ctx, repo, "", toTreeEntries(kept)); err != nil {
			return "", fmt.Errorf("write package %s without %d version(s): %w", pkg, len(entries)-len(kept), err)
		}
	}
	if len(rewritten) == 0 {
		return root, nil
	}
	emptied := false
	var changes []*github.TreeEntry
	for _, pkg := range pkgs {
		sha, ok := rewritten[pkg]
		if !ok {
			continue
		}
		if sha == "" {
			emptied = true
			continue
		}
		changes = append(changes, treeEntry(storage.PackagesDir+"/"+pkg, "040000", storage.TypeTree, sha))
	}
	if !emptied {
		// Only version directories went: the root is written on top of itself with the new package trees.
		return createTree(ctx, repo, root, changes)
	}
	// A package empties: packages/ is written again without it (and with the other rewritten packages).
	var pkgsKept []storage.TreeEntry
	for _, e := range pkgEntries {
		sha, ok := rewritten[e.Path]
		switch {
		case !ok:
			pkgsKept = append(pkgsKept, e)
		case sha != "":
			e.SHA = sha
			pkgsKept = append(pkgsKept, e)
		}
	}
	if len(pkgsKept) > 0 {
		newPkgs, err := createTree(ctx, repo, "", toTreeEntries(pkgsKept))
		if err != nil {
			return "", fmt.Errorf("write %s without emptied packages: %w", storage.PackagesDir, err)
		}
		return createTree(ctx, repo, root, []*github.TreeEntry{treeEntry(storage.PackagesDir, "040000", storage.TypeTree, newPkgs)})
	}
	// packages/ empties too: the root is written again without it.
	rest := withoutEntries(rootEntries, map[string]bool{storage.PackagesDir: true})
	if len(rest) == 0 {
		return "", fmt.Errorf("removing %d version(s) would leave the channel's tree empty, which git cannot commit", len(versions))
	}
	return createTree(ctx, repo, "", toTreeEntries(rest))
}

func entrySHA(entries []storage.TreeEntry, name string) string {
	for _, e := range entries {
		if e.Path == name {
			return e.SHA
		}
	}
	return ""
}

func withoutEntries(entries []storage.TreeEntry, drop map[string]bool) []storage.TreeEntry {
	out := make([]storage.TreeEntry, 0, len(entries))
	for _, e := range entries {
		if !drop[e.Path] {
			out = append(out, e)
		}
	}
	return out
}

func treeEntry(path, mode string, typ storage.EntryType, sha string) *github.TreeEntry {
	return &github.TreeEntry{Path: github.String(path), Mode: github.String(mode), Type: github.String(string(typ)), SHA: github.String(sha)}
}

// createTree writes a tree of entries, on top of base when base is not "" (a complete tree otherwise).
func createTree(ctx context.Context, repo Repo, base string, entries []*github.TreeEntry) (string, error) {
	tree, err := repo.Client.CreateTree(ctx, repo.Owner, repo.Name, base, entries)
	if err != nil {
		return "", fmt.Errorf("create tree in %s: %w", repo.fullName(), err)
	}
	return tree, nil
}

func toTreeEntries(es []storage.TreeEntry) []*github.TreeEntry {
	out := make([]*github.TreeEntry, 0, len(es))
	for _, e := range es {
		out = append(out, treeEntry(e.Path, e.Mode, e.Type, e.SHA))
	}
	return out
}

// commitRemoval writes the commit removing versions from the channel head h.
func (s *Service) commitRemoval(ctx context.Context, repo Repo, h head, message string, versions []commandparse.VersionRef) (string, error) {
	tree, err := removeVersionsTree(ctx, repo, s.reader(repo), h.Tree, versions)
	if err != nil {
		return "", err
	}
	c, err := repo.Client.CreateCommit(ctx, repo.Owner, repo.Name, message, tree, h.Commit)
	if err != nil {
		return "", fmt.Errorf("create commit of tree %s on %s in %s: %w", tree, h.Commit, repo.fullName(), err)
	}
	return c, nil
}

// findPR returns the PR whose head is branch of this repository in state ("open", "closed" or "all"), the
// most recent first; nil when there is none. The head filter must be "owner:branch": GitHub ignores a bare
// branch name and returns every PR (docs/architecture.md §10).
func findPR(ctx context.Context, repo Repo, branch, state string) (*github.PullRequest, error) {
	prs, err := repo.Client.PullRequestsFrom(ctx, repo.Owner, repo.Name, branch, state)
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
	err = repo.Client.CreateBranch(ctx, repo.Owner, repo.Name, branch, sha)
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
	sha, err := repo.Client.BranchHead(ctx, repo.Owner, repo.Name, branch)
	if hasStatus(err, http.StatusNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read branch %s of %s: %w", branch, repo.fullName(), err)
	}
	return sha, nil
}

// resetBranch force-moves branch to sha.
func resetBranch(ctx context.Context, repo Repo, branch, sha string) error {
	if err := repo.Client.ResetBranch(ctx, repo.Owner, repo.Name, branch, sha); err != nil {
		return fmt.Errorf("reset branch %s to %s in %s: %w", branch, sha, repo.fullName(), err)
	}
	return nil
}

// commitTree writes a tree on top of baseTree with entries, then a commit of it on parent.
func commitTree(ctx context.Context, repo Repo, baseTree, parent, message string, entries []*github.TreeEntry) (string, error) {
	tree, err := repo.Client.CreateTree(ctx, repo.Owner, repo.Name, baseTree, entries)
	if err != nil {
		return "", fmt.Errorf("create tree on %s in %s: %w", baseTree, repo.fullName(), err)
	}
	c, err := repo.Client.CreateCommit(ctx, repo.Owner, repo.Name, message, tree, parent)
	if err != nil {
		return "", fmt.Errorf("create commit of tree %s on %s in %s: %w", tree, parent, repo.fullName(), err)
	}
	return c, nil
}

// openPR opens a PR from branch into base; when GitHub answers that one already exists (a retry after a
// lost response, or a concurrent replica), the open one is looked up and returned with created false.
func openPR(ctx context.Context, repo Repo, branch, base, title, body string) (pr *github.PullRequest, created bool, err error) {
	pr, err = repo.Client.CreatePullRequest(ctx, repo.Owner, repo.Name, branch, base, title, body)
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

// refused reports whether err is GitHub's definite refusal (a 4xx answer): the request had no effect.
func refused(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode >= 400 && er.Response.StatusCode < 500
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
func sortRefs(in []commandparse.VersionRef) []commandparse.VersionRef {
	out := append([]commandparse.VersionRef(nil), in...)
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
func listRefs(vs []commandparse.VersionRef) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ", ")
}
