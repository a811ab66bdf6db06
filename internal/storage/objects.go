package storage

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// objectDB reads objects from a repository's object directory and its alternates (`git clone --shared` or
// `--reference`): packs first, then loose objects, directory by directory, as git does. In a partial clone
// (`--filter`) a missing object is fetched through `git cat-file` when git is on PATH.
type objectDB struct {
	dirs     []*objectDir
	gitDir   string
	promisor bool
}

type objectDir struct {
	path  string
	packs []*packFile
}

// maxAlternateDepth is git's own bound on chains of alternates.
const maxAlternateDepth = 5

func openObjectDB(g *gitDir) (*objectDB, error) {
	db := &objectDB{gitDir: g.dir, promisor: g.promisor()}
	seen := map[string]bool{}
	if err := db.addDir(filepath.Join(g.commonDir, "objects"), 0, seen); err != nil {
		db.close()
		return nil, err
	}
	return db, nil
}

// addDir opens the packs of one object directory, then its alternates.
func (db *objectDB) addDir(path string, depth int, seen map[string]bool) error {
	path = filepath.Clean(path)
	if seen[path] {
		return nil
	}
	seen[path] = true
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		if depth == 0 {
			return fmt.Errorf("object directory %s: %w", path, err)
		}
		return fmt.Errorf("alternate object directory %s (listed in objects/info/alternates) is missing: restore it or run `git repack -a -d` to copy its objects into the repository", path)
	}
	d := &objectDir{path: path}
	db.dirs = append(db.dirs, d)
	idxs, err := filepath.Glob(filepath.Join(path, "pack", "pack-*.idx"))
	if err != nil {
		return fmt.Errorf("list packs in %s: %w", path, err)
	}
	sort.Strings(idxs)
	for _, idx := range idxs {
		p, err := openPack(idx)
		if err != nil {
			return fmt.Errorf("open pack %s: %w", idx, err)
		}
		d.packs = append(d.packs, p)
	}
	data, err := os.ReadFile(filepath.Join(path, "info", "alternates"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read alternates of %s: %w", path, err)
	}
	if depth >= maxAlternateDepth {
		return fmt.Errorf("alternates of %s nest deeper than %d", path, maxAlternateDepth)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, `"`) {
			if uq, err := strconv.Unquote(line); err == nil {
				line = uq
			}
		}
		if !filepath.IsAbs(line) {
			line = filepath.Join(path, line) // relative to the objects directory that lists it
		}
		if err := db.addDir(line, depth+1, seen); err != nil {
			return err
		}
	}
	return nil
}

func (db *objectDB) close() {
	for _, d := range db.dirs {
		for _, p := range d.packs {
			p.close()
		}
	}
}

// read returns the type and contents of an object. A missing object is ErrNotFound, unless the repository
// is a partial clone and git can fetch it.
func (db *objectDB) read(ctx context.Context, h oid) (objectType, []byte, error) {
	typ, data, found, err := db.readLocal(h)
	if err != nil || found {
		return typ, data, err
	}
	if db.promisor {
		return db.fetchMissing(ctx, h)
	}
	return 0, nil, fmt.Errorf("object %s: %w", h, ErrNotFound)
}

func (db *objectDB) readLocal(h oid) (objectType, []byte, bool, error) {
	for _, d := range db.dirs {
		for _, p := range d.packs {
			off, ok, err := p.find(h)
			if err != nil {
				return 0, nil, false, err
			}
			if ok {
				typ, data, err := p.objectAt(off)
				if err != nil {
					return 0, nil, false, fmt.Errorf("read object %s from %s: %w", h, p.packName, err)
				}
				return typ, data, true, nil
			}
		}
		typ, data, found, err := readLoose(d.path, h)
		if err != nil || found {
			return typ, data, found, err
		}
	}
	return 0, nil, false, nil
}

// readLoose reads objects/xx/yyyy…: a zlib stream of "<type> <size>\0<contents>".
func readLoose(dir string, h oid) (objectType, []byte, bool, error) {
	name := h.String()
	path := filepath.Join(dir, name[:2], name[2:])
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("read loose object %s: %w", name, err)
	}
	defer f.Close()
	zr, err := zlib.NewReader(bufio.NewReader(f))
	if err != nil {
		return 0, nil, false, fmt.Errorf("read loose object %s: %w (%w)", name, errCorrupt, err)
	}
	br := bufio.NewReader(zr)
	header, err := br.ReadString(0)
	if err != nil || len(header) > 32 {
		return 0, nil, false, fmt.Errorf("read loose object %s: bad header: %w", name, errCorrupt)
	}
	typName, sizeStr, _ := strings.Cut(strings.TrimSuffix(header, "\x00"), " ")
	size, err := strconv.ParseInt(sizeStr, 10, 64)
	if err != nil || size < 0 || size > maxObjectSize {
		return 0, nil, false, fmt.Errorf("read loose object %s: size %q: %w", name, sizeStr, errCorrupt)
	}
	typ, ok := typeByName(typName)
	if !ok {
		return 0, nil, false, fmt.Errorf("read loose object %s: type %q: %w", name, typName, errCorrupt)
	}
	data, err := readExactly(br, size, "loose object "+name)
	if err != nil {
		return 0, nil, false, err
	}
	return typ, data, true, nil
}

func typeByName(s string) (objectType, bool) {
	for _, t := range []objectType{objCommit, objTree, objBlob, objTag} {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

// fetchMissing asks git for an object a partial clone lacks; git fetches it from the promisor remote.
func (db *objectDB) fetchMissing(ctx context.Context, h oid) (objectType, []byte, error) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return 0, nil, fmt.Errorf("object %s is missing: the repository is a partial clone (cloned with --filter) and git is not on PATH to fetch it; install git or check a full clone: %w", h, ErrNotFound)
	}
	cmd := exec.CommandContext(ctx, gitBin, "--git-dir="+db.gitDir, "cat-file", "--batch")
	cmd.Stdin = strings.NewReader(h.String() + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, nil, fmt.Errorf("object %s is missing from this partial clone and `git cat-file` could not fetch it (%v: %s); run `git fetch` or check a full clone", h, err, strings.TrimSpace(stderr.String()))
	}
	header, rest, _ := bytes.Cut(out, []byte("\n"))
	fields := strings.Fields(string(header))
	if len(fields) != 3 {
		return 0, nil, fmt.Errorf("object %s is missing from this partial clone and the promisor remote does not have it (git says %q): %w", h, header, ErrNotFound)
	}
	typ, ok := typeByName(fields[1])
	size, err := strconv.Atoi(fields[2])
	if !ok || err != nil || size > len(rest) {
		return 0, nil, fmt.Errorf("fetch object %s through git: unexpected answer %q", h, header)
	}
	return typ, rest[:size], nil
}

// withPrefix returns up to limit distinct objects whose name starts with the hex prefix (4 to 40 digits,
// lower case).
func (db *objectDB) withPrefix(prefix string, limit int) ([]oid, error) {
	seen := map[oid]bool{}
	var found []oid
	add := func(h oid) {
		if !seen[h] {
			seen[h] = true
			found = append(found, h)
		}
	}
	for _, d := range db.dirs {
		for _, p := range d.packs {
			names, err := p.withPrefix(prefix, nil, limit)
			if err != nil {
				return nil, err
			}
			for _, h := range names {
				add(h)
			}
		}
		entries, err := os.ReadDir(filepath.Join(d.path, prefix[:2]))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("list loose objects: %w", err)
		}
		for _, e := range entries {
			if name := prefix[:2] + e.Name(); strings.HasPrefix(name, prefix) {
				if h, ok := parseOID(name); ok {
					add(h)
				}
			}
		}
	}
	if len(found) > limit {
		found = found[:limit]
	}
	return found, nil
}

// commitInfo is the part of a commit object the reader needs.
type commitInfo struct {
	tree    oid
	parents []oid
	time    int64 // committer time, for the date order of history walks
}

func parseCommit(data []byte) (commitInfo, error) {
	var c commitInfo
	sawTree := false
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		data = rest
		if len(line) == 0 {
			break // end of headers
		}
		key, value, _ := bytes.Cut(line, []byte(" "))
		switch string(key) {
		case "tree":
			h, ok := parseOID(string(value))
			if !ok {
				return c, fmt.Errorf("commit tree %q: %w", value, errCorrupt)
			}
			c.tree, sawTree = h, true
		case "parent":
			h, ok := parseOID(string(value))
			if !ok {
				return c, fmt.Errorf("commit parent %q: %w", value, errCorrupt)
			}
			c.parents = append(c.parents, h)
		case "committer":
			// "Name <email> 1234567890 +0000"
			if gt := bytes.LastIndexByte(value, '>'); gt >= 0 {
				f := strings.Fields(string(value[gt+1:]))
				if len(f) > 0 {
					c.time, _ = strconv.ParseInt(f[0], 10, 64)
				}
			}
		}
	}
	if !sawTree {
		return c, fmt.Errorf("commit without a tree: %w", errCorrupt)
	}
	return c, nil
}

// parseTagTarget returns the object an annotated tag points at and its type.
func parseTagTarget(data []byte) (oid, objectType, error) {
	var target oid
	var typ objectType
	gotObject, gotType := false, false
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		data = rest
		if len(line) == 0 {
			break
		}
		key, value, _ := bytes.Cut(line, []byte(" "))
		switch string(key) {
		case "object":
			target, gotObject = parseOID(string(value))
		case "type":
			typ, gotType = typeByName(string(value))
		}
	}
	if !gotObject || !gotType {
		return target, 0, fmt.Errorf("tag without object or type: %w", errCorrupt)
	}
	return target, typ, nil
}

// parseTree decodes a tree object: entries of "<octal mode> <name>\0<20-byte object name>".
func parseTree(data []byte) ([]TreeEntry, error) {
	entries := make([]TreeEntry, 0, bytes.Count(data, []byte{0}))
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp <= 0 {
			return nil, fmt.Errorf("tree entry mode: %w", errCorrupt)
		}
		mode, err := strconv.ParseUint(string(data[:sp]), 8, 32)
		if err != nil {
			return nil, fmt.Errorf("tree entry mode %q: %w", data[:sp], errCorrupt)
		}
		data = data[sp+1:]
		nul := bytes.IndexByte(data, 0)
		if nul <= 0 || len(data) < nul+1+20 {
			return nil, fmt.Errorf("tree entry name: %w", errCorrupt)
		}
		name := string(data[:nul])
		var h oid
		copy(h[:], data[nul+1:nul+21])
		data = data[nul+21:]
		e := TreeEntry{Path: name, Mode: fmt.Sprintf("%06o", mode), SHA: h.String()}
		switch mode {
		case 0o040000:
			e.Type = TypeTree
		case 0o160000:
			e.Type = TypeCommit
		default:
			e.Type = TypeBlob
		}
		entries = append(entries, e)
	}
	return entries, nil
}
