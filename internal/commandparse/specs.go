// Package commandparse parses the slash commands people write in issue and pull-request comments.
//
// There is one parser (Parse) and one list of commands (Specs); the /help reply is generated from that list,
// so usage and help are never written twice. A command starts a line (leading spaces allowed), several may
// appear in one comment, and lines in fenced code blocks, block quotes and HTML comments are ignored, so
// quoting an earlier command or a PR template's example never runs it. Parsing is purely syntactic: whether
// a channel or rule exists, and whether the commenter may run the command, is for the caller to decide.
package commandparse

import (
	"fmt"
	"strings"
)

// Name is a command's name as written after the slash. Names are case-sensitive.
type Name string

// The commands storagebot understands.
const (
	Promote Name = "promote"
	Allow   Name = "allow"
	Recheck Name = "recheck"
	Rebuild Name = "rebuild"
	Help    Name = "help"
)

// Spec describes one command: its name, how to write it and what it does.
type Spec struct {
	Name Name
	// Usage is the command's syntax, e.g. "/rebuild [<channel>]".
	Usage string
	// Help says in one or two sentences what the command does.
	Help string
	// Unavailable marks a command that is recognised but not built yet: /help leaves it out, and running it
	// gets a "not available yet" reply rather than a silent no-op. Building it only clears the flag.
	Unavailable bool
}

// Specs returns every command in the order /help lists them. It is the one list of commands: the parser
// recognises exactly these names and HelpText is generated from it.
func Specs() []Spec {
	return []Spec{
		{
			Name:  Promote,
			Usage: "/promote [<name>@<version> …] [to <channel>]",
			Help: "Open a pull request copying the versions to the next channel (or to `<channel>`). " +
				"`<name>-<version>` works too. With no versions, on a merged pull request, promotes what it added.",
		},
		{
			Name:  Allow,
			Usage: "/allow <rule> <name>@<version>|<name>@*|* <reason>",
			Help: "Grant an exception to `<rule>` for a version (`<name>@*`: every version of the package this " +
				"pull request touches; `*`: every version it touches). Bound to the version's current content: " +
				"it lapses when the content changes. The reason is required and shown in the check.",
		},
		{
			Name:  Recheck,
			Usage: "/recheck",
			Help:  "Run the `storage-policy` check again on the pull request's head.",
		},
		{
			Name:  Rebuild,
			Usage: "/rebuild [<distribution>]",
			Help:  "Build and roll out `<distribution>` again (default: the one built from the pull request's branch), then its dependents; retries a failed build or rollout.",
		},
		{
			Name:  Help,
			Usage: "/help",
			Help:  "Show this list.",
		},
	}
}

// SpecFor returns the spec of the command called name.
func SpecFor(name Name) (Spec, bool) {
	for _, s := range Specs() {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// HelpText returns the markdown reply to /help (and to malformed commands), generated from Specs. Commands
// not available yet are left out.
func HelpText() string {
	var b strings.Builder
	b.WriteString("**storagebot commands** — write each at the start of its own line; several may share a comment. ")
	b.WriteString("Lines in code blocks and quotes are ignored.\n\n")
	for _, s := range Specs() {
		if s.Unavailable {
			continue
		}
		fmt.Fprintf(&b, "- `%s` — %s\n", s.Usage, s.Help)
	}
	fmt.Fprintf(&b, "\nVersions are strict semver (`1.2.3`, `8.1.0-beta.1`); at most %d commands per comment.\n", MaxCommands)
	return b.String()
}
