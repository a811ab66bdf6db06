package report

import (
	"fmt"
	"sort"
	"strings"

	"github.com/storagebot/storagebot/policy"
)

// versionKey identifies a package version.
type versionKey struct{ pkg, version string }

// line is one line of a summary; finding and row mark what a truncation note counts.
type line struct {
	text    string
	finding bool // a finding's bullet
	row     bool // a row of the changed-versions table
}

// checkRunFooter ends a failing check run's summary: how to run the check again on GitHub.
const checkRunFooter = "Fix the errors above: the check runs again on every push and title edit. Comment `/recheck` to run " +
	"it again, `/help` for every command."

// Summary renders the markdown summary of a change outside a check run (`storagebot check --format
// markdown`, an Actions job summary): the same document as the check run's, ending with footer when the
// check fails, since the way to run it again differs there.
func Summary(in policy.Input, findings []policy.Finding, footer string) string {
	return summary(in, findings, footer)
}

// summary renders the markdown summary: intro, the table of changed versions, the findings grouped by
// version and the exceptions, then footer when the change fails, truncated to MaxOutputChars.
func summary(in policy.Input, findings []policy.Finding, footer string) string {
	changes := sortedChanges(in.Changes)
	byVersion := map[versionKey][]policy.Finding{}
	for _, f := range findings {
		k := versionKey{f.Package, f.Version}
		byVersion[k] = append(byVersion[k], f)
	}

	var out []line
	add := func(s string) { out = append(out, line{text: s}) }
	add(intro(in, len(changes)))

	if len(changes) > 0 {
		add("")
		add("| package | version | change | verdict |")
		add("|---|---|---|---|")
		for _, c := range changes {
			out = append(out, line{row: true, text: fmt.Sprintf("| %s | %s | %s | %s |",
				cell(c.Package), cell(c.Version), c.Kind, verdict(byVersion[versionKey{c.Package, c.Version}]))})
		}
	}

	if len(findings) > 0 {
		add("")
		add("## Findings")
		for _, g := range groups(changes, byVersion) {
			add("")
			add("### " + g.heading)
			for _, f := range sortBySeverity(g.findings) {
				out = append(out, line{finding: true, text: bullet(f)})
			}
		}
	}

	if len(in.Exceptions) > 0 {
		add("")
		add("## Exceptions")
		add("")
		add("| rule | version | granted by | reason | status |")
		add("|---|---|---|---|---|")
		for _, ex := range in.Exceptions {
			add(fmt.Sprintf("| %s | %s@%s | @%s | %s | %s |", cell(string(ex.Rule)), cell(ex.Package), cell(ex.Version),
				cell(ex.By), cell(ex.Reason), exceptionStatus(ex, in.Changes, findings)))
		}
	}

	if policy.Conclusion(findings) == policy.ConclusionFailure && footer != "" {
		add("")
		add(footer)
	}
	return truncate(out, MaxOutputChars)
}

// intro is the summary's first sentence: what was checked against which channel.
func intro(in policy.Input, changes int) string {
	target := "this channel"
	if in.Channel != "" {
		target = fmt.Sprintf("the **%s** channel", in.Channel)
		if in.Branch != "" && in.Branch != in.Channel {
			target += fmt.Sprintf(" (branch `%s`)", in.Branch)
		}
	}
	if changes == 0 {
		return fmt.Sprintf("This change adds, modifies or removes no package version; checked against the rules of %s.", target)
	}
	return fmt.Sprintf("Checked %s against the rules of %s.", plural(changes, "changed version", "changed versions"), target)
}

// verdict is a version's cell in the table: ❌ with any error, ⚠️ with any warning, ✅ otherwise.
func verdict(findings []policy.Finding) string {
	mark := "✅"
	for _, f := range findings {
		switch {
		case f.Severity == policy.SeverityError:
			mark = "❌"
		case f.Severity == policy.SeverityWarning && mark != "❌":
			mark = "⚠️"
		}
	}
	if len(findings) == 0 {
		return mark + " pass"
	}
	var open []policy.Finding
	for _, f := range findings {
		if f.ExceptedBy == nil {
			open = append(open, f)
		}
	}
	counts := countSeverities(open)
	if excepted := len(findings) - len(open); excepted > 0 {
		counts = strings.TrimPrefix(counts+", "+plural(excepted, "excepted", "excepted"), ", ")
	}
	return mark + " " + counts
}

// group is one "### heading" of findings.
type group struct {
	heading  string
	findings []policy.Finding
}

// groups orders the findings for the summary: those about the pull request or repository first, then one
// group per changed version in table order, then versions the change did not touch (e.g. layout problems).
func groups(changes []policy.Change, byVersion map[versionKey][]policy.Finding) []group {
	var out []group
	if fs := byVersion[versionKey{}]; len(fs) > 0 {
		out = append(out, group{heading: "Pull request and repository", findings: fs})
	}
	done := map[versionKey]bool{{}: true}
	for _, c := range changes {
		k := versionKey{c.Package, c.Version}
		if fs := byVersion[k]; len(fs) > 0 && !done[k] {
			done[k] = true
			out = append(out, group{heading: fmt.Sprintf("%s `%s` %s (%s)", mark(fs), c.Package, c.Version, c.Kind), findings: fs})
		}
	}
	var rest []versionKey
	for k := range byVersion {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	sort.Slice(rest, func(i, j int) bool { return lessVersion(rest[i], rest[j]) })
	for _, k := range rest {
		fs := byVersion[k]
		heading := fmt.Sprintf("%s `%s` %s", mark(fs), k.pkg, k.version)
		if k.version == "" {
			heading = fmt.Sprintf("%s `%s`", mark(fs), k.pkg)
		}
		out = append(out, group{heading: heading, findings: fs})
	}
	return out
}

// mark is the verdict emoji alone.
func mark(findings []policy.Finding) string {
	v := verdict(findings)
	return v[:strings.IndexByte(v, ' ')]
}

// severityIcon prefixes a finding's bullet.
func severityIcon(f policy.Finding) string {
	switch {
	case f.ExceptedBy != nil:
		return "☑️"
	case f.Severity == policy.SeverityError:
		return "❌"
	case f.Severity == policy.SeverityWarning:
		return "⚠️"
	default:
		return "ℹ️"
	}
}

// bullet renders one finding: icon, rule, severity, path, then the message (what is wrong, how to fix it).
func bullet(f policy.Finding) string {
	sev := string(f.Severity)
	if f.ExceptedBy != nil {
		sev = "excepted"
	}
	where := ""
	if f.Path != "" {
		where = fmt.Sprintf(" in `%s`", f.Path)
	}
	msg := strings.ReplaceAll(strings.TrimSpace(f.Message), "\n", "\n  ")
	return fmt.Sprintf("- %s **%s** (%s)%s: %s", severityIcon(f), f.Rule, sev, where, msg)
}

// sortBySeverity orders findings errors first, keeping the given order within a severity.
func sortBySeverity(fs []policy.Finding) []policy.Finding {
	rank := map[policy.Severity]int{policy.SeverityError: 0, policy.SeverityWarning: 1, policy.SeverityNotice: 2}
	out := append([]policy.Finding(nil), fs...)
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Severity] < rank[out[j].Severity] })
	return out
}

// exceptionStatus says what became of an exception: applied, lapsed, refused by the channel, or unused.
func exceptionStatus(ex policy.Exception, changes []policy.Change, findings []policy.Finding) string {
	for _, f := range findings {
		if f.ExceptedBy != nil && *f.ExceptedBy == ex {
			return "✅ applied"
		}
	}
	for _, c := range changes {
		if c.Package == ex.Package && c.Version == ex.Version && c.Tree != ex.TreeSHA {
			return "⌛ lapsed: the content changed after it was granted"
		}
	}
	for _, f := range findings {
		if f.Rule == ex.Rule && f.Package == ex.Package && f.Version == ex.Version && f.Severity != policy.SeverityNotice {
			return "⛔ not applied: the rule allows no exceptions in this channel"
		}
	}
	return "unused: no finding of this rule"
}

// sortedChanges orders changes by package, then version (semver order; names that are not semver after
// those that are, alphabetically).
func sortedChanges(changes []policy.Change) []policy.Change {
	out := append([]policy.Change(nil), changes...)
	sort.SliceStable(out, func(i, j int) bool {
		return lessVersion(versionKey{out[i].Package, out[i].Version}, versionKey{out[j].Package, out[j].Version})
	})
	return out
}

func lessVersion(a, b versionKey) bool {
	if a.pkg != b.pkg {
		return a.pkg < b.pkg
	}
	if c, err := policy.CompareVersions(a.version, b.version); err == nil {
		return c < 0
	}
	_, errA := policy.ParseVersion(a.version)
	_, errB := policy.ParseVersion(b.version)
	if (errA == nil) != (errB == nil) {
		return errA == nil
	}
	return a.version < b.version
}

// cell makes text safe inside a markdown table cell: one line, pipes escaped, no HTML (an unclosed "<!--"
// in a reason would hide the rest of the summary).
func cell(s string) string {
	r := strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

// truncate joins lines, and when they exceed limit bytes keeps the lines that fit and ends with a note
// saying how much was left out and where to see it all.
func truncate(lines []line, limit int) string {
	total := 0
	for _, l := range lines {
		total += len(l.text) + 1
	}
	if total-1 <= limit {
		return joinLines(lines)
	}
	const reserve = 600 // room for the note
	var kept []line
	size := 0
	for i, l := range lines {
		if size+len(l.text)+1 > limit-reserve {
			return joinLines(kept) + truncationNote(lines[i:])
		}
		kept = append(kept, l)
		size += len(l.text) + 1
	}
	return joinLines(kept)
}

func joinLines(lines []line) string {
	texts := make([]string, len(lines))
	for i, l := range lines {
		texts[i] = l.text
	}
	return strings.Join(texts, "\n")
}

func truncationNote(omitted []line) string {
	rows, findings := 0, 0
	for _, l := range omitted {
		if l.row {
			rows++
		}
		if l.finding {
			findings++
		}
	}
	var parts []string
	if rows > 0 {
		parts = append(parts, plural(rows, "changed version", "changed versions"))
	}
	if findings > 0 {
		parts = append(parts, plural(findings, "finding", "findings"))
	}
	missing := "the rest of this summary"
	if len(parts) > 0 {
		missing = strings.Join(parts, " and ")
	}
	return fmt.Sprintf("\n\n---\n**Summary truncated** at GitHub's limit of %d characters; not shown: %s. Every finding "+
		"with a file is also an annotation (see *Files changed*), and `storagebot check` prints the full report "+
		"on a clone of the repository.", MaxOutputChars, missing)
}
