package storagegen

import (
	"bufio"
	"fmt"
	"sort"
)

// Op is one change in a commit made with Repo.Commit.
type Op struct {
	delete bool
	mode   string
	path   string
	data   []byte
	sha    string
}

// Put writes a regular file (mode 100644).
func Put(path string, data []byte) Op { return Op{mode: "100644", path: path, data: data} }

// PutMode writes a file with an explicit mode: "100755" (executable) or "120000" (a symlink whose target
// is data).
func PutMode(path, mode string, data []byte) Op { return Op{mode: mode, path: path, data: data} }

// Delete removes a file or a whole directory.
func Delete(path string) Op { return Op{delete: true, path: path} }

// Tree points path at an existing tree by SHA, the way a promotion copies a version by reference.
func Tree(path, treeSHA string) Op { return Op{mode: "040000", path: path, sha: treeSHA} }

// Gitlink puts a submodule entry pointing at commitSHA at path.
func Gitlink(path, commitSHA string) Op { return Op{mode: "160000", path: path, sha: commitSHA} }

// Commit makes one commit on branch applying ops in order and returns its SHA. A branch that does not exist
// yet starts from an empty tree.
func (r *Repo) Commit(branch, message string, ops ...Op) (string, error) {
	from := ""
	if _, err := r.git(nil, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch); err == nil {
		from = "refs/heads/" + branch + "^0"
	}
	err := r.fastImport(func(w *bufio.Writer) {
		r.writeCommitHeader(w, branch, message, from)
		for _, op := range ops {
			switch {
			case op.delete:
				fmt.Fprintf(w, "D %s\n", op.path)
			case op.sha != "":
				fmt.Fprintf(w, "M %s %s %s\n", op.mode, op.sha, op.path)
			default:
				writeFile(w, op.mode, op.path, op.data)
			}
		}
	})
	if err != nil {
		return "", fmt.Errorf("commit on %s: %w", branch, err)
	}
	return r.Head(branch)
}

// Head returns the commit SHA at the tip of branch.
func (r *Repo) Head(branch string) (string, error) {
	sha, err := r.git(nil, "rev-parse", "--verify", "refs/heads/"+branch+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("head of %s: %w", branch, err)
	}
	return sha, nil
}

// TreeSHA returns the SHA of the tree or blob at path in revision rev ("" path: the root tree).
func (r *Repo) TreeSHA(rev, path string) (string, error) {
	sha, err := r.git(nil, "rev-parse", "--verify", rev+":"+path)
	if err != nil {
		return "", fmt.Errorf("object at %s:%s: %w", rev, path, err)
	}
	return sha, nil
}

// Branch creates (or moves) branch to the commit rev resolves to.
func (r *Repo) Branch(branch, rev string) error {
	if _, err := r.git(nil, "update-ref", "refs/heads/"+branch, rev+"^{commit}"); err != nil {
		return fmt.Errorf("create branch %s at %s: %w", branch, rev, err)
	}
	return nil
}

// AddVersion commits a new generated version of pkg on branch and returns the commit SHA.
func (r *Repo) AddVersion(branch, pkg, version string) (string, error) {
	files := VersionFiles(pkg, version, r.opts.FilesPerVersion, r.opts.FileSize, r.opts.Seed^uint64(r.seq+1)<<20)
	ops := make([]Op, 0, len(files))
	for _, path := range sortedKeys(files) {
		ops = append(ops, Put("packages/"+pkg+"/"+version+"/"+path, files[path]))
	}
	return r.Commit(branch, fmt.Sprintf("Add %s %s", pkg, version), ops...)
}

// ModifyFile commits new contents for path on branch and returns the commit SHA.
func (r *Repo) ModifyFile(branch, path string, data []byte) (string, error) {
	return r.Commit(branch, "Modify "+path, Put(path, data))
}

// RemoveVersion commits the removal of packages/<pkg>/<version> on branch and returns the commit SHA.
func (r *Repo) RemoveVersion(branch, pkg, version string) (string, error) {
	return r.Commit(branch, fmt.Sprintf("Remove %s %s", pkg, version), Delete("packages/"+pkg+"/"+version))
}

// CopyVersion promotes packages/<pkg>/<version> from the tip of branch from to branch to by tree reference,
// and returns the commit SHA on to.
func (r *Repo) CopyVersion(from, to, pkg, version string) (string, error) {
	path := "packages/" + pkg + "/" + version
	sha, err := r.TreeSHA("refs/heads/"+from, path)
	if err != nil {
		return "", fmt.Errorf("copy %s from %s to %s: %w", path, from, to, err)
	}
	return r.Commit(to, fmt.Sprintf("Promote %s %s from %s", pkg, version, from), Tree(path, sha))
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
