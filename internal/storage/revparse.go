package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Revision is a revision resolved the way `git rev-parse` resolves it.
type Revision struct {
	// Rev is the revision as given.
	Rev string
	// Ref is the full name of the reference the revision named (after following symbolic references, so
	// HEAD on a branch gives refs/heads/<branch>); "HEAD" for a detached HEAD; "" for an object name.
	Ref string
	// Commit is the commit the revision resolves to (annotated tags peeled).
	Commit Commit
}

// dwimRules are git's rules for turning a short name into a reference, in git's order (gitrevisions(7)).
var dwimRules = []string{"%s", "refs/%s", "refs/tags/%s", "refs/heads/%s", "refs/remotes/%s", "refs/remotes/%s/HEAD"}

// disambiguation hints for abbreviated object names: git prefers commits (and tags of commits) when the
// revision goes on with ~, ^N or ^{commit}, and tree-ish objects for ^{tree}.
type objectHint int

const (
	hintNone objectHint = iota
	hintCommittish
	hintTreeish
)

// minAbbrev is the shortest abbreviated object name git accepts.
const minAbbrev = 4

// revParse resolves rev to an object as `git rev-parse rev` does: object names (full or unique abbreviation),
// references by git's rules (HEAD, branches, tags, remote-tracking branches, refs/...), `git describe`
// output, and the suffixes ~N, ^N, ^{}, ^{commit}, ^{tree}, ^{blob}, ^{tag}, ^{object}. It returns the
// object and, when the revision named a reference, that reference's full name.
func (r *LocalReader) revParse(ctx context.Context, rev string) (oid, objectType, string, error) {
	if strings.Contains(rev, "@{") || strings.HasPrefix(rev, ":") || strings.Contains(rev, "..") {
		return oid{}, 0, "", fmt.Errorf("revision %q: reflog, path and range syntax are not supported; give a branch, tag, ref or commit SHA: %w", rev, ErrNotFound)
	}
	name := rev
	suffix := ""
	if i := strings.IndexAny(rev, "~^"); i >= 0 {
		name, suffix = rev[:i], rev[i:]
	}
	if strings.Contains(name, ":") {
		return oid{}, 0, "", fmt.Errorf("revision %q: <rev>:<path> is not supported; give a branch, tag, ref or commit SHA: %w", rev, ErrNotFound)
	}
	hint := hintNone
	if suffix != "" {
		hint = hintCommittish
		if strings.HasPrefix(suffix, "^{") && !strings.HasPrefix(suffix, "^{commit}") {
			hint = hintNone
			if strings.HasPrefix(suffix, "^{tree}") {
				hint = hintTreeish
			}
		}
	}
	h, ref, err := r.resolveName(ctx, name, hint)
	if err != nil {
		return oid{}, 0, "", fmt.Errorf("revision %q: %w", rev, err)
	}
	typ, err := r.objectType(ctx, h)
	if err != nil {
		return oid{}, 0, "", fmt.Errorf("revision %q: %w", rev, err)
	}
	for suffix != "" {
		op := suffix[0]
		suffix = suffix[1:]
		if op == '^' && strings.HasPrefix(suffix, "{") {
			end := strings.IndexByte(suffix, '}')
			if end < 0 {
				return oid{}, 0, "", fmt.Errorf("revision %q: unterminated ^{: %w", rev, ErrNotFound)
			}
			want := suffix[1:end]
			suffix = suffix[end+1:]
			if h, typ, err = r.peel(ctx, h, typ, want); err != nil {
				return oid{}, 0, "", fmt.Errorf("revision %q: %w", rev, err)
			}
			continue
		}
		digits := 0
		for digits < len(suffix) && suffix[digits] >= '0' && suffix[digits] <= '9' {
			digits++
		}
		n := 1
		if digits > 0 {
			v, err := strconv.Atoi(suffix[:digits])
			if err != nil || v > 1<<20 {
				return oid{}, 0, "", fmt.Errorf("revision %q: bad number %q: %w", rev, suffix[:digits], ErrNotFound)
			}
			n = v
		}
		suffix = suffix[digits:]
		if h, _, err = r.peel(ctx, h, typ, "commit"); err != nil {
			return oid{}, 0, "", fmt.Errorf("revision %q: %w", rev, err)
		}
		switch {
		case op == '^' && n == 0:
		case op == '^':
			c, err := r.commitInfo(ctx, h)
			if err != nil {
				return oid{}, 0, "", fmt.Errorf("revision %q: %w", rev, err)
			}
			if n > len(c.parents) {
				if r.g.shallow[h] {
					return oid{}, 0, "", r.shallowError(fmt.Sprintf("revision %q", rev), h)
				}
				return oid{}, 0, "", fmt.Errorf("revision %q: commit %s has %d parents: %w", rev, h, len(c.parents), ErrNotFound)
			}
			h = c.parents[n-1]
		default: // ~n: n-th first-parent ancestor
			for i := 0; i < n; i++ {
				c, err := r.commitInfo(ctx, h)
				if err != nil {
					return oid{}, 0, "", fmt.Errorf("revision %q: %w", rev, err)
				}
				if len(c.parents) == 0 {
					if r.g.shallow[h] {
						return oid{}, 0, "", r.shallowError(fmt.Sprintf("revision %q", rev), h)
					}
					return oid{}, 0, "", fmt.Errorf("revision %q: commit %s has no parent: %w", rev, h, ErrNotFound)
				}
				h = c.parents[0]
			}
		}
		typ = objCommit
	}
	return h, typ, ref, nil
}

// shallowError says that history ends at a shallow clone's boundary and how to get the rest.
func (r *LocalReader) shallowError(what string, at oid) error {
	return fmt.Errorf("%s: the history stops at commit %s because the repository is a shallow clone; run `git fetch --unshallow` (or clone with fetch-depth 0) and check again: %w", what, at, ErrShallow)
}

// ErrShallow is returned when an answer needs history that a shallow clone does not have.
var ErrShallow = errors.New("shallow clone")

// resolveName resolves the part of a revision before its suffixes.
func (r *LocalReader) resolveName(ctx context.Context, name string, hint objectHint) (oid, string, error) {
	if name == "" || name == "@" {
		name = "HEAD"
	}
	if len(name) == 40 {
		if h, ok := parseOID(name); ok {
			return h, "", nil
		}
	}
	for _, rule := range dwimRules {
		full := fmt.Sprintf(rule, name)
		if rule == "%s" && !strings.HasPrefix(name, "refs/") && !isRootRefName(name) {
			continue
		}
		h, final, found, err := r.refs.resolve(full)
		if err != nil {
			return oid{}, "", err
		}
		if found {
			return h, final, nil
		}
	}
	// `git describe` output: <tag>-<n>-g<abbreviated commit>.
	if i := strings.LastIndex(name, "-g"); i > 0 {
		if abbrev := name[i+2:]; len(abbrev) >= minAbbrev && isHex(abbrev) {
			if h, err := r.abbreviated(ctx, abbrev, hintCommittish); err == nil {
				return h, "", nil
			}
		}
	}
	if len(name) >= minAbbrev && len(name) <= 40 && isHex(name) {
		h, err := r.abbreviated(ctx, name, hint)
		return h, "", err
	}
	return oid{}, "", fmt.Errorf("unknown revision: no such reference, tag or object: %w", ErrNotFound)
}

// abbreviated resolves a unique abbreviated object name; with a hint, only objects of the kinds it names
// count (git's disambiguation).
func (r *LocalReader) abbreviated(ctx context.Context, prefix string, hint objectHint) (oid, error) {
	prefix = strings.ToLower(prefix)
	candidates, err := r.objects.withPrefix(prefix, 64)
	if err != nil {
		return oid{}, err
	}
	if hint != hintNone && len(candidates) > 1 {
		var kept []oid
		for _, h := range candidates {
			typ, err := r.objectType(ctx, h)
			if err != nil {
				return oid{}, err
			}
			// Tags count when they peel to the wanted kind.
			peeled, ptyp, err := r.peel(ctx, h, typ, "")
			if err != nil {
				continue
			}
			_ = peeled
			if ptyp == objCommit || (hint == hintTreeish && ptyp == objTree) {
				kept = append(kept, h)
			}
		}
		candidates = kept
	}
	switch len(candidates) {
	case 0:
		return oid{}, fmt.Errorf("unknown revision: no object name starts with %s: %w", prefix, ErrNotFound)
	case 1:
		return candidates[0], nil
	}
	return oid{}, fmt.Errorf("abbreviated object name %s is ambiguous (%d objects start with it); give more digits: %w", prefix, len(candidates), ErrNotFound)
}

// peel dereferences h toward the kind named by want: "" for ^{} (tags peeled until a non-tag), "commit",
// "tree" (a commit gives its tree), "blob", "tag" or "object".
func (r *LocalReader) peel(ctx context.Context, h oid, typ objectType, want string) (oid, objectType, error) {
	switch want {
	case "object":
		return h, typ, nil
	case "tag":
		if typ != objTag {
			return oid{}, 0, fmt.Errorf("object %s is a %s, not a tag: %w", h, typ, ErrNotFound)
		}
		return h, typ, nil
	case "", "commit", "tree", "blob":
	default:
		return oid{}, 0, fmt.Errorf("^{%s} is not supported (use ^{}, ^{commit}, ^{tree}, ^{blob}, ^{tag} or ^{object}): %w", want, ErrNotFound)
	}
	for depth := 0; ; depth++ {
		if depth > 100 {
			return oid{}, 0, fmt.Errorf("tag %s: tags nest deeper than 100: %w", h, errCorrupt)
		}
		if typ == objTag {
			_, data, err := r.objects.read(ctx, h)
			if err != nil {
				return oid{}, 0, err
			}
			target, ttyp, err := parseTagTarget(data)
			if err != nil {
				return oid{}, 0, fmt.Errorf("read tag %s: %w", h, err)
			}
			h, typ = target, ttyp
			continue
		}
		switch {
		case want == "" || typ.String() == want:
			return h, typ, nil
		case want == "tree" && typ == objCommit:
			c, err := r.commitInfo(ctx, h)
			if err != nil {
				return oid{}, 0, err
			}
			return c.tree, objTree, nil
		}
		return oid{}, 0, fmt.Errorf("object %s is a %s, not a %s: %w", h, typ, want, ErrNotFound)
	}
}

// objectType reads an object's type.
func (r *LocalReader) objectType(ctx context.Context, h oid) (objectType, error) {
	if _, ok := r.cachedCommit(h); ok {
		return objCommit, nil
	}
	typ, _, err := r.objects.read(ctx, h)
	return typ, err
}
