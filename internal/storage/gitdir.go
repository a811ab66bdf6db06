package storage

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// gitDir is a repository on disk as git lays it out: the per-work-tree directory (HEAD, and for a linked
// work tree its own refs) and the common directory (objects, refs, packed-refs, config, shallow) that a
// linked work tree (`git worktree add`) shares with its main repository.
type gitDir struct {
	dir       string // $GIT_DIR
	commonDir string // $GIT_COMMON_DIR; dir unless dir has a commondir file
	config    gitConfig
	shallow   map[oid]bool
}

// errNotRepository marks a path that is not inside a git repository.
var errNotRepository = errors.New("not a git repository (or any parent up to the root)")

// findGitDir finds the repository at path the way git does: path itself when it is a git directory (bare
// repository or .git), else the first of path and its parents holding a .git directory or a .git file
// (`gitdir: ...`, written for linked work trees and submodules).
func findGitDir(path string) (*gitDir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("find repository: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("find repository: %w", err)
	}
	for dir := abs; ; {
		if isGitDir(dir) {
			return openGitDir(dir)
		}
		dotGit := filepath.Join(dir, ".git")
		if st, err := os.Stat(dotGit); err == nil {
			if st.IsDir() && isGitDir(dotGit) {
				return openGitDir(dotGit)
			}
			if st.Mode().IsRegular() {
				target, err := readGitFile(dotGit)
				if err != nil {
					return nil, err
				}
				return openGitDir(target)
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errNotRepository
		}
		dir = parent
	}
}

// isGitDir reports whether dir looks like a git directory, with git's own test: a HEAD file, and objects and
// refs directories (in the common directory for a linked work tree).
func isGitDir(dir string) bool {
	if st, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil || st.IsDir() {
		return false
	}
	common := dir
	if c, err := readCommonDir(dir); err == nil && c != "" {
		common = c
	}
	for _, sub := range []string{"objects", "refs"} {
		if st, err := os.Stat(filepath.Join(common, sub)); err != nil || !st.IsDir() {
			return false
		}
	}
	return true
}

// readGitFile reads a .git file ("gitdir: PATH", PATH relative to the file's directory).
func readGitFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	target, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:")
	if !ok {
		return "", fmt.Errorf("%s is neither a directory nor a `gitdir:` file", path)
	}
	target = strings.TrimSpace(target)
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(path), target)
	}
	if !isGitDir(target) {
		return "", fmt.Errorf("%s points at %s, which is not a git directory", path, target)
	}
	return target, nil
}

func readCommonDir(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "commondir"))
	if err != nil {
		return "", err
	}
	c := strings.TrimSpace(string(data))
	if !filepath.IsAbs(c) {
		c = filepath.Join(dir, c)
	}
	return filepath.Clean(c), nil
}

func openGitDir(dir string) (*gitDir, error) {
	g := &gitDir{dir: dir, commonDir: dir}
	if c, err := readCommonDir(dir); err == nil {
		g.commonDir = c
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "commondir"), err)
	}
	cfg, err := readConfig(filepath.Join(g.commonDir, "config"))
	if err != nil {
		return nil, err
	}
	g.config = cfg
	// Repository extensions this reader does not implement: refusing them beats misreading the repository.
	if f := cfg.get("extensions", "", "objectformat"); f != "" && !strings.EqualFold(f, "sha1") {
		return nil, fmt.Errorf("%s uses object format %s; storagebot check reads SHA-1 repositories only", dir, f)
	}
	if f := cfg.get("extensions", "", "refstorage"); f != "" && !strings.EqualFold(f, "files") {
		return nil, fmt.Errorf("%s stores references as %s; storagebot check reads the files format only (`git refs migrate --ref-format=files` converts it)", dir, f)
	}
	if g.shallow, err = readShallow(filepath.Join(g.commonDir, "shallow")); err != nil {
		return nil, err
	}
	return g, nil
}

// readShallow reads the commits whose parents a shallow clone lacks.
func readShallow(path string) (map[oid]bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	shallow := map[oid]bool{}
	for _, line := range strings.Fields(string(data)) {
		h, ok := parseOID(line)
		if !ok {
			return nil, fmt.Errorf("read %s: %q is not an object name: %w", path, line, errCorrupt)
		}
		shallow[h] = true
	}
	return shallow, nil
}

// promisor reports whether the repository is a partial clone: objects may be missing and fetched on demand
// from a promisor remote.
func (g *gitDir) promisor() bool {
	if g.config.get("extensions", "", "partialclone") != "" {
		return true
	}
	for _, e := range g.config.entries {
		if e.section == "remote" && e.key == "promisor" && strings.EqualFold(e.value, "true") {
			return true
		}
	}
	return false
}

// gitConfig is the part of a git configuration file this reader needs: section, subsection, key and value
// of each variable. Sections and keys are case-insensitive (stored lower-case); subsections are not.
type gitConfig struct {
	entries []configEntry
}

type configEntry struct{ section, subsection, key, value string }

func (c gitConfig) get(section, subsection, key string) string {
	v := ""
	for _, e := range c.entries {
		if e.section == section && e.subsection == subsection && e.key == key {
			v = e.value // the last one wins, as in git
		}
	}
	return v
}

// readConfig parses the subset of git's config syntax that git itself writes: [section] and
// [section "subsection"] headers, key = value lines, comments and quoted values. Includes are not followed.
func readConfig(path string) (gitConfig, error) {
	var cfg gitConfig
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read %s: %w", path, err)
	}
	section, subsection := "", ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				continue
			}
			head := line[1:end]
			section, subsection = head, ""
			if name, sub, ok := strings.Cut(head, " "); ok {
				section, subsection = name, strings.Trim(strings.TrimSpace(sub), `"`)
			} else if name, sub, ok := strings.Cut(head, "."); ok {
				section, subsection = name, sub // deprecated [section.subsection] form
			}
			section = strings.ToLower(section)
			line = strings.TrimSpace(line[end+1:])
			if line == "" {
				continue
			}
		}
		key, value, hasValue := strings.Cut(line, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		value = strings.TrimSpace(value)
		if !hasValue {
			value = "true"
		}
		value = unquoteConfigValue(value)
		cfg.entries = append(cfg.entries, configEntry{section: section, subsection: subsection, key: key, value: value})
	}
	if err := sc.Err(); err != nil {
		return cfg, fmt.Errorf("read %s: %w", path, err)
	}
	return cfg, nil
}

// unquoteConfigValue drops a trailing comment and double quotes.
func unquoteConfigValue(v string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && i+1 < len(v):
			i++
			b.WriteByte(v[i])
		case (c == '#' || c == ';') && !quoted:
			return strings.TrimSpace(b.String())
		default:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}

func parseOID(s string) (oid, bool) {
	var h oid
	if len(s) != 40 {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, false
	}
	return h, true
}

// isHex reports whether s is hexadecimal (either case, as git accepts abbreviated object names).
func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdefABCDEF") == ""
}
