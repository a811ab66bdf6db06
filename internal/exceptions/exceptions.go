// Package exceptions stores the exceptions granted with /allow where the bot keeps all its state: on GitHub.
// Each /allow reply the bot posts carries a hidden marker with the exceptions it recorded, sealed with a MAC
// only the server can compute (see internal/seal) and bound to the pull request it was granted on. The check
// reads them back from the PR's comments written by the bot itself. Anyone with write access can edit any
// comment, the bot's included, so a marker that does not verify (edited, copied from another PR, or written
// before markers were sealed) counts for nothing and is logged; so does one in someone else's comment.
//
// It is a package of its own, small as it is, because it has two users that must agree on the format: the
// command executor writes the marker (/allow) and the check service reads it back.
package exceptions

import (
	"context"
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/policy"
)

const markerPrefix = "<!-- storagebot:exceptions "

// markerRE finds exceptions markers, sealed ("<mac> [...]") or not ("[...]": forged, or from before markers
// were sealed), so that an unsealed one is reported rather than silently skipped.
var markerRE = regexp.MustCompile(`<!-- storagebot:exceptions (?:([A-Za-z0-9_-]+) )?(\[.*?\]) -->`)

// Key scopes the server's marker key to the exceptions of one pull request: a sealed marker copied into a
// bot comment on another pull request or repository does not verify there. The repository name is
// compared case-insensitively, as GitHub does; renaming the repository invalidates earlier grants.
func Key(root seal.Key, repoFullName string, number int) seal.Key {
	return root.For("exceptions", strings.ToLower(repoFullName), "#"+strconv.Itoa(number))
}

// Marker renders exceptions as a hidden HTML comment to append to the bot's reply, sealed with key (from
// Key). "--" is escaped in the JSON so a reason cannot end the comment early.
func Marker(exs []policy.Exception, key seal.Key) string {
	if len(exs) == 0 {
		return ""
	}
	b, _ := json.Marshal(exs) // plain strings only: cannot fail
	payload := strings.ReplaceAll(string(b), "--", `-\u002d`)
	if mac := key.Sign([]byte(payload)); mac != "" {
		return markerPrefix + mac + " " + payload + " -->"
	}
	return markerPrefix + payload + " -->" // no key: an unsealed marker, which no reader trusts

}

// FromComments collects the exceptions recorded in comments written by botLogin whose marker verifies under
// key (from Key), in comment order, the latest grant for the same rule, version and tree replacing earlier
// ones. Markers that do not verify are logged with the comment's id, author and last edit, and ignored.
func FromComments(ctx context.Context, comments []*github.IssueComment, botLogin string, key seal.Key) []policy.Exception {
	type grantKey struct {
		rule              policy.RuleID
		pkg, ver, treeSHA string
	}
	log := zerolog.Ctx(ctx)
	latest := map[grantKey]policy.Exception{}
	var order []grantKey
	for _, c := range comments {
		ms := markerRE.FindAllStringSubmatch(c.GetBody(), -1)
		if len(ms) == 0 {
			continue
		}
		if botLogin == "" || !strings.EqualFold(c.GetUser().GetLogin(), botLogin) {
			log.Warn().Int64("comment_id", c.GetID()).Str("comment_author", c.GetUser().GetLogin()).
				Msg("exceptions marker in a comment the bot did not write: ignored (only the bot records exceptions)")
			continue
		}
		for _, m := range ms {
			if !key.Verify([]byte(m[2]), m[1]) {
				log.Warn().Int64("comment_id", c.GetID()).Str("comment_author", c.GetUser().GetLogin()).
					Time("comment_updated_at", c.GetUpdatedAt().Time).Bool("unsealed", m[1] == "").
					Msg("tampered: exceptions marker does not verify (edited, copied or unsealed), so its exceptions count for nothing")
				continue
			}
			var exs []policy.Exception
			if err := json.Unmarshal([]byte(m[2]), &exs); err != nil {
				continue // cannot happen for a payload the server sealed; nothing to grant either way
			}
			for _, e := range exs {
				k := grantKey{e.Rule, e.Package, e.Version, e.TreeSHA}
				if _, seen := latest[k]; !seen {
					order = append(order, k)
				}
				latest[k] = e
			}
		}
	}
	out := make([]policy.Exception, 0, len(order))
	for _, k := range order {
		out = append(out, latest[k])
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Package != out[j].Package {
			return out[i].Package < out[j].Package
		}
		return out[i].Version < out[j].Version
	})
	return out
}
