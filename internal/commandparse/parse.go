package commandparse

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/storagebot/storagebot/policy"
)

// MaxCommands is the most commands one comment may hold; more is refused as a whole (ErrTooMany) rather than
// running a long, probably pasted, list.
const MaxCommands = 20

// ErrTooMany is returned by Parse when a comment holds more than MaxCommands commands. None of them should run.
var ErrTooMany = fmt.Errorf("more than %d commands in one comment; split them over several comments", MaxCommands)

// Wildcard is the Package or Version of a VersionRef that matches every package or version (/allow only).
const Wildcard = "*"

// ParseError says which token of a command line is malformed and why, in words meant for the commenter.
type ParseError struct {
	// Token is the offending token exactly as written; "" when something is missing rather than wrong.
	Token string
	// Reason says what is wrong and what to write instead.
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string {
	if e.Token == "" {
		return e.Reason
	}
	return fmt.Sprintf("%q: %s", e.Token, e.Reason)
}

// VersionRef names one package version. For /allow, Version may be Wildcard (every version of Package the
// pull request touches) and Package may be Wildcard too (every version it touches).
type VersionRef struct {
	Package string
	Version string
}

// String returns the reference as it is written canonically: "<name>@<version>", or "*" for every version.
func (v VersionRef) String() string {
	if v.Package == Wildcard {
		return Wildcard
	}
	return v.Package + "@" + v.Version
}

// Command is one slash command found in a comment.
type Command struct {
	Name Name
	// Line is the 1-based line of the comment the command is on.
	Line int
	// Raw is that line without its surrounding spaces and tabs, for quoting in replies.
	Raw string
	// Versions lists the versions of /promote (in order, without duplicates) or the single target of /allow.
	Versions []VersionRef
	// Target is the channel of "/promote … to <channel>" or "/rebuild <channel>"; "" means the default.
	Target string
	// Rule and Reason are the rule excepted by /allow and why (the rest of the line).
	Rule   string
	Reason string
	// Err is set (to a *ParseError) when the line starts with a known command but is malformed, or with a
	// word that merely begins with one ("/promotes"). The other fields are then incomplete: do not run the
	// command; reply with Err and HelpText instead.
	Err error
}

// commandLine matches a line that starts, after optional spaces and tabs, with a slash and a word. The word
// runs to the next space or tab, so "/promote\u00a0foo" keeps the non-breaking space in the word.
var commandLine = regexp.MustCompile(`^[ \t]*/([^ \t]+)`)

// nameRE is what package and channel names may hold: lowercase ASCII letters, digits, "_" and "-".
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// ruleRE is what rule names (docs/architecture.md §4: "overwrite", "version-order", …) may hold.
var ruleRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Parse returns the commands in a comment body, in the order they appear. Lines inside fenced code blocks
// (``` or ~~~), block quotes (">") and HTML comments are skipped. A line that starts with a known command but
// is malformed yields a Command with Err set; a slash word that is no command ("/shrug") is ignored. More than
// MaxCommands commands returns ErrTooMany and no commands.
func Parse(body string) (cmds []Command, err error) {
	var s lineState
	for i, line := range strings.Split(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if !s.visible(line) {
			continue
		}
		cmd, ok := parseLine(line)
		if !ok {
			continue
		}
		if len(cmds) == MaxCommands {
			return nil, ErrTooMany
		}
		cmd.Line = i + 1
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}

// lineState follows the markdown constructs whose lines are not commands: fenced code blocks and HTML comments.
type lineState struct {
	fence       string // the opening fence ("```", "~~~~", …) while inside a fenced block
	htmlComment bool   // inside <!-- … --> spanning lines
}

// visible reports whether line is prose a command may start, and advances the state past it.
func (s *lineState) visible(line string) bool {
	trimmed := strings.TrimLeft(line, " \t")
	if s.fence != "" {
		if closesFence(trimmed, s.fence) {
			s.fence = ""
		}
		return false
	}
	if s.htmlComment {
		if end := strings.Index(line, "-->"); end >= 0 {
			s.htmlComment = opensHTMLComment(line[end+3:])
		}
		return false
	}
	if f := openingFence(trimmed); f != "" {
		s.fence = f
		return false
	}
	s.htmlComment = opensHTMLComment(line)
	return !strings.HasPrefix(trimmed, ">")
}

// openingFence returns the fence a line opens (three or more backticks or tildes), or "".
func openingFence(trimmed string) string {
	for _, c := range []byte{'`', '~'} {
		n := 0
		for n < len(trimmed) && trimmed[n] == c {
			n++
		}
		// A backtick fence's info string holds no backtick: "```x```" on its own line is inline code.
		if n >= 3 && !(c == '`' && strings.ContainsRune(trimmed[n:], '`')) {
			return trimmed[:n]
		}
	}
	return ""
}

// closesFence reports whether a line closes the block opened by fence: the same character, at least as many
// times, and nothing else but spaces (CommonMark).
func closesFence(trimmed, fence string) bool {
	rest := strings.TrimLeft(trimmed, fence[:1])
	return len(trimmed)-len(rest) >= len(fence) && strings.Trim(rest, " \t") == ""
}

// opensHTMLComment reports whether s leaves an HTML comment open at its end.
func opensHTMLComment(s string) bool {
	for {
		start := strings.Index(s, "<!--")
		if start < 0 {
			return false
		}
		end := strings.Index(s[start+4:], "-->")
		if end < 0 {
			return true
		}
		s = s[start+4+end+3:]
	}
}

// token is one space- or tab-separated word of a line and the byte offset where it starts.
type token struct {
	text  string
	start int
}

// tokens splits s at spaces and tabs only: any other character, Unicode spaces included, belongs to a token.
func tokens(s string) []token {
	var out []token
	start := -1
	for i := 0; i <= len(s); i++ {
		sep := i == len(s) || s[i] == ' ' || s[i] == '\t'
		switch {
		case sep && start >= 0:
			out = append(out, token{text: s[start:i], start: start})
			start = -1
		case !sep && start < 0:
			start = i
		}
	}
	return out
}

// parseLine parses one visible line; ok is false when the line is no command at all.
func parseLine(line string) (cmd Command, ok bool) {
	m := commandLine.FindStringSubmatchIndex(line)
	if m == nil {
		return Command{}, false
	}
	word := line[m[2]:m[3]]
	cmd.Raw = strings.Trim(line, " \t")
	name, known := lookup(word)
	if name == "" {
		return Command{}, false
	}
	cmd.Name = name
	if !known {
		cmd.Err = unknownWord(word, name)
		return cmd, true
	}
	rest := line[m[1]:]
	args := tokens(rest)
	switch name {
	case Promote:
		cmd.Err = parsePromote(&cmd, args)
	case Allow:
		cmd.Err = parseAllow(&cmd, rest, args)
	case Rebuild:
		cmd.Err = parseRebuild(&cmd, args)
	case Recheck, Help:
		if len(args) > 0 {
			cmd.Err = &ParseError{Token: args[0].text, Reason: fmt.Sprintf("/%s takes no arguments", name)}
		}
	}
	return cmd, true
}

// lookup finds the command a slash word names. known is true for an exact name; otherwise name is the longest
// command the word begins with (or imitates with look-alike characters), or "" when it resembles none.
func lookup(word string) (name Name, known bool) {
	for _, s := range Specs() {
		if word == string(s.Name) {
			return s.Name, true
		}
	}
	for _, s := range Specs() {
		if (strings.HasPrefix(word, string(s.Name)) || imitates(word, string(s.Name))) && len(s.Name) > len(name) {
			name = s.Name
		}
	}
	return name, false
}

// imitates reports whether word begins with name spelled with some non-ASCII look-alikes ("promоte" with a
// Cyrillic "о"): same length in characters, every ASCII character in place, at least one non-ASCII.
func imitates(word, name string) bool {
	wr := []rune(word)
	if len(wr) < len(name) {
		return false
	}
	lookalike := false
	for i := 0; i < len(name); i++ {
		switch {
		case wr[i] == rune(name[i]):
		case wr[i] >= utf8.RuneSelf:
			lookalike = true
		default:
			return false
		}
	}
	return lookalike
}

// unknownWord explains why a slash word that resembles a command is none.
func unknownWord(word string, like Name) error {
	if r, ok := firstNonASCII(word); ok {
		return &ParseError{Token: "/" + word, Reason: nonASCII(r) + "; did you mean /" + string(like) + "?"}
	}
	return &ParseError{Token: "/" + word, Reason: "unknown command; did you mean /" + string(like) + "?"}
}

func parsePromote(cmd *Command, args []token) error {
	seen := map[VersionRef]bool{}
	for i, a := range args {
		if a.text == "to" {
			if i+1 == len(args) {
				return &ParseError{Token: "to", Reason: "needs a channel: /promote … to <channel>"}
			}
			if err := checkChannel(args[i+1].text); err != nil {
				return err
			}
			if i+2 < len(args) {
				return &ParseError{Token: args[i+2].text, Reason: `unexpected after "to <channel>", which ends the command`}
			}
			cmd.Target = args[i+1].text
			return nil
		}
		ref, err := parseVersionRef(a.text, false)
		if err != nil {
			return err
		}
		if !seen[ref] {
			seen[ref] = true
			cmd.Versions = append(cmd.Versions, ref)
		}
	}
	return nil
}

func parseAllow(cmd *Command, rest string, args []token) error {
	const usage = "usage: /allow <rule> <name>@<version>|<name>@*|* <reason>"
	if len(args) == 0 {
		return &ParseError{Reason: "missing the rule to allow; " + usage}
	}
	rule := args[0].text
	if r, ok := firstNonASCII(rule); ok {
		return &ParseError{Token: rule, Reason: nonASCII(r)}
	}
	if !ruleRE.MatchString(rule) {
		return &ParseError{Token: rule, Reason: "is not a rule name (e.g. overwrite, removal); " + usage}
	}
	cmd.Rule = rule
	if len(args) == 1 {
		return &ParseError{Reason: "missing the version to allow; " + usage}
	}
	ref, err := parseVersionRef(args[1].text, true)
	if err != nil {
		return err
	}
	cmd.Versions = []VersionRef{ref}
	if len(args) == 2 {
		return &ParseError{Reason: "missing the reason, which the check shows beside the exception; " + usage}
	}
	cmd.Reason = strings.Trim(rest[args[2].start:], " \t")
	return nil
}

func parseRebuild(cmd *Command, args []token) error {
	if len(args) == 0 {
		return nil
	}
	if err := checkChannel(args[0].text); err != nil {
		return err
	}
	if len(args) > 1 {
		return &ParseError{Token: args[1].text, Reason: "unexpected: /rebuild takes at most one channel"}
	}
	cmd.Target = args[0].text
	return nil
}

func checkChannel(ch string) error {
	if r, ok := firstNonASCII(ch); ok {
		return &ParseError{Token: ch, Reason: nonASCII(r)}
	}
	if !nameRE.MatchString(ch) {
		return &ParseError{Token: ch, Reason: "is not a channel name (lowercase letters, digits, _ and -)"}
	}
	return nil
}

// parseVersionRef parses "<name>@<version>" or "<name>-<version>"; with wildcards, also "<name>@*" and "*".
func parseVersionRef(tok string, wildcards bool) (VersionRef, error) {
	if wildcards && tok == Wildcard {
		return VersionRef{Package: Wildcard, Version: Wildcard}, nil
	}
	if r, ok := firstNonASCII(tok); ok {
		return VersionRef{}, &ParseError{Token: tok, Reason: nonASCII(r)}
	}
	name, version, ok := strings.Cut(tok, "@")
	if !ok {
		name, version, ok = splitNameVersion(tok)
		if !ok {
			return VersionRef{}, &ParseError{Token: tok, Reason: "is not <name>@<version> or <name>-<version> with a strict semver version (e.g. foo@1.2.3)"}
		}
	}
	if !nameRE.MatchString(name) {
		return VersionRef{}, &ParseError{Token: tok, Reason: fmt.Sprintf("package name %q may hold only lowercase letters, digits, _ and -", name)}
	}
	if wildcards && version == Wildcard {
		return VersionRef{Package: name, Version: Wildcard}, nil
	}
	if err := policy.StrictVersionError(version); err != nil {
		return VersionRef{}, &ParseError{Token: tok, Reason: fmt.Sprintf("version %q is not strict semver (major.minor.patch, e.g. 1.2.3 or 8.1.0-beta.1): %v", version, err)}
	}
	return VersionRef{Package: name, Version: version}, nil
}

// splitNameVersion splits "elastic-agent-1.2.3" at the first "-" followed by a digit that begins a strict
// semver version for the rest of the token, since package names hold dashes too.
func splitNameVersion(tok string) (name, version string, ok bool) {
	for i := 0; i+1 < len(tok); i++ {
		if tok[i] != '-' || tok[i+1] < '0' || tok[i+1] > '9' {
			continue
		}
		if policy.IsStrictVersion(tok[i+1:]) {
			return tok[:i], tok[i+1:], true
		}
	}
	return "", "", false
}

// firstNonASCII returns the first non-ASCII character of s: look-alike letters, fullwidth digits and
// non-breaking spaces all make a token that only looks right.
func firstNonASCII(s string) (rune, bool) {
	for _, r := range s {
		if r >= utf8.RuneSelf {
			return r, true
		}
	}
	return 0, false
}

func nonASCII(r rune) string {
	return fmt.Sprintf("contains %q (U+%04X), which only looks like an ASCII character; retype it", r, r)
}
