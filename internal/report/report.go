// Package report renders the `storage-policy` check run: what a package author reads on a pull request.
//
// Render turns the facts of a change (policy.Input) and its findings into a title, a markdown summary that
// reads like a review (a table of the changed versions, then the findings grouped by version with how to fix
// each, then the exceptions granted, with who and why), a text section explaining the rules involved, and one
// annotation per finding on the file to blame. ConfigError renders the check for a repository whose
// configuration is invalid. Everything respects GitHub's limits: summary and text at most 65,535 characters
// (truncated with a note), annotations sent in batches of at most 50.
package report

import (
	"fmt"
	"strings"

	"github.com/storagebot/storagebot/policy"
)

// GitHub's limits on a check run's output (docs/architecture.md §10).
const (
	// MaxOutputChars is the most characters GitHub accepts in a check run's summary or text. Render counts
	// bytes, which are never fewer than characters, so its output always fits.
	MaxOutputChars = 65535
	// MaxAnnotationsPerRequest is the most annotations one create or update request may carry.
	MaxAnnotationsPerRequest = 50
	// maxAnnotationTitle is the most characters GitHub accepts in an annotation's title.
	maxAnnotationTitle = 255
	// maxAnnotationMessage is the most bytes GitHub accepts in an annotation's message.
	maxAnnotationMessage = 64 * 1024
)

// Annotation levels, as GitHub's check runs API spells them.
const (
	LevelFailure = "failure"
	LevelWarning = "warning"
	LevelNotice  = "notice"
)

// Output is a check run's result and output, ready for the checks API.
type Output struct {
	Title   string
	Summary string
	Text    string
	// Conclusion is "success" or "failure".
	Conclusion  string
	Annotations []Annotation
}

// Annotation points a finding at a file of the repository.
type Annotation struct {
	Path      string
	StartLine int
	EndLine   int
	// Level is LevelFailure, LevelWarning or LevelNotice.
	Level   string
	Title   string
	Message string
}

// Render builds the `storage-policy` check for a change and its findings (as policy.Evaluate returns them,
// exceptions already applied; in.Exceptions lists every exception granted on the change).
func Render(in policy.Input, findings []policy.Finding) Output {
	return Output{
		Title:       title(len(in.Changes), findings),
		Summary:     summary(in, findings, checkRunFooter),
		Text:        rulesText(findings),
		Conclusion:  policy.Conclusion(findings),
		Annotations: annotations(in, findings),
	}
}

// title says how many findings of each severity there are in how many changed versions, or that all pass.
func title(changes int, findings []policy.Finding) string {
	versions := plural(changes, "changed version", "changed versions")
	counts := countSeverities(findings)
	switch {
	case len(findings) == 0 && changes == 0:
		return "No package versions changed"
	case len(findings) == 0 && changes == 1:
		return "The changed version passes"
	case len(findings) == 0:
		return fmt.Sprintf("All %s pass", versions)
	case changes == 0:
		return counts + "; no package versions changed"
	}
	return counts + " in " + versions
}

// countSeverities says "2 errors, 1 warning, 1 notice", omitting severities with none.
func countSeverities(findings []policy.Finding) string {
	var parts []string
	for _, s := range []struct {
		sev            policy.Severity
		singular, many string
	}{
		{policy.SeverityError, "error", "errors"},
		{policy.SeverityWarning, "warning", "warnings"},
		{policy.SeverityNotice, "notice", "notices"},
	} {
		n := 0
		for _, f := range findings {
			if f.Severity == s.sev {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, plural(n, s.singular, s.many))
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int, singular, many string) string {
	if n == 1 {
		return "1 " + singular
	}
	return fmt.Sprintf("%d %s", n, many)
}

// annotations returns one annotation per finding that has a path. A finding on a version directory points
// at the version's manifest.yml when the change touched it, since GitHub shows annotations on files.
func annotations(in policy.Input, findings []policy.Finding) []Annotation {
	changed := map[string][]string{} // version dir → files the change added or modified under it
	for _, c := range in.Changes {
		changed[versionDir(c.Package, c.Version)] = c.Paths
	}
	var out []Annotation
	for _, f := range findings {
		if f.Path == "" {
			continue
		}
		t := string(f.Rule)
		if f.Package != "" {
			t = strings.TrimSpace(fmt.Sprintf("%s: %s %s", f.Rule, f.Package, f.Version))
		}
		for _, path := range annotatedPaths(f, changed) {
			out = append(out, Annotation{
				Path:      path,
				StartLine: 1,
				EndLine:   1,
				Level:     level(f.Severity),
				Title:     cut(t, maxAnnotationTitle),
				Message:   cut(f.Message, maxAnnotationMessage),
			})
		}
	}
	return out
}

// maxFilesPerFinding caps how many changed files one version-level finding annotates.
const maxFilesPerFinding = 10

// annotatedPaths picks the files a finding is shown on. GitHub shows annotations on files, not directories:
// a finding about a version directory goes on the files the change touched there when the rule is about
// those edits (overwrite, shadowed), else on the version's manifest.yml when the change touched it.
func annotatedPaths(f policy.Finding, changed map[string][]string) []string {
	dir := versionDir(f.Package, f.Version)
	files, ok := changed[dir]
	if f.Package == "" || f.Path != dir || !ok || len(files) == 0 {
		return []string{f.Path}
	}
	if f.Rule == policy.RuleOverwrite || f.Rule == policy.RuleShadowed {
		if len(files) > maxFilesPerFinding {
			files = files[:maxFilesPerFinding]
		}
		return files
	}
	manifest := dir + "/manifest.yml"
	for _, p := range files {
		if p == manifest {
			return []string{manifest}
		}
	}
	return []string{f.Path}
}

// level maps a finding's severity to an annotation level.
func level(s policy.Severity) string {
	switch s {
	case policy.SeverityError:
		return LevelFailure
	case policy.SeverityWarning:
		return LevelWarning
	default:
		return LevelNotice
	}
}

// Batches splits annotations into groups of at most size (MaxAnnotationsPerRequest when size is not
// positive or larger), one group per create or update request, in order. No annotations, no batches.
func Batches(a []Annotation, size int) [][]Annotation {
	if size <= 0 || size > MaxAnnotationsPerRequest {
		size = MaxAnnotationsPerRequest
	}
	var out [][]Annotation
	for len(a) > 0 {
		n := min(size, len(a))
		out = append(out, a[:n:n])
		a = a[n:]
	}
	return out
}

// versionDir is the repository path of a package version.
func versionDir(pkg, version string) string {
	return "packages/" + pkg + "/" + version
}

// cut shortens s to at most n bytes without splitting a UTF-8 character, marking the cut with "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	end := n - len(ellipsis)
	for end > 0 && !isRuneStart(s[end]) {
		end--
	}
	return s[:end] + ellipsis
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
