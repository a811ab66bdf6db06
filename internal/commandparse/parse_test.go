package commandparse

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sameToken compares parse errors by the token they name; reasons are tested in TestParseErrorReasons.
var sameToken = cmp.Comparer(func(a, b *ParseError) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Token == b.Token
})

func perr(tok string) error { return &ParseError{Token: tok} }

func refs(pairs ...string) []VersionRef {
	var out []VersionRef
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, VersionRef{Package: pairs[i], Version: pairs[i+1]})
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Command
	}{
		{
			name: "promote one version",
			body: "/promote foo@1.2.3",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote foo@1.2.3", Versions: refs("foo", "1.2.3")}},
		},
		{
			name: "promote several to a channel",
			body: "/promote foo@1.2.3 bar@2.0.0 to production",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote foo@1.2.3 bar@2.0.0 to production",
				Versions: refs("foo", "1.2.3", "bar", "2.0.0"), Target: "production"}},
		},
		{
			name: "name-version form with prerelease",
			body: "/promote apm-8.1.0-beta.1",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote apm-8.1.0-beta.1", Versions: refs("apm", "8.1.0-beta.1")}},
		},
		{
			name: "name-version form with dashes in the name",
			body: "/promote elastic-agent-1.2.3 foo-2-1.0.0",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote elastic-agent-1.2.3 foo-2-1.0.0",
				Versions: refs("elastic-agent", "1.2.3", "foo-2", "1.0.0")}},
		},
		{
			name: "build metadata and underscores",
			body: "/promote my_pkg@1.0.0+build.7",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote my_pkg@1.0.0+build.7", Versions: refs("my_pkg", "1.0.0+build.7")}},
		},
		{
			name: "promote without versions means what the merged PR added",
			body: "/promote",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote"}},
		},
		{
			name: "promote without versions to a channel",
			body: "/promote to staging",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote to staging", Target: "staging"}},
		},
		{
			name: "duplicate versions are listed once",
			body: "/promote foo@1.2.3 foo-1.2.3 foo@1.2.3",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote foo@1.2.3 foo-1.2.3 foo@1.2.3", Versions: refs("foo", "1.2.3")}},
		},
		{
			name: "leading spaces and tabs, extra spacing, CRLF",
			body: "  \t/promote   foo@1.2.3\t \r\n",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote   foo@1.2.3", Versions: refs("foo", "1.2.3")}},
		},
		{
			name: "several commands in one comment",
			body: "Thanks!\n\n/recheck\nand then\n/promote foo@1.2.3\n/help",
			want: []Command{
				{Name: Recheck, Line: 3, Raw: "/recheck"},
				{Name: Promote, Line: 5, Raw: "/promote foo@1.2.3", Versions: refs("foo", "1.2.3")},
				{Name: Help, Line: 6, Raw: "/help"},
			},
		},
		{
			name: "backtick fence is ignored",
			body: "```\n/promote foo@1.2.3\n```\n/recheck",
			want: []Command{{Name: Recheck, Line: 4, Raw: "/recheck"}},
		},
		{
			name: "tilde fence with info string and longer close",
			body: "~~~ text\n/promote foo@1.2.3\n```\n/help\n~~~~\n/recheck",
			want: []Command{{Name: Recheck, Line: 6, Raw: "/recheck"}},
		},
		{
			name: "a shorter fence does not close",
			body: "````\n```\n/promote foo@1.2.3\n````\n/help",
			want: []Command{{Name: Help, Line: 5, Raw: "/help"}},
		},
		{
			name: "unclosed fence runs to the end",
			body: "/help\n```\n/recheck",
			want: []Command{{Name: Help, Line: 1, Raw: "/help"}},
		},
		{
			name: "inline code on its own line is no fence",
			body: "```x```\n/help",
			want: []Command{{Name: Help, Line: 2, Raw: "/help"}},
		},
		{
			name: "quoted lines are ignored",
			body: "> /promote foo@1.2.3\n  >/recheck\n>> /help",
		},
		{
			name: "HTML comments are ignored",
			body: "<!--\n/promote foo@1.2.3\n-->\n/help\n<!-- one line --> \n/recheck",
			want: []Command{{Name: Help, Line: 4, Raw: "/help"}, {Name: Recheck, Line: 6, Raw: "/recheck"}},
		},
		{
			name: "inside a sentence is no command",
			body: "please /promote foo@1.2.3\n- /recheck\n`/help`",
		},
		{
			name: "names are case-sensitive",
			body: "/Promote foo@1.2.3\n/HELP",
		},
		{
			name: "unknown slash words are ignored",
			body: "/shrug\n/lgtm\n/\n/ promote foo@1.2.3\n/usr/bin/promote",
		},
		{
			name: "a word starting with a command name is an error",
			body: "/promotes foo@1.2.3\n/promote-now\n/help?",
			want: []Command{
				{Name: Promote, Line: 1, Raw: "/promotes foo@1.2.3", Err: perr("/promotes")},
				{Name: Promote, Line: 2, Raw: "/promote-now", Err: perr("/promote-now")},
				{Name: Help, Line: 3, Raw: "/help?", Err: perr("/help?")},
			},
		},
		{
			name: "look-alike command name",
			body: "/promоte foo@1.2.3",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promоte foo@1.2.3", Err: perr("/promоte")}},
		},
		{
			name: "non-breaking space after the command name",
			body: "/promote\u00a0foo@1.2.3",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote\u00a0foo@1.2.3", Err: perr("/promote\u00a0foo@1.2.3")}},
		},
		{
			name: "Cyrillic letter in a package name",
			body: "/promote аpm@1.2.3",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote аpm@1.2.3", Err: perr("аpm@1.2.3")}},
		},
		{
			name: "fullwidth digit in a version",
			body: "/promote foo@1.２.3",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote foo@1.２.3", Err: perr("foo@1.２.3")}},
		},
		{
			name: "non-breaking space inside a token",
			body: "/promote foo@1.2.3\u00a0bar@2.0.0",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote foo@1.2.3\u00a0bar@2.0.0", Err: perr("foo@1.2.3\u00a0bar@2.0.0")}},
		},
		{
			name: "trailing comma",
			body: "/promote foo@1.2.3, bar@2.0.0",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote foo@1.2.3, bar@2.0.0", Versions: nil, Err: perr("foo@1.2.3,")}},
		},
		{
			name: "trailing parenthesis",
			body: "/promote bar@2.0.0 (foo@1.2.3)",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote bar@2.0.0 (foo@1.2.3)", Versions: refs("bar", "2.0.0"), Err: perr("(foo@1.2.3)")}},
		},
		{
			name: "v prefix, partial version, uppercase name, empty version",
			body: "/promote foo@v1.2.3\n/promote foo@1.2\n/promote Foo@1.2.3\n/promote foo@\n/promote foo",
			want: []Command{
				{Name: Promote, Line: 1, Raw: "/promote foo@v1.2.3", Err: perr("foo@v1.2.3")},
				{Name: Promote, Line: 2, Raw: "/promote foo@1.2", Err: perr("foo@1.2")},
				{Name: Promote, Line: 3, Raw: "/promote Foo@1.2.3", Err: perr("Foo@1.2.3")},
				{Name: Promote, Line: 4, Raw: "/promote foo@", Err: perr("foo@")},
				{Name: Promote, Line: 5, Raw: "/promote foo", Err: perr("foo")},
			},
		},
		{
			name: "leading zero in a name-version token",
			body: "/promote foo-01.2.3",
			want: []Command{{Name: Promote, Line: 1, Raw: "/promote foo-01.2.3", Err: perr("foo-01.2.3")}},
		},
		{
			name: "wildcards are for /allow only",
			body: "/promote foo@*\n/promote *",
			want: []Command{
				{Name: Promote, Line: 1, Raw: "/promote foo@*", Err: perr("foo@*")},
				{Name: Promote, Line: 2, Raw: "/promote *", Err: perr("*")},
			},
		},
		{
			name: "to without a channel, bad channel, words after the channel",
			body: "/promote foo@1.2.3 to\n/promote foo@1.2.3 to Production\n/promote foo@1.2.3 to production please",
			want: []Command{
				{Name: Promote, Line: 1, Raw: "/promote foo@1.2.3 to", Versions: refs("foo", "1.2.3"), Err: perr("to")},
				{Name: Promote, Line: 2, Raw: "/promote foo@1.2.3 to Production", Versions: refs("foo", "1.2.3"), Err: perr("Production")},
				{Name: Promote, Line: 3, Raw: "/promote foo@1.2.3 to production please", Versions: refs("foo", "1.2.3"), Err: perr("please")},
			},
		},
		{
			name: "allow one version, reason keeps its spacing and Unicode",
			body: "/allow overwrite foo@1.2.3 fixes a   typo — see #12 ",
			want: []Command{{Name: Allow, Line: 1, Raw: "/allow overwrite foo@1.2.3 fixes a   typo — see #12",
				Rule: "overwrite", Versions: refs("foo", "1.2.3"), Reason: "fixes a   typo — see #12"}},
		},
		{
			name: "allow every version of a package, name-version form",
			body: "/allow removal foo@* clean-up\n/allow version-order elastic-agent-8.0.0 backport",
			want: []Command{
				{Name: Allow, Line: 1, Raw: "/allow removal foo@* clean-up", Rule: "removal", Versions: refs("foo", "*"), Reason: "clean-up"},
				{Name: Allow, Line: 2, Raw: "/allow version-order elastic-agent-8.0.0 backport", Rule: "version-order",
					Versions: refs("elastic-agent", "8.0.0"), Reason: "backport"},
			},
		},
		{
			name: "allow every version",
			body: "/allow removal * bulk clean-up of 2021 betas",
			want: []Command{{Name: Allow, Line: 1, Raw: "/allow removal * bulk clean-up of 2021 betas", Rule: "removal",
				Versions: refs("*", "*"), Reason: "bulk clean-up of 2021 betas"}},
		},
		{
			name: "allow with something missing or wrong",
			body: "/allow\n/allow overwrite\n/allow overwrite foo@1.2.3\n/allow Overwrite foo@1.2.3 x\n/allow overwrite *@1.2.3 x\n/allow оverwrite foo@1.2.3 x",
			want: []Command{
				{Name: Allow, Line: 1, Raw: "/allow", Err: perr("")},
				{Name: Allow, Line: 2, Raw: "/allow overwrite", Rule: "overwrite", Err: perr("")},
				{Name: Allow, Line: 3, Raw: "/allow overwrite foo@1.2.3", Rule: "overwrite", Versions: refs("foo", "1.2.3"), Err: perr("")},
				{Name: Allow, Line: 4, Raw: "/allow Overwrite foo@1.2.3 x", Err: perr("Overwrite")},
				{Name: Allow, Line: 5, Raw: "/allow overwrite *@1.2.3 x", Rule: "overwrite", Err: perr("*@1.2.3")},
				{Name: Allow, Line: 6, Raw: "/allow оverwrite foo@1.2.3 x", Err: perr("оverwrite")},
			},
		},
		{
			name: "recheck and help take no arguments",
			body: "/recheck please\n/help me",
			want: []Command{
				{Name: Recheck, Line: 1, Raw: "/recheck please", Err: perr("please")},
				{Name: Help, Line: 2, Raw: "/help me", Err: perr("me")},
			},
		},
		{
			name: "rebuild with and without a channel",
			body: "/rebuild\n/rebuild staging\n/rebuild staging snapshot\n/rebuild ｓtaging",
			want: []Command{
				{Name: Rebuild, Line: 1, Raw: "/rebuild"},
				{Name: Rebuild, Line: 2, Raw: "/rebuild staging", Target: "staging"},
				{Name: Rebuild, Line: 3, Raw: "/rebuild staging snapshot", Target: "", Err: perr("snapshot")},
				{Name: Rebuild, Line: 4, Raw: "/rebuild ｓtaging", Err: perr("ｓtaging")},
			},
		},
		{
			name: "exactly the maximum",
			body: strings.Repeat("/recheck\n", MaxCommands),
			want: func() []Command {
				var out []Command
				for i := 1; i <= MaxCommands; i++ {
					out = append(out, Command{Name: Recheck, Line: i, Raw: "/recheck"})
				}
				return out
			}(),
		},
		{
			name: "empty body",
			body: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, sameToken); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

func TestParseTooMany(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "one over the cap", body: strings.Repeat("/recheck\n", MaxCommands+1)},
		{name: "malformed commands count too", body: strings.Repeat("/promotes\n", MaxCommands) + "/help"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.body)
			if !errors.Is(err, ErrTooMany) {
				t.Errorf("Parse error = %v, want ErrTooMany", err)
			}
			if got != nil {
				t.Errorf("Parse returned %d commands beside ErrTooMany, want none", len(got))
			}
		})
	}
}

// TestParseErrorReasons checks that the words a commenter reads name the problem and the fix.
func TestParseErrorReasons(t *testing.T) {
	tests := []struct {
		name string
		line string
		want string
	}{
		{name: "Cyrillic letter", line: "/promote аpm@1.2.3", want: `"аpm@1.2.3": contains 'а' (U+0430), which only looks like an ASCII character; retype it`},
		{name: "non-breaking space", line: "/promote a@1.0.0\u00a0", want: `"a@1.0.0\u00a0": contains '\u00a0' (U+00A0), which only looks like an ASCII character; retype it`},
		{name: "unknown word", line: "/promotes", want: `"/promotes": unknown command; did you mean /promote?`},
		{name: "trailing comma", line: "/promote foo@1.2.3,", want: `"foo@1.2.3,": version "1.2.3," is not strict semver (major.minor.patch, e.g. 1.2.3 or 8.1.0-beta.1): invalid characters in version`},
		{name: "uppercase name", line: "/promote Foo-1.2.3", want: `"Foo-1.2.3": package name "Foo" may hold only lowercase letters, digits, _ and -`},
		{name: "missing reason", line: "/allow overwrite foo@1.2.3", want: "missing the reason, which the check shows beside the exception; usage: /allow <rule> <name>@<version>|<name>@*|* <reason>"},
		{name: "to without channel", line: "/promote to", want: `"to": needs a channel: /promote … to <channel>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmds, err := Parse(tc.line)
			if err != nil || len(cmds) != 1 || cmds[0].Err == nil {
				t.Fatalf("Parse(%q) = %+v, %v; want one command with Err", tc.line, cmds, err)
			}
			var pe *ParseError
			if !errors.As(cmds[0].Err, &pe) {
				t.Fatalf("Err is %T, want *ParseError", cmds[0].Err)
			}
			if diff := cmp.Diff(tc.want, pe.Error()); diff != "" {
				t.Errorf("error text mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelpText(t *testing.T) {
	help := HelpText()
	for _, s := range Specs() {
		listed := strings.Contains(help, fmt.Sprintf("- `%s` — %s\n", s.Usage, s.Help))
		if !s.Unavailable && !listed {
			t.Errorf("HelpText lacks the entry for /%s", s.Name)
		}
		if s.Unavailable && (listed || strings.Contains(help, "`/"+string(s.Name))) {
			t.Errorf("HelpText advertises /%s, which is not available yet", s.Name)
		}
		if got, ok := SpecFor(s.Name); !ok || got.Name != s.Name {
			t.Errorf("SpecFor(%s) = %+v, %v", s.Name, got, ok)
		}
		if !strings.HasPrefix(s.Usage, "/"+string(s.Name)) {
			t.Errorf("usage %q of /%s does not start with the command", s.Usage, s.Name)
		}
		cmds, err := Parse("/" + string(s.Name))
		if err != nil || len(cmds) != 1 || cmds[0].Name != s.Name {
			t.Errorf("Parse(/%s) = %+v, %v; every listed command must parse", s.Name, cmds, err)
		}
	}
}

func TestVersionRefString(t *testing.T) {
	tests := []struct {
		name string
		ref  VersionRef
		want string
	}{
		{name: "version", ref: VersionRef{Package: "foo", Version: "1.2.3"}, want: "foo@1.2.3"},
		{name: "every version of a package", ref: VersionRef{Package: "foo", Version: Wildcard}, want: "foo@*"},
		{name: "every version", ref: VersionRef{Package: Wildcard, Version: Wildcard}, want: "*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.ref.String()); diff != "" {
				t.Errorf("String mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
