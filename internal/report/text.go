package report

import (
	"fmt"
	"strings"

	"github.com/storagebot/storagebot/policy"
)

// ruleHelp explains each rule of docs/architecture.md §4 to a package author: why it exists, in one or two sentences.
var ruleHelp = map[policy.RuleID]string{
	policy.RuleOverwrite: "A version already in the channel was changed. Released versions are immutable: " +
		"users and caches already hold the old content. Publish the change as a new version instead.",
	policy.RuleRemoval: "A version already in the channel was removed, so the distributions stop serving it. " +
		"Removals belong in the follow-up pull requests storagebot opens after a promotion.",
	policy.RuleVersionOrder: "An added version must be greater than every version of the package on the same " +
		"major.minor line; an older line (a backport) is allowed and noted.",
	policy.RulePromotionSource: "A version enters a higher channel only as an identical copy of a lower channel's: " +
		"what was tested is what ships. Use `/promote <name>@<version>` to copy it exactly.",
	policy.RuleShadowed: "A higher channel already has this version and is served first, so a change here is " +
		"invisible to every distribution.",
	policy.RuleManifest: "Each version needs a `manifest.yml` whose `name` and `version` match its directory " +
		"`packages/<name>/<version>`, with a strict semver version; the registry ignores anything else.",
	policy.RuleDevFiles: "Paths with a segment starting with `_` (such as `_dev`) are development files the " +
		"registry must not serve; build the package without them.",
	policy.RuleRegistryVersion: "The registry version in `Dockerfile` and the `github.com/elastic/package-registry` " +
		"version in `go.mod` must be the same.",
	policy.RuleTitlePrefix: "Pull request titles start with `[<branch>]` so each channel's history reads at a glance.",
	policy.RuleLayout: "The registry serves only plain directories and files under `packages/`: no symlinks, " +
		"submodules or files outside a version directory.",
}

// rulesText explains the rules that produced findings, in the order they first appear.
func rulesText(findings []policy.Finding) string {
	seen := map[policy.RuleID]bool{}
	var b strings.Builder
	for _, f := range findings {
		if seen[f.Rule] {
			continue
		}
		seen[f.Rule] = true
		if b.Len() == 0 {
			b.WriteString("## About these rules\n")
		}
		help, ok := ruleHelp[f.Rule]
		if !ok {
			help = "See the storagebot documentation for this rule."
		}
		fmt.Fprintf(&b, "\n- **%s**: %s", f.Rule, help)
	}
	if b.Len() > 0 {
		b.WriteString("\n\nA rule's severity and whether it allows exceptions are set per channel in " +
			"`.github/storagebot.yml` on the default branch.")
	}
	return cut(b.String(), MaxOutputChars)
}
