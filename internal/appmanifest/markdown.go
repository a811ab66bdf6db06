package appmanifest

import (
	"fmt"
	"strings"
)

// MarkdownTable renders the permissions and events as the README shows them: a table of permissions with
// their access and why, then a table of events. The README's copy is held equal to it by a test, which
// rewrites it with -update.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| permission | access | why |\n|---|---|---|\n")
	for _, p := range Permissions() {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", p.Name, p.Access, cell(p.Why))
	}
	b.WriteString("\n| event | why |\n|---|---|\n")
	for _, e := range Events() {
		why := cell(e.Why)
		if e.Implicit {
			why += " (delivered to every App: not subscribed in the manifest)"
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", e.Name, why)
	}
	return b.String()
}

// cell escapes the one character that would end a markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
