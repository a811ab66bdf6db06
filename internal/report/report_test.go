package report

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func ptr[T any](v T) *T { return &v }

// manifest is a version's manifest.yml as the storage reader hands it to the policy.
func manifest(pkg, version string) policy.Manifest {
	return policy.Manifest{Present: true, Path: "packages/" + pkg + "/" + version + "/manifest.yml",
		Data: []byte("name: " + pkg + "\nversion: " + version + "\n")}
}

// stagingInput is a pull request into staging: a promotion copied by hand from a different snapshot copy,
// with development files, a non-semver version, an overwrite whose exception lapsed, a removal allowed by an
// exception, an out-of-order version, a stray file and a title without the branch prefix.
func stagingInput() policy.Input {
	return policy.Input{
		Channel:  "staging",
		Channels: []string{"snapshot", "staging", "production"},
		Branch:   "staging",
		Title:    ptr("Promote apm 8.1.0"),
		Changes: []policy.Change{
			{Package: "nginx", Version: "1.2.0", Kind: policy.Modified, Tree: "bbbb2222", BaseTree: "aaaa1111",
				Paths:           []string{"packages/nginx/1.2.0/manifest.yml", "packages/nginx/1.2.0/docs/README.md"},
				Manifest:        manifest("nginx", "1.2.0"),
				ChannelVersions: []string{"1.1.0", "1.2.0"},
				Others:          map[string]policy.Copy{"production": {TreeSHA: "bbbb2222", Identical: true}}},
			{Package: "apm", Version: "8.1.0", Kind: policy.Added, Tree: "cccc3333",
				Paths:           []string{"packages/apm/8.1.0/manifest.yml", "packages/apm/8.1.0/_dev/build.yml"},
				Manifest:        manifest("apm", "8.1.0"),
				ChannelVersions: []string{"8.0.0"},
				Others:          map[string]policy.Copy{"snapshot": {TreeSHA: "1234567890ab", Identical: false}}},
			{Package: "apm", Version: "8.0.0-beta.1", Kind: policy.Added, Tree: "dddd4444",
				Paths:           []string{"packages/apm/8.0.0-beta.1/manifest.yml"},
				Manifest:        manifest("apm", "8.0.0-beta.1"),
				ChannelVersions: []string{"8.0.0"},
				Others:          map[string]policy.Copy{"snapshot": {TreeSHA: "dddd4444", Identical: true}}},
			{Package: "elastic-agent", Version: "1.0.0", Kind: policy.Removed, Tree: "eeee5555", BaseTree: "eeee5555"},
			{Package: "system", Version: "1.5.0", Kind: policy.Modified, Tree: "ffff6666", BaseTree: "ffff0000",
				Paths:           []string{"packages/system/1.5.0/changelog.yml"},
				Manifest:        manifest("system", "1.5.0"),
				ChannelVersions: []string{"1.5.0", "1.5.2"}},
		},
		Layout: []policy.LayoutProblem{{Path: "packages/system/README.md", Kind: "not-a-directory", Package: "system"}},
		Exceptions: []policy.Exception{
			{Rule: policy.RuleRemoval, Package: "elastic-agent", Version: "1.0.0", TreeSHA: "eeee5555", By: "alice",
				Reason: "withdrawn: ships a broken | pipeline <!-- see #41"},
			{Rule: policy.RuleOverwrite, Package: "nginx", Version: "1.2.0", TreeSHA: "aaaa0000", By: "bob",
				Reason: "docs typo"},
			{Rule: policy.RuleOverwrite, Package: "apm", Version: "8.1.0", TreeSHA: "cccc3333", By: "carol",
				Reason: "just in case"},
		},
	}
}

// TestRenderGolden renders what policy.Evaluate finds on each input under the built-in rules of its channel:
// the golden files show the check a user really gets, not hand-written findings.
func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		in   policy.Input
	}{
		{name: "staging_failures", in: stagingInput()},
		{
			name: "snapshot_all_pass",
			in: policy.Input{Channel: "snapshot", Channels: []string{"snapshot", "staging", "production"}, Branch: "snapshot",
				Title: ptr("[snapshot] Add zeek 2.0.0 and aws 1.10.0"),
				Changes: []policy.Change{
					{Package: "zeek", Version: "2.0.0", Kind: policy.Added, Tree: "1111", Paths: []string{"packages/zeek/2.0.0/manifest.yml"}, Manifest: manifest("zeek", "2.0.0")},
					{Package: "aws", Version: "1.10.0", Kind: policy.Added, Tree: "2222", Paths: []string{"packages/aws/1.10.0/manifest.yml"}, Manifest: manifest("aws", "1.10.0"),
						ChannelVersions: []string{"1.9.0"}},
					{Package: "aws", Version: "1.9.0", Kind: policy.Modified, Tree: "3333", BaseTree: "4444",
						Paths: []string{"packages/aws/1.9.0/docs/README.md"}, Manifest: manifest("aws", "1.9.0"), ChannelVersions: []string{"1.9.0"}},
				}},
		},
		{
			name: "production_registry_only",
			in: policy.Input{Channel: "production", Channels: []string{"snapshot", "staging", "production"}, Branch: "main",
				Title: ptr("[main] Bump the registry"),
				Registry: policy.RegistryFiles{Touched: true,
					Dockerfile: []byte("ARG PACKAGE_REGISTRY=v1.20.0\nFROM docker.elastic.co/package-registry/package-registry:${PACKAGE_REGISTRY}\n"),
					GoMod:      []byte("module example.com/storage\n\nrequire github.com/elastic/package-registry v1.19.1\n")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			findings := policy.Evaluate(tc.in, repoconfig.Default().RulesFor(tc.in.Channel))
			checkGolden(t, tc.name, describe(Render(tc.in, findings)))
		})
	}
}

func TestConfigErrorGolden(t *testing.T) {
	tests := []struct {
		name string
		err  error
		path string
		line int
	}{
		{name: "config_error_line", err: errors.New("storagebot.yml:12:3: rules.staging.overwrite: unknown severity \"eror\" (want error, warning, notice or off)"),
			path: ".github/storagebot.yml", line: 12},
		{name: "config_error_no_line", err: errors.New("storagebot.yml: channels: at least one channel is required, e.g. ```channels: [{name: production}]```"),
			path: ".github/storagebot.yml", line: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, describe(ConfigError(tc.err, tc.path, tc.line)))
		})
	}
}

// describe prints every part of an Output, so a golden file shows what the author sees.
func describe(o Output) string {
	var b strings.Builder
	fmt.Fprintf(&b, "title: %s\nconclusion: %s\n\n===== summary =====\n%s\n\n===== text =====\n%s\n\n===== annotations =====\n",
		o.Title, o.Conclusion, o.Summary, o.Text)
	for _, a := range o.Annotations {
		fmt.Fprintf(&b, "%s:%d-%d [%s] %s: %s\n", a.Path, a.StartLine, a.EndLine, a.Level, a.Title, a.Message)
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func TestTitle(t *testing.T) {
	errF := policy.Finding{Severity: policy.SeverityError}
	warnF := policy.Finding{Severity: policy.SeverityWarning}
	noteF := policy.Finding{Severity: policy.SeverityNotice}
	tests := []struct {
		name     string
		changes  int
		findings []policy.Finding
		want     string
	}{
		{name: "all pass", changes: 3, want: "All 3 changed versions pass"},
		{name: "one passes", changes: 1, want: "The changed version passes"},
		{name: "nothing changed", changes: 0, want: "No package versions changed"},
		{name: "mixed", changes: 3, findings: []policy.Finding{errF, noteF, errF}, want: "2 errors, 1 notice in 3 changed versions"},
		{name: "singulars", changes: 1, findings: []policy.Finding{warnF, errF, noteF}, want: "1 error, 1 warning, 1 notice in 1 changed version"},
		{name: "no versions", changes: 0, findings: []policy.Finding{errF}, want: "1 error; no package versions changed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, title(tc.changes, tc.findings)); diff != "" {
				t.Errorf("title mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	in := policy.Input{Changes: []policy.Change{
		{Package: "foo", Version: "1.0.0", Kind: policy.Added, Paths: []string{"packages/foo/1.0.0/manifest.yml"}},
		{Package: "bar", Version: "2.0.0", Kind: policy.Modified, Paths: []string{"packages/bar/2.0.0/docs/README.md"}},
		{Package: "baz", Version: "3.0.0", Kind: policy.Removed},
	}}
	tests := []struct {
		name    string
		finding policy.Finding
		want    []Annotation
	}{
		{
			name:    "version directory with its manifest changed points at the manifest",
			finding: policy.Finding{Rule: "promotion-source", Severity: policy.SeverityError, Package: "foo", Version: "1.0.0", Path: "packages/foo/1.0.0", Message: "m"},
			want:    []Annotation{{Path: "packages/foo/1.0.0/manifest.yml", StartLine: 1, EndLine: 1, Level: LevelFailure, Title: "promotion-source: foo 1.0.0", Message: "m"}},
		},
		{
			name:    "overwrite goes on every changed file",
			finding: policy.Finding{Rule: "overwrite", Severity: policy.SeverityWarning, Package: "bar", Version: "2.0.0", Path: "packages/bar/2.0.0", Message: "m"},
			want:    []Annotation{{Path: "packages/bar/2.0.0/docs/README.md", StartLine: 1, EndLine: 1, Level: LevelWarning, Title: "overwrite: bar 2.0.0", Message: "m"}},
		},
		{
			name:    "version directory without a changed manifest stays on the directory",
			finding: policy.Finding{Rule: "promotion-source", Severity: policy.SeverityWarning, Package: "bar", Version: "2.0.0", Path: "packages/bar/2.0.0", Message: "m"},
			want:    []Annotation{{Path: "packages/bar/2.0.0", StartLine: 1, EndLine: 1, Level: LevelWarning, Title: "promotion-source: bar 2.0.0", Message: "m"}},
		},
		{
			name:    "removed version",
			finding: policy.Finding{Rule: "removal", Severity: policy.SeverityNotice, Package: "baz", Version: "3.0.0", Path: "packages/baz/3.0.0", Message: "m"},
			want:    []Annotation{{Path: "packages/baz/3.0.0", StartLine: 1, EndLine: 1, Level: LevelNotice, Title: "removal: baz 3.0.0", Message: "m"}},
		},
		{
			name:    "a file is annotated as is",
			finding: policy.Finding{Rule: "dev-files", Severity: policy.SeverityError, Package: "foo", Version: "1.0.0", Path: "packages/foo/1.0.0/_dev/x.yml", Message: "m"},
			want:    []Annotation{{Path: "packages/foo/1.0.0/_dev/x.yml", StartLine: 1, EndLine: 1, Level: LevelFailure, Title: "dev-files: foo 1.0.0", Message: "m"}},
		},
		{
			name:    "repository file without a package",
			finding: policy.Finding{Rule: "registry-version", Severity: policy.SeverityError, Path: "go.mod", Message: "m"},
			want:    []Annotation{{Path: "go.mod", StartLine: 1, EndLine: 1, Level: LevelFailure, Title: "registry-version", Message: "m"}},
		},
		{
			name:    "pull-request finding has no file",
			finding: policy.Finding{Rule: "title-prefix", Severity: policy.SeverityError, Message: "m"},
		},
		{
			name:    "long message is cut",
			finding: policy.Finding{Rule: "layout", Severity: policy.SeverityError, Path: "x", Message: strings.Repeat("é", maxAnnotationMessage)},
			want: []Annotation{{Path: "x", StartLine: 1, EndLine: 1, Level: LevelFailure, Title: "layout",
				Message: strings.Repeat("é", (maxAnnotationMessage-len("…"))/2) + "…"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Render(in, []policy.Finding{tc.finding}).Annotations
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("annotations mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBatches(t *testing.T) {
	annotations := func(n int) []Annotation {
		out := make([]Annotation, n)
		for i := range out {
			out[i] = Annotation{Path: fmt.Sprintf("f%d", i), StartLine: 1, EndLine: 1, Level: LevelNotice}
		}
		return out
	}
	sizes := func(batches [][]Annotation) []int {
		var out []int
		for _, b := range batches {
			out = append(out, len(b))
		}
		return out
	}
	tests := []struct {
		name string
		n    int
		size int
		want []int
	}{
		{name: "none", n: 0, size: 50, want: nil},
		{name: "one", n: 1, size: 50, want: []int{1}},
		{name: "exactly one batch", n: 50, size: 50, want: []int{50}},
		{name: "one over", n: 51, size: 50, want: []int{50, 1}},
		{name: "several", n: 120, size: 50, want: []int{50, 50, 20}},
		{name: "smaller size", n: 10, size: 4, want: []int{4, 4, 2}},
		{name: "size not positive uses GitHub's maximum", n: 60, size: 0, want: []int{50, 10}},
		{name: "size over GitHub's maximum is capped", n: 120, size: 100, want: []int{50, 50, 20}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := annotations(tc.n)
			got := Batches(in, tc.size)
			if diff := cmp.Diff(tc.want, sizes(got)); diff != "" {
				t.Errorf("batch sizes mismatch (-want +got):\n%s", diff)
			}
			var flat []Annotation
			for _, b := range got {
				flat = append(flat, b...)
			}
			if diff := cmp.Diff(in, flat, cmp.Comparer(func(a, b []Annotation) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b) })); len(in) > 0 && diff != "" {
				t.Errorf("batches do not hold the annotations in order (-want +got):\n%s", diff)
			}
		})
	}
}

// notShown reads the truncation note's counts.
var notShown = regexp.MustCompile(`not shown: (?:(\d+) changed versions?)?(?: and )?(?:(\d+) findings?)?\.`)

func TestRenderTruncatesLongSummary(t *testing.T) {
	tests := []struct {
		name     string
		versions int
	}{
		{name: "just over the limit", versions: 280},
		{name: "a bulk promotion of thousands", versions: 3000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in policy.Input
			var findings []policy.Finding
			in.Channel = "production"
			for i := 0; i < tc.versions; i++ {
				v := fmt.Sprintf("1.0.%d", i)
				in.Changes = append(in.Changes, policy.Change{Package: "pkg", Version: v, Kind: policy.Added})
				findings = append(findings, policy.Finding{Rule: policy.RulePromotionSource, Severity: policy.SeverityError,
					Package: "pkg", Version: v, Path: "packages/pkg/" + v,
					Message: strings.Repeat("No lower channel has this version; promote it from snapshot. ", 3)})
			}
			out := Render(in, findings)
			if len(out.Summary) > MaxOutputChars {
				t.Fatalf("summary is %d bytes, over GitHub's %d", len(out.Summary), MaxOutputChars)
			}
			m := notShown.FindStringSubmatch(out.Summary)
			if m == nil || !strings.HasSuffix(out.Summary, "on a clone of the repository.") {
				t.Fatalf("summary does not end with the truncation note:\n…%s", out.Summary[len(out.Summary)-400:])
			}
			rowsHidden, _ := strconv.Atoi(m[1])
			findingsHidden, _ := strconv.Atoi(m[2])
			rowsShown := strings.Count(out.Summary, "\n| pkg | ")
			findingsShown := strings.Count(out.Summary, "\n- ❌ **promotion-source**")
			if diff := cmp.Diff([]int{tc.versions, tc.versions}, []int{rowsShown + rowsHidden, findingsShown + findingsHidden}); diff != "" {
				t.Errorf("shown + hidden (rows, findings) mismatch (-want +got):\n%s", diff)
			}
			if findingsHidden == 0 {
				t.Errorf("no finding reported hidden; the test does not exercise truncation")
			}
			if got := len(out.Annotations); got != tc.versions {
				t.Errorf("got %d annotations, want one per finding (%d) whatever the summary's length", got, tc.versions)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	lines := func(n int, l line) []line {
		out := make([]line, n)
		for i := range out {
			out[i] = l
		}
		return out
	}
	row := line{text: strings.Repeat("r", 99), row: true}
	find := line{text: strings.Repeat("f", 99), finding: true}
	tests := []struct {
		name  string
		lines []line
		limit int
		want  string
	}{
		{name: "fits exactly", lines: lines(3, row), limit: 299, want: strings.Repeat("r", 99) + "\n" + strings.Repeat("r", 99) + "\n" + strings.Repeat("r", 99)},
		{
			name:  "cut at a line boundary with counts",
			lines: append(lines(5, row), lines(5, find)...),
			limit: 900, // 300 bytes after the note's reserve: three rows
			want: strings.TrimSuffix(strings.Repeat(strings.Repeat("r", 99)+"\n", 3), "\n") + "\n\n---\n**Summary truncated** at GitHub's " +
				"limit of 65535 characters; not shown: 2 changed versions and 5 findings. Every finding with a file is also an " +
				"annotation (see *Files changed*), and `storagebot check` prints the full report on a clone of the repository.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, truncate(tc.lines, tc.limit)); diff != "" {
				t.Errorf("truncate mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
