package repoconfig

import (
	"fmt"
	"strings"
)

// Error is one problem in the configuration file, located so a person can fix it: it prints as
// ".github/storagebot.yml:12:3: rules.overwrite.staging: unknown severity "eror" (want error, warning, notice or off)".
type Error struct {
	File   string
	Line   int // 1-based; 0 when the problem is the file as a whole
	Column int // 1-based; 0 when unknown
	// Field is the dotted path of the offending setting (e.g. "rules.overwrite.staging", "channels[1].name");
	// "" for the file as a whole.
	Field string
	Msg   string
}

// Error formats the problem as file:line:column: field: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file, in file order. errors.As finds the first *Error in it.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
