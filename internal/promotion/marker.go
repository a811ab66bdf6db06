package promotion

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/storagebot/storagebot/internal/commands"
)

// maxKeyLength bounds the readable branch key; longer version lists are keyed by a hash prefix.
const maxKeyLength = 100

// branchKey derives a branch-name key from a version list deterministically: "foo-1.2.3_bar-2.0.0" in sorted
// order, or "sha256-<16 hex>" of that text when it is longer than maxKeyLength (or holds characters a ref
// name may not).
func branchKey(versions []commands.VersionRef) string {
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
// (or another replica) knows what the PR is without re-deriving it.
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

var markerPattern = regexp.MustCompile(`<!-- storagebot:(promotion|removal) (\{.*?\}) -->`)

// String renders the marker as an HTML comment GitHub does not display.
func (m Marker) String() string {
	data, err := json.Marshal(m)
	if err != nil {
		// A struct of strings and ints always marshals.
		panic(fmt.Sprintf("promotion: marshal marker: %v", err))
	}
	return fmt.Sprintf("<!-- storagebot:%s %s -->", m.Kind, data)
}

// ParseMarker finds the marker in a PR body; ok is false when there is none or it is malformed.
func ParseMarker(body string) (Marker, bool) {
	m := markerPattern.FindStringSubmatch(body)
	if m == nil {
		return Marker{}, false
	}
	var out Marker
	if err := json.Unmarshal([]byte(m[2]), &out); err != nil {
		return Marker{}, false
	}
	out.Kind = m[1]
	return out, true
}
