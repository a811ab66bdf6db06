package policy

import (
	"fmt"
	"sort"
	"strings"
)

// CheckName is the name of the check run that reports this policy's verdict on a PR head, the one branch
// protection requires.
const CheckName = "storage-policy"

// Check conclusions, as GitHub's check runs spell them.
const (
	ConclusionSuccess = "success"
	ConclusionFailure = "failure"
)

// Conclusion returns the check conclusion for findings: "failure" when any finding is an error, else
// "success".
func Conclusion(findings []Finding) string {
	for _, f := range findings {
		if f.Severity == SeverityError {
			return ConclusionFailure
		}
	}
	return ConclusionSuccess
}

// Evaluate applies rules to the change described by in and returns its findings, sorted by package, version,
// rule and path (PR-level findings, which have no package, first). The same input always gives the same
// output.
//
// in.Channel must be one of in.Channels; a channel missing from the list is evaluated as if it had no
// channel above or below it.
func Evaluate(in Input, rules Rules) []Finding {
	e := newEvaluation(in, rules)
	var out []Finding
	out = append(out, e.titlePrefix()...)
	out = append(out, e.registryVersion()...)
	out = append(out, e.layout()...)
	for _, c := range in.Changes {
		out = append(out, e.applyExceptions(c, e.change(c))...)
	}
	sortFindings(out)
	return out
}

// evaluation holds what every rule needs to know about the channel being changed.
type evaluation struct {
	in    Input
	rules Rules
	// lower and higher list the other channels, nearest first.
	lower, higher []string
}

func newEvaluation(in Input, rules Rules) *evaluation {
	e := &evaluation{in: in, rules: rules}
	for i, ch := range in.Channels {
		if ch != in.Channel {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			e.lower = append(e.lower, in.Channels[j])
		}
		e.higher = append(e.higher, in.Channels[i+1:]...)
		break
	}
	return e
}

// isLowest reports whether the channel is the lowest of several: versions enter there and nothing is below.
func (e *evaluation) isLowest() bool { return len(e.lower) == 0 && len(e.higher) > 0 }

// change runs the per-version rules on one change.
func (e *evaluation) change(c Change) []Finding {
	var out []Finding
	switch c.Kind {
	case Added:
		out = append(out, e.versionOrder(c)...)
		out = append(out, e.promotionSource(c)...)
		out = append(out, e.shadowed(c)...)
		out = append(out, e.manifest(c)...)
		out = append(out, e.devFiles(c)...)
	case Modified:
		out = append(out, e.overwrite(c)...)
		out = append(out, e.shadowed(c)...)
		out = append(out, e.manifest(c)...)
		out = append(out, e.devFiles(c)...)
	case Removed:
		out = append(out, e.removal(c)...)
	}
	return out
}

// finding builds a finding about a change with the rule's configured severity.
func (e *evaluation) finding(rule RuleID, sev Severity, c Change, path, msg string) Finding {
	if path == "" {
		path = versionDir(c.Package, c.Version)
	}
	return Finding{Rule: rule, Severity: sev, Package: c.Package, Version: c.Version, Path: path, Message: msg}
}

// allowHint tells how to ask for an exception, when the rule allows one in this channel.
func (e *evaluation) allowHint(rule RuleID, c Change) string {
	if !e.rules.setting(rule).Exceptions {
		return ""
	}
	return fmt.Sprintf(" If this is deliberate, someone allowed to grant exceptions can comment `/allow %s %s@%s <reason>`.",
		rule, c.Package, c.Version)
}

func (e *evaluation) overwrite(c Change) []Finding {
	s := e.rules.setting(RuleOverwrite)
	if s.Severity == SeverityOff {
		return nil
	}
	msg := fmt.Sprintf("%s@%s already exists in %s and must not change once it is there: users and caches already have "+
		"this content. Revert the changes under %s and publish them as a new version instead (for example %s).%s",
		c.Package, c.Version, e.in.Channel, versionDir(c.Package, c.Version), nextVersion(c.Version), e.allowHint(RuleOverwrite, c))
	return []Finding{e.finding(RuleOverwrite, s.Severity, c, "", msg)}
}

func (e *evaluation) removal(c Change) []Finding {
	s := e.rules.setting(RuleRemoval)
	if s.Severity == SeverityOff {
		return nil
	}
	dir := versionDir(c.Package, c.Version)
	if e.isLowest() {
		for _, h := range e.higher {
			if _, ok := c.Others[h]; ok {
				return nil
			}
		}
		msg := fmt.Sprintf("%s@%s is removed from %s and no higher channel (%s) has it, so it leaves every distribution. "+
			"If that is intended there is nothing to do; to keep it available, promote it first (`/promote %s@%s`) and remove "+
			"it from %s once the promotion is merged.",
			c.Package, c.Version, e.in.Channel, strings.Join(e.higher, ", "), c.Package, c.Version, e.in.Channel)
		return []Finding{e.finding(RuleRemoval, s.Severity, c, dir, msg)}
	}
	var differing []string
	for _, h := range e.higher {
		cp, ok := c.Others[h]
		if ok && cp.Identical {
			return nil // a completed promotion: the identical copy above keeps serving it
		}
		if ok {
			differing = append(differing, h)
		}
	}
	var why string
	switch {
	case len(e.higher) == 0:
		why = fmt.Sprintf("%s is the highest channel: versions released there are never removed, users depend on them", e.in.Channel)
	case len(differing) > 0:
		why = fmt.Sprintf("the copy in %s is not identical, so this is not the clean-up of a completed promotion",
			strings.Join(differing, ", "))
	default:
		why = fmt.Sprintf("no higher channel (%s) has it, so this is not the clean-up of a completed promotion",
			strings.Join(e.higher, ", "))
	}
	msg := fmt.Sprintf("%s@%s is removed from %s, but %s. Restore %s; to replace it, publish a newer version.%s",
		c.Package, c.Version, e.in.Channel, why, dir, e.allowHint(RuleRemoval, c))
	return []Finding{e.finding(RuleRemoval, s.Severity, c, dir, msg)}
}

func (e *evaluation) versionOrder(c Change) []Finding {
	s := e.rules.setting(RuleVersionOrder)
	if s.Severity == SeverityOff {
		return nil
	}
	added, err := ParseVersion(c.Version)
	if err != nil {
		return nil // the manifest rule reports versions that are not strict semver
	}
	var lineMax, overallMax string
	for _, raw := range c.ChannelVersions {
		v, err := ParseVersion(raw)
		if err != nil || raw == c.Version {
			continue // the registry ignores directories that are not strict semver
		}
		if overallMax == "" || compareVersionKeys(raw, overallMax) > 0 {
			overallMax = raw
		}
		if sameLine(v, added) && (lineMax == "" || compareVersionKeys(raw, lineMax) > 0) {
			lineMax = raw
		}
	}
	if lineMax != "" {
		if order, _ := CompareVersions(c.Version, lineMax); order > 0 {
			lineMax = ""
		}
	}
	switch {
	case lineMax != "":
		msg := fmt.Sprintf("%s@%s is added to %s, but %s is already there on the %d.%d line: versions on a line must only "+
			"go up, or users of %s never get this one. Publish it as a version above %s (for example %s).",
			c.Package, c.Version, e.in.Channel, lineMax, added.Major, added.Minor, lineMax, lineMax, nextVersion(lineMax))
		return []Finding{e.finding(RuleVersionOrder, s.Severity, c, "", msg)}
	case overallMax != "" && compareVersionKeys(c.Version, overallMax) < 0:
		msg := fmt.Sprintf("%s@%s is a backport to the %d.%d line: %s is newer and stays the latest version of %s. "+
			"Nothing to fix if that is intended.",
			c.Package, c.Version, added.Major, added.Minor, overallMax, c.Package)
		return []Finding{e.finding(RuleVersionOrder, SeverityNotice, c, "", msg)}
	}
	return nil
}

func (e *evaluation) promotionSource(c Change) []Finding {
	s := e.rules.setting(RulePromotionSource)
	if s.Severity == SeverityOff || len(e.lower) == 0 {
		return nil
	}
	var missing, differing []string
	for _, l := range e.lower {
		cp, ok := c.Others[l]
		switch {
		case ok && cp.Identical:
			return nil
		case ok:
			differing = append(differing, fmt.Sprintf("%s's copy differs (tree %s, this one %s)", l, ShortSHA(cp.TreeSHA), ShortSHA(c.Tree)))
		default:
			missing = append(missing, l)
		}
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "it is missing from "+strings.Join(missing, " and "))
	}
	problems = append(problems, differing...)
	source := e.lower[len(e.lower)-1]
	fix := fmt.Sprintf("Add it to %s first, then promote it with `/promote %s@%s to %s` and close this PR.",
		source, c.Package, c.Version, e.in.Channel)
	if len(differing) > 0 {
		fix = fmt.Sprintf("Promote the reviewed copy with `/promote %s@%s to %s` and close this PR, or make %s exactly "+
			"the same tree as the lower channel's copy (same files, same contents).",
			c.Package, c.Version, e.in.Channel, versionDir(c.Package, c.Version))
	}
	msg := fmt.Sprintf("%s@%s is added to %s but is not an identical copy of the version in a lower channel (%s): %s. "+
		"Versions reach %s only by promotion. %s%s",
		c.Package, c.Version, e.in.Channel, strings.Join(e.lower, ", "), strings.Join(problems, "; "),
		e.in.Channel, fix, e.allowHint(RulePromotionSource, c))
	return []Finding{e.finding(RulePromotionSource, s.Severity, c, "", msg)}
}

func (e *evaluation) shadowed(c Change) []Finding {
	s := e.rules.setting(RuleShadowed)
	if s.Severity == SeverityOff {
		return nil
	}
	// The highest channel holding the version serves it (docs/architecture.md §1: first one found wins, from the top).
	for i := len(e.higher) - 1; i >= 0; i-- {
		h := e.higher[i]
		cp, ok := c.Others[h]
		if !ok {
			continue
		}
		if cp.Identical {
			msg := fmt.Sprintf("%s@%s also exists in %s with identical contents, so %s's copy is served and this one in %s "+
				"is never seen. Nothing to fix.", c.Package, c.Version, h, h, e.in.Channel)
			return []Finding{e.finding(RuleShadowed, SeverityNotice, c, "", msg)}
		}
		msg := fmt.Sprintf("%s@%s already exists in %s with different contents, so this change is invisible: served from %s. "+
			"Publish the change as a new version (for example %s) instead of changing %s in %s.%s",
			c.Package, c.Version, h, h, nextVersion(c.Version), c.Version, e.in.Channel, e.allowHint(RuleShadowed, c))
		return []Finding{e.finding(RuleShadowed, s.Severity, c, "", msg)}
	}
	return nil
}

func (e *evaluation) manifest(c Change) []Finding {
	s := e.rules.setting(RuleManifest)
	if s.Severity == SeverityOff {
		return nil
	}
	dir := versionDir(c.Package, c.Version)
	var out []Finding
	if _, err := ParseVersion(c.Version); err != nil {
		out = append(out, e.finding(RuleManifest, s.Severity, c, dir, fmt.Sprintf(
			"%s is not a strict semantic version directory (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], no \"v\" prefix, "+
				"e.g. 1.0.0), so the registry ignores it. Rename the directory to the package's version.", dir)))
	}
	path := c.Manifest.Path
	if path == "" {
		path = dir + "/manifest.yml"
	}
	if !c.Manifest.Present {
		out = append(out, e.finding(RuleManifest, s.Severity, c, dir, fmt.Sprintf(
			"%s has no manifest.yml, so the registry cannot serve it. Add %s with `name: %s` and `version: %s`.",
			dir, path, c.Package, c.Version)))
		return out
	}
	m, err := ReadManifest(c.Manifest.Data)
	if err != nil {
		out = append(out, e.finding(RuleManifest, s.Severity, c, path, fmt.Sprintf(
			"%s cannot be read: %v. Fix it so it is a YAML mapping with `name: %s` and `version: %s`.",
			path, err, c.Package, c.Version)))
		return out
	}
	if m.Name != c.Package {
		out = append(out, e.finding(RuleManifest, s.Severity, c, path, fmt.Sprintf(
			"%s says `name: %s` but the version is stored under packages/%s/. Set `name: %s`, or move the version to %s.",
			path, m.Name, c.Package, c.Package, versionDir(m.Name, c.Version))))
	}
	if m.Version != c.Version {
		out = append(out, e.finding(RuleManifest, s.Severity, c, path, fmt.Sprintf(
			"%s says `version: %s` but the version is stored under %s/. Set `version: %s`, or move it to %s.",
			path, m.Version, dir, c.Version, versionDir(c.Package, m.Version))))
	}
	return out
}

func (e *evaluation) devFiles(c Change) []Finding {
	s := e.rules.setting(RuleDevFiles)
	if s.Severity == SeverityOff {
		return nil
	}
	type group struct {
		dir   string
		first string
		count int
	}
	var groups []*group
	byDir := map[string]*group{}
	for _, p := range c.Paths {
		dir, ok := devPrefix(p)
		if !ok {
			continue
		}
		g := byDir[dir]
		if g == nil {
			g = &group{dir: dir, first: p}
			byDir[dir] = g
			groups = append(groups, g)
		}
		g.count++
	}
	var out []Finding
	for _, g := range groups {
		what := g.dir
		if g.dir != g.first {
			what = fmt.Sprintf("%s (%d files, e.g. %s)", g.dir, g.count, g.first)
		}
		out = append(out, e.finding(RuleDevFiles, s.Severity, c, g.first, fmt.Sprintf(
			"%s is a development file: paths starting with \"_\" (like _dev) are for building packages, not for the "+
				"registry. Remove %s from the change and publish the built package.", what, g.dir)))
	}
	return out
}

// devPrefix returns the path up to and including the first segment below packages/ that starts with "_".
func devPrefix(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "packages/")
	if !ok {
		return "", false
	}
	segs := strings.Split(rest, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "_") {
			return "packages/" + strings.Join(segs[:i+1], "/"), true
		}
	}
	return "", false
}

func (e *evaluation) registryVersion() []Finding {
	s := e.rules.setting(RuleRegistryVersion)
	if s.Severity == SeverityOff || !e.in.Registry.Touched {
		return nil
	}
	dv, ok := DockerfileRegistryVersion(e.in.Registry.Dockerfile)
	if !ok {
		return nil
	}
	gv, ok := GoModRegistryVersion(e.in.Registry.GoMod)
	if !ok || sameRegistryVersion(dv, gv) {
		return nil
	}
	return []Finding{{
		Rule: RuleRegistryVersion, Severity: s.Severity, Path: "Dockerfile",
		Message: fmt.Sprintf("Dockerfile builds on package-registry %s but go.mod requires %s %s: the tests must run "+
			"against the registry that serves the packages. Change one of them so Dockerfile and go.mod name the same version.",
			dv, registryModule, gv),
	}}
}

func (e *evaluation) titlePrefix() []Finding {
	s := e.rules.setting(RuleTitlePrefix)
	if s.Severity == SeverityOff || e.in.Title == nil {
		return nil
	}
	title := *e.in.Title
	prefix := "[" + e.in.Branch + "]"
	if strings.HasPrefix(title, prefix) {
		return nil
	}
	fixed := prefix + " " + strings.TrimSpace(title)
	if e.in.FixTitles {
		return []Finding{{Rule: RuleTitlePrefix, Severity: SeverityNotice, Message: fmt.Sprintf(
			"The PR title does not start with %q; storagebot renames it to %q.", prefix, fixed)}}
	}
	return []Finding{{Rule: RuleTitlePrefix, Severity: s.Severity, Message: fmt.Sprintf(
		"The PR title %q must start with %q, the branch it targets, so each channel's history says where a change "+
			"went. Edit the title to %q.", title, prefix, fixed)}}
}

func (e *evaluation) layout() []Finding {
	s := e.rules.setting(RuleLayout)
	if s.Severity == SeverityOff {
		return nil
	}
	var out []Finding
	for _, lp := range e.in.Layout {
		var what string
		switch lp.Kind {
		case "symlink":
			what = "is a symbolic link, which the registry does not follow. Replace it with a copy of the file it points to"
		case "submodule":
			what = "is a git submodule, whose contents are not in this repository. Replace it with the files themselves"
		case "not-a-directory":
			what = "is a file where the storage layout expects a directory (packages/<name>/<version>/…). Move or remove it"
		default:
			what = fmt.Sprintf("is not servable (%s). Replace it with regular files and directories", lp.Kind)
		}
		out = append(out, Finding{Rule: RuleLayout, Severity: s.Severity, Package: lp.Package, Version: lp.Version,
			Path: lp.Path, Message: fmt.Sprintf("%s %s.", lp.Path, what)})
	}
	return out
}

// applyExceptions turns findings of rules that allow exceptions into notices when an exception granted for
// the same rule, package and version binds to the change's current tree; an exception granted for an older
// tree has lapsed and the finding says so.
func (e *evaluation) applyExceptions(c Change, findings []Finding) []Finding {
	for i := range findings {
		f := &findings[i]
		if f.Severity == SeverityNotice {
			continue
		}
		var current, lapsed *Exception
		for j := range e.in.Exceptions {
			ex := e.in.Exceptions[j]
			if ex.Rule != f.Rule || ex.Package != c.Package || ex.Version != c.Version {
				continue
			}
			if ex.TreeSHA == c.Tree {
				current = &ex
				break
			}
			if lapsed == nil {
				lapsed = &ex
			}
		}
		switch {
		case current == nil && lapsed == nil:
		case !e.rules.setting(f.Rule).Exceptions:
			ex := current
			if ex == nil {
				ex = lapsed
			}
			f.Message += fmt.Sprintf(" The exception granted by @%s does not apply: %s allows no exceptions in %s.",
				ex.By, f.Rule, e.in.Channel)
		case current != nil:
			f.Severity = SeverityNotice
			f.ExceptedBy = current
			f.Message += fmt.Sprintf(" Allowed by @%s: %s", current.By, current.Reason)
		default:
			f.Message += fmt.Sprintf(" The exception granted by @%s lapsed because the content changed after it was "+
				"granted (tree %s then, %s now); review the new content and grant it again with `/allow %s %s@%s <reason>`.",
				lapsed.By, ShortSHA(lapsed.TreeSHA), ShortSHA(c.Tree), f.Rule, c.Package, c.Version)
		}
	}
	return findings
}

// sortFindings orders findings by package, version (semver order), rule and path, then message, so the
// order never depends on the input's order.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if c := compareVersionKeys(a.Version, b.Version); c != 0 {
			return c < 0
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Message < b.Message
	})
}

// versionDir is the repository path of a package version.
func versionDir(pkg, version string) string {
	return "packages/" + pkg + "/" + version
}

// nextVersion suggests the next patch release after version, or "a higher version" when version is not
// strict semver.
func nextVersion(version string) string {
	v, err := ParseVersion(version)
	if err != nil {
		return "a higher version"
	}
	next := v.NextPatch()
	return next.String()
}

// ShortSHA abbreviates a commit or tree SHA the way git and GitHub show it (7 characters), for every message a
// person reads; "none" for no SHA.
func ShortSHA(sha string) string {
	if sha == "" {
		return "none"
	}
	return AbbrevSHA(sha, 7)
}

// AbbrevSHA is sha cut to its first n characters (whole when shorter), for output that wants more of it than
// ShortSHA gives (storagebot check prints 12, enough to paste into git commands on a large repository).
func AbbrevSHA(sha string, n int) string {
	if len(sha) > n {
		return sha[:n]
	}
	return sha
}
