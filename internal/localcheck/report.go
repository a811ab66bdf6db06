package localcheck

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// report is the output of one check; its JSON form is the `--format json` contract.
type report struct {
	Channel    string          `json:"channel"`
	Base       string          `json:"base"`
	Head       string          `json:"head"`
	Conclusion string          `json:"conclusion"`
	Changes    []changeReport  `json:"changes"`
	Findings   []findingReport `json:"findings"`
	// Resolved says what each revision and the configuration resolved to, so a wrong revision shows.
	Resolved resolvedReport `json:"resolved"`

	mergeBase string
	// title and markdown are the check run's title and summary (for --format markdown).
	title, markdown string
}

type resolvedReport struct {
	Base      revisionReport            `json:"base"`
	Head      revisionReport            `json:"head"`
	MergeBase string                    `json:"merge_base"`
	Channels  map[string]revisionReport `json:"channels"`
	Config    configReport              `json:"config"`
}

// revisionReport is one revision: as given, the reference it named ("" for a SHA) and its commit.
type revisionReport struct {
	Rev    string `json:"rev"`
	Ref    string `json:"ref"`
	Commit string `json:"commit"`
}

func newRevisionReport(r storage.Revision) revisionReport {
	return revisionReport{Rev: r.Rev, Ref: r.Ref, Commit: r.Commit.SHA}
}

// labeledRevision is a resolved revision with the label the reports print before it.
type labeledRevision struct {
	label string
	revisionReport
}

// namedByRef says whether the revision was given as something other than the reference it resolved
// through, so the reports show that reference too.
func (r labeledRevision) namedByRef() bool { return r.Ref != "" && r.Ref != r.Rev }

// revisions lists the resolved revisions in the order both reports print them — base, head, then the
// channels by name — leaving out those that resolved to no commit.
func (res resolvedReport) revisions() []labeledRevision {
	return append(res.endpoints(), res.channelRevisions()...)
}

// endpoints are the base and head revisions that resolved to a commit.
func (res resolvedReport) endpoints() []labeledRevision {
	return withCommit([]labeledRevision{{"base", res.Base}, {"head", res.Head}})
}

// channelRevisions are the channels' revisions that resolved to a commit, by channel name.
func (res resolvedReport) channelRevisions() []labeledRevision {
	var all []labeledRevision
	for _, name := range res.channelNames() {
		all = append(all, labeledRevision{"channel " + name, res.Channels[name]})
	}
	return withCommit(all)
}

func withCommit(revs []labeledRevision) []labeledRevision {
	var out []labeledRevision
	for _, r := range revs {
		if r.Commit != "" {
			out = append(out, r)
		}
	}
	return out
}

// channelNames are the channels' names, sorted.
func (res resolvedReport) channelNames() []string {
	names := make([]string, 0, len(res.Channels))
	for name := range res.Channels {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// configReport is where the configuration came from: "file" (--config), "revision" (--config-rev), "HEAD" or
// "defaults".
type configReport struct {
	Source   string          `json:"source"`
	Path     string          `json:"path,omitempty"`
	Revision *revisionReport `json:"revision,omitempty"`
}

type changeReport struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Change  string `json:"change"`
}

type findingReport struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Package  string `json:"package"`
	Version  string `json:"version"`
	Path     string `json:"path"`
	Message  string `json:"message"`
}

func newReport(channel string, res storage.Result, findings []policy.Finding) *report {
	rep := &report{
		Channel:    channel,
		Base:       res.Base,
		Head:       res.Head,
		Conclusion: policy.ConclusionSuccess,
		Changes:    []changeReport{},
		Findings:   []findingReport{},
		mergeBase:  res.MergeBase,
	}
	if policy.Conclusion(findings) != policy.ConclusionSuccess {
		rep.Conclusion = policy.ConclusionFailure
	}
	for _, c := range res.Input.Changes {
		rep.Changes = append(rep.Changes, changeReport{Package: c.Package, Version: c.Version, Change: string(c.Kind)})
	}
	for _, f := range findings {
		rep.Findings = append(rep.Findings, findingReport{
			Rule: string(f.Rule), Severity: string(f.Severity), Package: f.Package, Version: f.Version, Path: f.Path, Message: f.Message,
		})
	}
	return rep
}

func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeText prints the changes as an aligned table with a verdict each, then every finding with its message
// (which says how to fix it), then the conclusion.
func writeText(w io.Writer, rep *report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "storagebot check: channel %s, base %s, head %s (merge base %s)\n", rep.Channel, short(rep.Base), short(rep.Head), short(rep.mergeBase))
	writeResolved(&b, rep.Resolved)
	b.WriteString("\n")
	if len(rep.Changes) == 0 {
		b.WriteString("No package versions changed.\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PACKAGE\tVERSION\tCHANGE\tVERDICT")
		for _, c := range rep.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Package, c.Version, c.Change, verdict(rep.Findings, c.Package, c.Version))
		}
		tw.Flush()
	}
	if len(rep.Findings) > 0 {
		b.WriteString("\nFindings:\n")
		for _, f := range rep.Findings {
			subject := f.Package
			if f.Version != "" {
				subject += "@" + f.Version
			}
			if subject == "" {
				subject = "(change)"
			}
			fmt.Fprintf(&b, "  %-7s %-16s %s", f.Severity, f.Rule, subject)
			if f.Path != "" {
				fmt.Fprintf(&b, "  %s", f.Path)
			}
			fmt.Fprintf(&b, "\n          %s\n", strings.ReplaceAll(f.Message, "\n", "\n          "))
		}
	}
	fmt.Fprintf(&b, "\nResult: %s (%s)\n", rep.Conclusion, counts(rep.Findings))
	_, err := io.WriteString(w, b.String())
	return err
}

// verdict is the worst severity of the findings about one version and the rules behind it, or "ok".
func verdict(findings []findingReport, pkg, version string) string {
	rank := map[string]int{string(policy.SeverityError): 3, string(policy.SeverityWarning): 2, string(policy.SeverityNotice): 1}
	worst, rules := "", []string{}
	for _, f := range findings {
		if f.Package != pkg || f.Version != version {
			continue
		}
		if rank[f.Severity] > rank[worst] {
			worst = f.Severity
		}
		if !contains(rules, f.Rule) {
			rules = append(rules, f.Rule)
		}
	}
	if worst == "" {
		return "ok"
	}
	return worst + " (" + strings.Join(rules, ", ") + ")"
}

func counts(findings []findingReport) string {
	n := map[string]int{}
	for _, f := range findings {
		n[f.Severity]++
	}
	return fmt.Sprintf("%d %s, %d %s, %d %s",
		n["error"], plural(n["error"], "error"), n["warning"], plural(n["warning"], "warning"), n["notice"], plural(n["notice"], "notice"))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// short abbreviates a SHA in the CLI's report: 12 characters.
func short(sha string) string { return policy.AbbrevSHA(sha, 12) }

// writeResolved prints which commit each revision resolved to and through which reference, and where the
// configuration came from.
func writeResolved(b *strings.Builder, res resolvedReport) {
	for _, r := range res.revisions() {
		fmt.Fprintf(b, "  %-18s %s = %s", r.label, r.Rev, r.Commit)
		if r.namedByRef() {
			fmt.Fprintf(b, " (%s)", r.Ref)
		}
		b.WriteString("\n")
	}
	switch res.Config.Source {
	case "file":
		fmt.Fprintf(b, "  %-18s %s\n", "config", res.Config.Path)
	case "revision":
		fmt.Fprintf(b, "  %-18s %s at %s = %s\n", "config", res.Config.Path, res.Config.Revision.Rev, res.Config.Revision.Commit)
	case "HEAD":
		fmt.Fprintf(b, "  %-18s %s at HEAD = %s", "config", res.Config.Path, res.Config.Revision.Commit)
		if ref := res.Config.Revision.Ref; ref != "" && ref != "HEAD" {
			fmt.Fprintf(b, " (%s)", ref)
		}
		b.WriteString("\n")
	default:
		fmt.Fprintf(b, "  %-18s built-in defaults\n", "config")
	}
}

// markdownFooter ends a failing markdown report: outside a check run, a push is what runs it again.
const markdownFooter = "Fix the errors above and push again. To see the verdict before pushing, run " +
	"`storagebot check` on your clone (the command is under *Revisions checked*)."

// writeMarkdown prints the report as the check run shows it — a heading with the verdict, the summary with
// the table of changed versions and every finding with how to fix it — then the revisions it resolved and
// the command that reproduces it, folded. It is what the storage-policy Action writes to the job summary.
func writeMarkdown(w io.Writer, rep *report) error {
	var b strings.Builder
	mark := "✅"
	if rep.Conclusion != policy.ConclusionSuccess {
		mark = "❌"
	}
	fmt.Fprintf(&b, "## %s storage-policy: %s\n\n", mark, rep.title)
	b.WriteString(rep.markdown)
	b.WriteString("\n\n<details><summary>Revisions checked</summary>\n\n")
	b.WriteString("| | revision | commit |\n|---|---|---|\n")
	row := func(r labeledRevision) {
		rev := "`" + r.Rev + "`"
		if r.namedByRef() {
			rev += " (`" + r.Ref + "`)"
		}
		fmt.Fprintf(&b, "| %s | %s | `%s` |\n", r.label, rev, r.Commit)
	}
	res := rep.Resolved
	for _, r := range res.endpoints() {
		row(r)
	}
	if res.MergeBase != "" {
		fmt.Fprintf(&b, "| merge base | | `%s` |\n", res.MergeBase)
	}
	for _, r := range res.channelRevisions() {
		row(r)
	}
	switch res.Config.Source {
	case "file":
		fmt.Fprintf(&b, "| config | `%s` | |\n", res.Config.Path)
	case "revision", "HEAD":
		fmt.Fprintf(&b, "| config | `%s` at `%s` | `%s` |\n", res.Config.Path, res.Config.Revision.Rev, res.Config.Revision.Commit)
	default:
		b.WriteString("| config | built-in defaults | |\n")
	}
	cmd := fmt.Sprintf("storagebot check --repo . --channel %s --base %s --head %s", rep.Channel, rep.Base, rep.Head)
	for _, name := range res.channelNames() {
		cmd += fmt.Sprintf(" --ref %s=%s", name, res.Channels[name].Commit)
	}
	if res.Config.Source == "revision" || res.Config.Source == "HEAD" {
		cmd += " --config-rev " + res.Config.Revision.Commit
	}
	fmt.Fprintf(&b, "\nTo reproduce on a clone holding these commits: `%s`\n", cmd)
	b.WriteString("\n</details>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
