package promotion

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/seal"
)

// maxKeyLength bounds the readable branch key; longer version lists are keyed by a hash prefix.
const maxKeyLength = 100

// branchKey derives a branch-name key from a version list deterministically: "foo-1.2.3_bar-2.0.0" in sorted
// order, or "sha256-<16 hex>" of that text when it is longer than maxKeyLength (or holds characters a ref
// name may not).
func branchKey(versions []commandparse.VersionRef) string {
	parts := make([]string, 0, len(versions))
	for _, v := range sortRefs(versions) {
		parts = append(parts, v.Package+"-"+v.Version)
	}
	key := strings.Join(parts, "_")
	if len(key) <= maxKeyLength && safeRefPart.MatchString(key) && !strings.Contains(key, "..") {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256-" + hex.EncodeToString(sum[:])[:16]
}

var safeRefPart = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)

// MarkedVersion is one version recorded in a PR body marker.
type MarkedVersion struct {
	Package string `json:"package"`
	Version string `json:"version"`
	// Channel is the source channel of a promotion, or the channel a removal deletes from.
	Channel string `json:"channel"`
	Tree    string `json:"tree"`
}

// Marker is the machine-readable record hidden in the body of every PR the bot opens, so that a later event
// (or another replica) knows what the PR is without re-deriving it. Anyone with write access can edit a PR's
// body, so the marker is sealed (see internal/seal): a marker that does not verify counts for nothing.
type Marker struct {
	// Kind is "promotion" or "removal".
	Kind string `json:"-"`
	// Target is the channel the PR merges into.
	Target   string          `json:"target"`
	Versions []MarkedVersion `json:"versions"`
	// Commit is the commit the bot wrote on the PR branch; a later head means someone else pushed.
	Commit string `json:"commit"`
	// PromotedIn is the merged PR a removal follows up (0 for promotions and reconcile removals).
	PromotedIn int    `json:"promoted_in,omitempty"`
	By         string `json:"requested_by,omitempty"`
	FromPR     int    `json:"from_pr,omitempty"`
}

// markerPattern finds PR body markers, sealed ("<mac> {...}") or not, so an unsealed one is reported rather
// than silently skipped.
var markerPattern = regexp.MustCompile(`<!-- storagebot:(promotion|removal) (?:([A-Za-z0-9_-]+) )?(\{.*?\}) -->`)

// MarkerKey scopes the server's marker key to one repository's PR body markers and follow-up notes, so a
// marker copied from another repository the App is installed on does not verify. The name is compared
// case-insensitively, as GitHub does; renaming the repository invalidates the markers of open PRs (their
// auto-merge then waits for a person).
func MarkerKey(root seal.Key, repoFullName string) seal.Key {
	return root.For("pr-markers", strings.ToLower(repoFullName))
}

// markerKey is MarkerKey for repo under the service's key.
func (s *Service) markerKey(repo Repo) seal.Key {
	return MarkerKey(s.Seal, repo.Owner+"/"+repo.Name)
}

// sealedPayload is what the MAC covers: the kind and the JSON, so a promotion marker cannot pass as a
// removal one.
func sealedPayload(kind string, data []byte) []byte {
	return append([]byte(kind+" "), data...)
}

// String renders the marker as an HTML comment GitHub does not display, sealed with key (from MarkerKey).
func (m Marker) String(key seal.Key) string {
	data, err := json.Marshal(m)
	if err != nil {
		// A struct of strings and ints always marshals.
		panic(fmt.Sprintf("promotion: marshal marker: %v", err))
	}
	// json.Marshal escapes <, > and & but not "--"; no field the bot writes holds "-->", but escaping keeps
	// the comment intact whatever a branch or login ever holds.
	text := strings.ReplaceAll(string(data), "--", `-\u002d`)
	if mac := key.Sign(sealedPayload(m.Kind, []byte(text))); mac != "" {
		return fmt.Sprintf("<!-- storagebot:%s %s %s -->", m.Kind, mac, text)
	}
	return fmt.Sprintf("<!-- storagebot:%s %s -->", m.Kind, text) // no key: unsealed, trusted by no reader
}

// ParseMarker finds the marker in pr's body and verifies it under key (from MarkerKey). ok is false when there
// is none, it is malformed, or it does not verify; the last is logged with the PR and its author, since only
// an edit (or a forgery) makes a marker the bot wrote stop verifying.
func ParseMarker(ctx context.Context, pr *github.PullRequest, key seal.Key) (Marker, bool) {
	m := markerPattern.FindStringSubmatch(pr.GetBody())
	if m == nil {
		return Marker{}, false
	}
	if !key.Verify(sealedPayload(m[1], []byte(m[3])), m[2]) {
		zerolog.Ctx(ctx).Warn().Int("pr", pr.GetNumber()).Str("pr_author", pr.GetUser().GetLogin()).
			Str("head_ref", pr.GetHead().GetRef()).Time("pr_updated_at", pr.GetUpdatedAt().Time).Bool("unsealed", m[2] == "").
			Msg("tampered: the PR body's storagebot marker does not verify (edited, copied or unsealed), so it counts for nothing")
		return Marker{}, false
	}
	var out Marker
	if err := json.Unmarshal([]byte(m[3]), &out); err != nil {
		return Marker{}, false
	}
	out.Kind = m[1]
	return out, true
}
