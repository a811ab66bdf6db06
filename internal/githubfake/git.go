package githubfake

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/storagebot/storagebot/internal/keyset"
)

// errMergeConflict is returned when both sides of a merge changed the same path differently.
var errMergeConflict = errors.New("merge conflict")

// treeChange sets (or, with del, removes) the entry at path.
type treeChange struct {
	path string
	mode filemode.FileMode
	hash plumbing.Hash
	del  bool
}

// signature is who made a commit.
type signature struct{ name, email string }

func writeBlob(st storer.EncodedObjectStorer, data []byte) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("open blob writer: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("write blob: %w", err)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("close blob: %w", err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store blob: %w", err)
	}
	return h, nil
}

func readBlob(st storer.EncodedObjectStorer, h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(st, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", h, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return data, nil
}

// writeTree stores entries in git's order (a directory sorts as if its name ended in "/").
func writeTree(st storer.EncodedObjectStorer, entries []object.TreeEntry) (plumbing.Hash, error) {
	sorted := append([]object.TreeEntry(nil), entries...)
	sort.Sort(object.TreeEntrySorter(sorted))
	t := &object.Tree{Entries: sorted}
	obj := st.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tree: %w", err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store tree: %w", err)
	}
	return h, nil
}

// treeEntries reads a tree's entries by name; the zero hash is the empty tree.
func treeEntries(st storer.EncodedObjectStorer, h plumbing.Hash) (map[string]object.TreeEntry, error) {
	out := map[string]object.TreeEntry{}
	if h.IsZero() {
		return out, nil
	}
	t, err := object.GetTree(st, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		out[e.Name] = e
	}
	return out, nil
}

func entryList(m map[string]object.TreeEntry) []object.TreeEntry {
	out := make([]object.TreeEntry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	return out
}

// applyChanges writes the tree root with changes applied and returns it with its entry count.
// Directories left empty disappear, as in git.
func applyChanges(st storer.EncodedObjectStorer, root plumbing.Hash, changes []treeChange) (plumbing.Hash, int, error) {
	entries, err := treeEntries(st, root)
	if err != nil {
		return plumbing.ZeroHash, 0, err
	}
	nested := map[string][]treeChange{}
	var names []string
	for _, ch := range changes {
		first, rest, isNested := strings.Cut(strings.Trim(ch.path, "/"), "/")
		if !isNested {
			if ch.del {
				delete(entries, first)
			} else {
				entries[first] = object.TreeEntry{Name: first, Mode: ch.mode, Hash: ch.hash}
			}
			continue
		}
		if _, seen := nested[first]; !seen {
			names = append(names, first)
		}
		sub := ch
		sub.path = rest
		nested[first] = append(nested[first], sub)
	}
	for _, name := range names {
		var base plumbing.Hash
		if e, ok := entries[name]; ok && e.Mode == filemode.Dir {
			base = e.Hash
		}
		h, n, err := applyChanges(st, base, nested[name])
		if err != nil {
			return plumbing.ZeroHash, 0, fmt.Errorf("update %s: %w", name, err)
		}
		if n == 0 {
			delete(entries, name)
			continue
		}
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	h, err := writeTree(st, entryList(entries))
	return h, len(entries), err
}

func writeCommit(st storer.EncodedObjectStorer, tree plumbing.Hash, parents []plumbing.Hash, message string, author signature, when time.Time) (plumbing.Hash, error) {
	sig := object.Signature{Name: author.name, Email: author.email, When: when}
	c := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: tree, ParentHashes: parents}
	obj := st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store commit: %w", err)
	}
	return h, nil
}

// mergeTrees merges ours and theirs against base, path by path; a path changed differently on both
// sides is a conflict.
func mergeTrees(st storer.EncodedObjectStorer, base, ours, theirs plumbing.Hash, prefix string) (plumbing.Hash, error) {
	switch {
	case ours == theirs, base == theirs:
		return ours, nil
	case base == ours:
		return theirs, nil
	}
	b, err := treeEntries(st, base)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	o, err := treeEntries(st, ours)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	t, err := treeEntries(st, theirs)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	out := map[string]object.TreeEntry{}
	var conflicts []string
	for _, name := range keyset.SortedUnion(b, o, t) {
		be, bok := b[name]
		oe, ook := o[name]
		te, tok := t[name]
		same := func(x object.TreeEntry, xok bool, y object.TreeEntry, yok bool) bool {
			return xok == yok && x.Hash == y.Hash && x.Mode == y.Mode
		}
		var pick object.TreeEntry
		var keep bool
		switch {
		case same(oe, ook, te, tok):
			pick, keep = oe, ook
		case same(be, bok, oe, ook):
			pick, keep = te, tok
		case same(be, bok, te, tok):
			pick, keep = oe, ook
		case ook && tok && oe.Mode == filemode.Dir && te.Mode == filemode.Dir:
			var bh plumbing.Hash
			if bok && be.Mode == filemode.Dir {
				bh = be.Hash
			}
			h, err := mergeTrees(st, bh, oe.Hash, te.Hash, prefix+name+"/")
			if errors.Is(err, errMergeConflict) {
				conflicts = append(conflicts, strings.TrimPrefix(err.Error(), errMergeConflict.Error()+": "))
				continue
			}
			if err != nil {
				return plumbing.ZeroHash, err
			}
			pick, keep = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}, true
		default:
			conflicts = append(conflicts, prefix+name)
			continue
		}
		if keep {
			out[name] = pick
		}
	}
	if len(conflicts) > 0 {
		sort.Strings(conflicts)
		return plumbing.ZeroHash, fmt.Errorf("%w: %s", errMergeConflict, strings.Join(conflicts, ", "))
	}
	return writeTree(st, entryList(out))
}

// fileChange is one file differing between two trees.
type fileChange struct {
	filename, status     string
	sha, previousSHA     string
	additions, deletions int
}

// diffTrees lists the files differing between trees a and b (zero = empty), sorted by path. Like git, it
// walks both trees top-down and never opens a subtree whose hash is the same on both sides, so its cost
// follows what changed, not the repository's size (go-git's DiffTree decodes every child tree of each
// directory it visits: a one-file change under packages/ read every package's tree, seconds per call on a
// production-sized storage, where GitHub answers in milliseconds). A file's mode counts, as in git.
func diffTrees(st storer.EncodedObjectStorer, a, b plumbing.Hash) ([]fileChange, error) {
	var out []fileChange
	if err := diffTreeInto(st, "", a, b, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].filename < out[j].filename })
	return out, nil
}

// diffTreeInto appends the file changes between trees a and b, whose paths start with prefix.
func diffTreeInto(st storer.EncodedObjectStorer, prefix string, a, b plumbing.Hash, out *[]fileChange) error {
	if a == b {
		return nil
	}
	ea, err := treeEntries(st, a)
	if err != nil {
		return err
	}
	eb, err := treeEntries(st, b)
	if err != nil {
		return err
	}
	for _, name := range keyset.SortedUnion(ea, eb) {
		x, inA := ea[name]
		y, inB := eb[name]
		if inA && inB && x.Hash == y.Hash && x.Mode == y.Mode {
			continue
		}
		path := prefix + name
		xDir, yDir := inA && x.Mode == filemode.Dir, inB && y.Mode == filemode.Dir
		if xDir && yDir {
			if err := diffTreeInto(st, path+"/", x.Hash, y.Hash, out); err != nil {
				return err
			}
			continue
		}
		// A file on at most one side each: a directory on one side is all removed or all added.
		var from, to object.ChangeEntry
		if xDir {
			if err := diffTreeInto(st, path+"/", x.Hash, plumbing.ZeroHash, out); err != nil {
				return err
			}
		} else if inA {
			from = object.ChangeEntry{Name: path, TreeEntry: x}
		}
		if yDir {
			if err := diffTreeInto(st, path+"/", plumbing.ZeroHash, y.Hash, out); err != nil {
				return err
			}
		} else if inB {
			to = object.ChangeEntry{Name: path, TreeEntry: y}
		}
		var fc fileChange
		switch {
		case from.Name == "" && to.Name == "":
			continue
		case from.Name == "":
			fc.filename, fc.status, fc.sha = to.Name, "added", to.TreeEntry.Hash.String()
		case to.Name == "":
			fc.filename, fc.status, fc.sha = from.Name, "removed", from.TreeEntry.Hash.String()
		default:
			fc.filename, fc.status, fc.sha = to.Name, "modified", to.TreeEntry.Hash.String()
			fc.previousSHA = from.TreeEntry.Hash.String()
		}
		fc.additions, fc.deletions = lineCounts(st, &object.Change{From: from, To: to})
		*out = append(*out, fc)
	}
	return nil
}

// lineCounts approximates a diff's added and removed lines by comparing the multisets of lines.
func lineCounts(st storer.EncodedObjectStorer, ch *object.Change) (int, int) {
	lines := func(e object.ChangeEntry) map[string]int {
		m := map[string]int{}
		if e.Name == "" || e.TreeEntry.Mode == filemode.Submodule {
			return m
		}
		data, err := readBlob(st, e.TreeEntry.Hash)
		if err != nil {
			return m
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			m[string(l)]++
		}
		return m
	}
	from, to := lines(ch.From), lines(ch.To)
	add, del := 0, 0
	for l, n := range to {
		if d := n - from[l]; d > 0 {
			add += d
		}
	}
	for l, n := range from {
		if d := n - to[l]; d > 0 {
			del += d
		}
	}
	return add, del
}

// modeString formats a file mode as GitHub does ("100644", "040000").
func modeString(m filemode.FileMode) string { return fmt.Sprintf("%06o", uint32(m)) }

// objectType names what an entry of mode m points at.
func objectType(m filemode.FileMode) string {
	switch m {
	case filemode.Dir:
		return "tree"
	case filemode.Submodule:
		return "commit"
	}
	return "blob"
}

// isSHA reports whether s looks like a full hex object name.
func isSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
