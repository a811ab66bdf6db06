// Package exceptions stores the exceptions granted with /allow where the bot keeps all its state: on GitHub.
// Each /allow reply the bot posts carries a hidden marker with the exceptions it recorded; the check reads
// them back from the PR's comments written by the bot itself, so nothing lives only in a process and a
// forged marker in someone else's comment counts for nothing.
package exceptions

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/policy"
)

const markerPrefix = "<!-- storagebot:exceptions "

var markerRE = regexp.MustCompile(`<!-- storagebot:exceptions (\[.*?\]) -->`)

// Marker renders exceptions as a hidden HTML comment to append to the bot's reply. "--" is escaped in the
// JSON so a reason cannot end the comment early.
func Marker(exs []policy.Exception) string {
	if len(exs) == 0 {
		return ""
	}
	b, _ := json.Marshal(exs) // plain strings only: cannot fail
	return markerPrefix + strings.ReplaceAll(string(b), "--", `-\u002d`) + " -->"
}

// FromComments collects the exceptions recorded in comments written by botLogin, in comment order, the
// latest grant for the same rule, version and tree replacing earlier ones.
func FromComments(comments []*github.IssueComment, botLogin string) []policy.Exception {
	type key struct {
		rule              policy.RuleID
		pkg, ver, treeSHA string
	}
	latest := map[key]policy.Exception{}
	var order []key
	for _, c := range comments {
		if botLogin == "" || !strings.EqualFold(c.GetUser().GetLogin(), botLogin) {
			continue
		}
		for _, m := range markerRE.FindAllStringSubmatch(c.GetBody(), -1) {
			var exs []policy.Exception
			if err := json.Unmarshal([]byte(m[1]), &exs); err != nil {
				continue // not ours to interpret: a marker the bot wrote always parses
			}
			for _, e := range exs {
				k := key{e.Rule, e.Package, e.Version, e.TreeSHA}
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
