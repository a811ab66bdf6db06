package commandparse

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"/promote foo@1.2.3 bar-2.0.0-rc.1 to production",
		"/allow overwrite foo@* because\n> /recheck\n```\n/help\n```",
		"<!--\n/promote\n-->\r\n/rebuild staging\n/promоte аpm@1.２.3",
		"~~~~\n/help\n~~~\n",
		"/promote elastic-agent-1.2.3-\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		cmds, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrTooMany) || cmds != nil {
				t.Fatalf("Parse = %d commands, %v; the only error is ErrTooMany, with no commands", len(cmds), err)
			}
			return
		}
		if len(cmds) > MaxCommands {
			t.Fatalf("Parse returned %d commands, more than MaxCommands", len(cmds))
		}
		lines := strings.Split(body, "\n")
		known := map[Name]bool{}
		for _, s := range Specs() {
			known[s.Name] = true
		}
		for _, c := range cmds {
			if c.Line < 1 || c.Line > len(lines) {
				t.Fatalf("command %+v: line %d outside the body's %d lines", c, c.Line, len(lines))
			}
			if want := strings.Trim(strings.TrimSuffix(lines[c.Line-1], "\r"), " \t"); c.Raw != want {
				t.Fatalf("command Raw = %q, want line %d of the body, %q", c.Raw, c.Line, want)
			}
			if !known[c.Name] {
				t.Fatalf("command name %q is not in Specs", c.Name)
			}
			var pe *ParseError
			if c.Err != nil && !errors.As(c.Err, &pe) {
				t.Fatalf("Err is %T, want *ParseError", c.Err)
			}
			if c.Name == Allow && c.Err == nil && (c.Reason == "" || len(c.Versions) != 1) {
				t.Fatalf("valid /allow without reason or target: %+v", c)
			}
		}
	})
}
