package githubfake

import (
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// PushTag creates the lightweight tag name on commit sha, as `git push origin <name>` does, and emits the
// push event GitHub sends for a tag: ref refs/tags/<name>, before all zeros, created true, no commits, and
// head_commit the tagged commit; base_ref names a branch whose head is that commit (null otherwise). Like git,
// it refuses a tag that exists (pushing it again needs --force, which is not modelled). GitHub sends no push
// event when more than three tags are pushed at once; this pushes one.
func (r *Repo) PushTag(name, sha, by string) error {
	r.s.mu.Lock()
	if name == "" || strings.ContainsAny(name, " ~^:?*[\\") || strings.HasPrefix(name, "-") {
		r.s.mu.Unlock()
		return fmt.Errorf("push tag %q: not a valid tag name", name)
	}
	if _, ok := r.tags[name]; ok {
		r.s.mu.Unlock()
		return fmt.Errorf("push tag %s: ! [rejected] (already exists)", name)
	}
	h := plumbing.NewHash(sha)
	if _, err := object.GetCommit(r.st, h); err != nil || !isSHA(sha) {
		r.s.mu.Unlock()
		return fmt.Errorf("push tag %s: commit %s does not exist", name, sha)
	}
	if r.tags == nil {
		r.tags = map[string]plumbing.Hash{}
	}
	r.tags[name] = h
	ev := r.pushEvent("", plumbing.ZeroHash, h, []plumbing.Hash{h}, by)
	var baseRef any
	for _, b := range sortedKeys(r.branches) {
		if r.branches[b] == h {
			baseRef = "refs/heads/" + b
			break
		}
	}
	ev.payload["ref"] = "refs/tags/" + name
	ev.payload["base_ref"] = baseRef
	ev.payload["commits"] = []any{}
	ev.payload["compare"] = r.htmlURL() + "/compare/" + name
	r.s.mu.Unlock()
	r.s.emit([]event{ev})
	return nil
}

// Tags returns the repository's tags and the commits they point at.
func (r *Repo) Tags() map[string]string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	out := map[string]string{}
	for name, h := range r.tags {
		out[name] = h.String()
	}
	return out
}
