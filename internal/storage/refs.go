package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// refStore reads references the way git's files backend stores them: a loose file under the git directory
// (a SHA, or "ref: TARGET" for a symbolic reference) shadows the same name in packed-refs. packed-refs is
// mapped once, on the first name not found loose, and searched in place: a GitHub clone with refs/pull/*
// holds tens of thousands of references there (412 KB for elastic/package-storage), and parsing it into a
// map, or even copying it into the heap, per run cost more than the few look-ups a check makes.
type refStore struct {
	g *gitDir

	once          sync.Once
	packed        []byte // packed-refs, ending with a newline
	releasePacked func() error
	packedErr     error
}

// close unmaps packed-refs; the store must not be used afterwards.
func (s *refStore) close() error {
	if s.releasePacked == nil {
		return nil
	}
	err := s.releasePacked()
	s.packed, s.releasePacked = nil, nil
	return err
}

// maxSymrefDepth is git's bound on chains of symbolic references.
const maxSymrefDepth = 5

// resolve returns the object a reference points at, following symbolic references, and the name of the
// reference finally read. found is false when the reference does not exist (or is an unborn symbolic one).
func (s *refStore) resolve(name string) (h oid, final string, found bool, err error) {
	for depth := 0; depth <= maxSymrefDepth; depth++ {
		target, h, found, err := s.readOne(name)
		if err != nil || !found {
			return oid{}, name, false, err
		}
		if target == "" {
			return h, name, true, nil
		}
		name = target
	}
	return oid{}, name, false, fmt.Errorf("reference %s: symbolic references nest deeper than %d", name, maxSymrefDepth)
}

// readOne reads one reference without following it: target is set for a symbolic reference.
func (s *refStore) readOne(name string) (target string, h oid, found bool, err error) {
	if !validRefName(name) {
		return "", oid{}, false, nil
	}
	path := filepath.Join(s.looseDir(name), filepath.FromSlash(name))
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		line := strings.TrimSpace(string(data))
		if t, ok := strings.CutPrefix(line, "ref:"); ok {
			return strings.TrimSpace(t), oid{}, true, nil
		}
		// FETCH_HEAD holds "<sha>\t...\n" lines; the first names what a bare FETCH_HEAD means.
		if len(line) >= 40 {
			if h, ok := parseOID(line[:40]); ok {
				return "", h, true, nil
			}
		}
		return "", oid{}, false, fmt.Errorf("reference %s (%s): %q is not an object name: %w", name, path, line, errCorrupt)
	case errors.Is(err, os.ErrNotExist), isDirErr(path):
	default:
		return "", oid{}, false, fmt.Errorf("read reference %s: %w", name, err)
	}
	if !strings.HasPrefix(name, "refs/") {
		return "", oid{}, false, nil // HEAD and pseudo-references are never packed
	}
	return s.packedRef(name)
}

func isDirErr(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// looseDir is where the loose file of a reference lives: HEAD, pseudo-references and the per-work-tree
// namespaces in the work tree's own git directory, every other reference in the common directory.
func (s *refStore) looseDir(name string) string {
	if !strings.HasPrefix(name, "refs/") ||
		strings.HasPrefix(name, "refs/bisect/") || strings.HasPrefix(name, "refs/worktree/") || strings.HasPrefix(name, "refs/rewritten/") {
		return s.g.dir
	}
	return s.g.commonDir
}

// packedRef looks name up in packed-refs: "<sha> <name>" lines, "^<sha>" lines (the peeled object of the
// tag above, not needed here) and a "# pack-refs with:" header. Names contain no spaces or newlines, so
// " <name>\n" occurs in the file only at the end of that name's own line.
func (s *refStore) packedRef(name string) (target string, h oid, found bool, err error) {
	s.once.Do(func() {
		path := filepath.Join(s.g.commonDir, "packed-refs")
		data, release, err := mapWhole(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			s.packedErr = fmt.Errorf("read %s: %w", path, err)
		case len(data) > 0 && data[len(data)-1] != '\n':
			// Git always ends the file with a newline; a mapping cannot be extended, so copy this rare one.
			s.packed = append(append(make([]byte, 0, len(data)+1), data...), '\n')
			s.packedErr = release()
		default:
			s.packed, s.releasePacked = data, release
		}
	})
	if s.packedErr != nil {
		return "", oid{}, false, s.packedErr
	}
	i := bytes.Index(s.packed, []byte(" "+name+"\n"))
	if i < 0 {
		return "", oid{}, false, nil
	}
	if i < 40 || (i > 40 && s.packed[i-41] != '\n') {
		return "", oid{}, false, fmt.Errorf("packed-refs: the line of %s does not start with an object name: %w", name, errCorrupt)
	}
	h, ok := parseOID(string(s.packed[i-40 : i]))
	if !ok {
		return "", oid{}, false, fmt.Errorf("packed-refs: %s: %q is not an object name: %w", name, s.packed[i-40:i], errCorrupt)
	}
	return "", h, true, nil
}

// validRefName is git's check-ref-format for the names this reader looks up, which also keeps a revision
// given on the command line from naming a file outside the git directory.
func validRefName(name string) bool {
	if name == "" || name == "@" || strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") || strings.Contains(name, "@{") || strings.Contains(name, "//") {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part[0] == '.' || strings.HasSuffix(part, ".lock") {
			return false
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 || c == 0x7f || strings.IndexByte(" ~^:?*[\\", c) >= 0 {
			return false
		}
	}
	return true
}

// isRootRefName reports whether name may be looked up directly under the git directory: HEAD and the
// all-capitals pseudo-references (FETCH_HEAD, ORIG_HEAD, MERGE_HEAD…), as git does.
func isRootRefName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'A' && c <= 'Z' || c == '_') {
			return false
		}
	}
	return true
}
