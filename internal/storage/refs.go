package storage

import (
	"bufio"
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
// read once, on the first name not found loose: a GitHub clone with refs/pull/* holds tens of thousands of
// references there, and re-reading it per revision was half of the old reader's start-up cost.
type refStore struct {
	g *gitDir

	once      sync.Once
	packed    map[string]oid
	packedErr error
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
	packed, err := s.packedRefs()
	if err != nil {
		return "", oid{}, false, err
	}
	h, ok := packed[name]
	return "", h, ok, nil
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

// packedRefs parses packed-refs once: "<sha> <name>" lines, "^<sha>" lines (the peeled object of the tag
// above, not needed here) and a "# pack-refs with:" header.
func (s *refStore) packedRefs() (map[string]oid, error) {
	s.once.Do(func() {
		path := filepath.Join(s.g.commonDir, "packed-refs")
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			s.packed = map[string]oid{}
			return
		}
		if err != nil {
			s.packedErr = fmt.Errorf("read %s: %w", path, err)
			return
		}
		refs := make(map[string]oid, bytes.Count(data, []byte("\n")))
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Bytes()
			if len(line) == 0 || line[0] == '#' || line[0] == '^' {
				continue
			}
			if len(line) < 42 || line[40] != ' ' {
				s.packedErr = fmt.Errorf("%s:%d: not a \"<sha> <name>\" line: %w", path, n, errCorrupt)
				return
			}
			h, ok := parseOID(string(line[:40]))
			if !ok {
				s.packedErr = fmt.Errorf("%s:%d: %q is not an object name: %w", path, n, line[:40], errCorrupt)
				return
			}
			refs[string(line[41:])] = h
		}
		if err := sc.Err(); err != nil {
			s.packedErr = fmt.Errorf("read %s: %w", path, err)
			return
		}
		s.packed = refs
	})
	return s.packed, s.packedErr
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
