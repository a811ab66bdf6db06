// Package storage is the model of a package storage repository: paths to package versions, the top-down
// diff by tree SHA (docs/architecture.md §3), and the readers that fetch git objects from GitHub or a local repository.
package storage

import (
	"context"
	"errors"
)

// EntryType is the kind of object a tree entry points at.
type EntryType string

// Entry types, as git (and GitHub's git trees API) name them. Symlinks are blobs with mode 120000.
const (
	TypeBlob   EntryType = "blob"
	TypeTree   EntryType = "tree"
	TypeCommit EntryType = "commit" // a submodule (gitlink)
)

// Mode values that matter to the storage rules.
const (
	ModeSymlink = "120000"
	ModeGitlink = "160000"
)

// TreeEntry is one entry of a git tree. Path is the entry's name (its path from the listed tree's root when
// listed recursively).
type TreeEntry struct {
	Path string
	Mode string // octal, as git prints it: "100644", "100755", "040000", "120000", "160000"
	Type EntryType
	SHA  string
}

// Commit is the part of a git commit the model needs.
type Commit struct {
	SHA     string
	TreeSHA string
	Parents []string
}

// ErrNotFound is returned by readers when a revision, tree or blob does not exist.
var ErrNotFound = errors.New("not found")

// Reader reads git objects of one repository. Objects addressed by SHA never change, so implementations may
// cache them forever; ResolveRevision reads mutable state (branch heads) and must not serve stale answers.
type Reader interface {
	// ResolveRevision turns a branch name, full ref or SHA into a commit.
	ResolveRevision(ctx context.Context, rev string) (Commit, error)
	// MergeBase returns the best common ancestor of two commits.
	MergeBase(ctx context.Context, a, b string) (string, error)
	// Tree lists the entries of the tree with this SHA; recursive lists every entry below it with full
	// paths relative to that tree (subtrees included as entries of type tree).
	Tree(ctx context.Context, sha string, recursive bool) ([]TreeEntry, error)
	// Blob returns the contents of the blob with this SHA.
	Blob(ctx context.Context, sha string) ([]byte, error)
}

// RecursivePrefetcher is implemented by readers for which one recursive listing is cheaper than many
// single-level ones (GitHub: one API call instead of one per directory). PrefetchRecursive reads the tree with
// this SHA recursively so that later Tree calls on it and on any tree below it are answered from the cache.
type RecursivePrefetcher interface {
	PrefetchRecursive(ctx context.Context, sha string) error
}
