package report

import (
	"fmt"
	"strings"

	"github.com/storagebot/storagebot/policy"
)

// ConfigError builds the failing check for a repository whose configuration file at path is invalid: no rule
// is evaluated, and the output says which file, line and field are wrong (err's text, which names the field)
// and where to fix it. line is 1-based; 0 or less when the problem has no line (the annotation then goes on
// line 1).
func ConfigError(err error, path string, line int) Output {
	msg := "invalid configuration"
	if err != nil {
		msg = err.Error()
	}
	where := fmt.Sprintf("`%s`", path)
	annotated := line
	if line > 0 {
		where += fmt.Sprintf(", line %d", line)
	} else {
		annotated = 1
	}

	var b strings.Builder
	fmt.Fprintf(&b, "storagebot could not use its configuration, so **no rule was evaluated** on this change.\n\n")
	fmt.Fprintf(&b, "**Problem** in %s:\n\n", where)
	fence := codeFence(msg)
	fmt.Fprintf(&b, "%s\n%s\n%s\n\n", fence, msg, fence)
	fmt.Fprintf(&b, "The configuration is always read from the repository's default branch, never from a pull "+
		"request (a pull request cannot change its own policy): fix `%s` there, then comment `/recheck` here.", path)

	title := fmt.Sprintf("Invalid %s: nothing was checked", path)
	return Output{
		Title:      cut(title, MaxOutputChars),
		Summary:    cut(b.String(), MaxOutputChars),
		Conclusion: policy.ConclusionFailure,
		Annotations: []Annotation{{
			Path:      path,
			StartLine: annotated,
			EndLine:   annotated,
			Level:     LevelFailure,
			Title:     "Invalid storagebot configuration",
			Message:   cut(msg, maxAnnotationMessage),
		}},
	}
}

// codeFence returns a backtick fence longer than any run of backticks in s, so s cannot close it early.
func codeFence(s string) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}
