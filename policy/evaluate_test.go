package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var channels = []string{"snapshot", "staging", "production"}

// input builds an Input for a change to channel with the default channels.
func input(channel string, changes ...Change) Input {
	return Input{Channel: channel, Channels: channels, Branch: channel, Changes: changes}
}

// defaults returns the default rules of a channel among the default channels.
func defaults(channel string) Rules {
	for i, c := range channels {
		if c == channel {
			return DefaultRules(i, len(channels))
		}
	}
	panic("unknown channel " + channel)
}

func manifestOf(pkg, version string) Manifest {
	return Manifest{Present: true, Path: versionDir(pkg, version) + "/manifest.yml",
		Data: []byte("name: " + pkg + "\nversion: " + version + "\n")}
}

func added(pkg, version string, others map[string]Copy, channelVersions ...string) Change {
	return Change{Package: pkg, Version: version, Kind: Added, Tree: "tree-head", Manifest: manifestOf(pkg, version),
		Paths: []string{versionDir(pkg, version) + "/manifest.yml"}, ChannelVersions: channelVersions, Others: others}
}

func modified(pkg, version string, others map[string]Copy) Change {
	return Change{Package: pkg, Version: version, Kind: Modified, Tree: "tree-head", BaseTree: "tree-base",
		Manifest: manifestOf(pkg, version), Paths: []string{versionDir(pkg, version) + "/manifest.yml"}, Others: others}
}

func removed(pkg, version string, others map[string]Copy) Change {
	return Change{Package: pkg, Version: version, Kind: Removed, Tree: "tree-base", BaseTree: "tree-base", Others: others}
}

var (
	same = Copy{TreeSHA: "tree-head", Identical: true}
	diff = Copy{TreeSHA: "tree-other"}
)

// brief is a finding reduced to what a test asserts exactly; the message is checked for substrings.
type brief struct {
	Rule     RuleID
	Severity Severity
	Package  string
	Version  string
	Path     string
	Excepted bool
}

func shorten(fs []Finding) []brief {
	var out []brief
	for _, f := range fs {
		out = append(out, brief{f.Rule, f.Severity, f.Package, f.Version, f.Path, f.ExceptedBy != nil})
	}
	return out
}

type evalCase struct {
	name  string
	in    Input
	rules Rules // nil: the defaults of in.Channel
	want  []brief
	// wantInMessages lists substrings that must appear in the findings' messages, in order of the findings.
	wantInMessages []string
}

func runEvalCases(t *testing.T, tests []evalCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules := tc.rules
			if rules == nil {
				rules = defaults(tc.in.Channel)
			}
			got := Evaluate(tc.in, rules)
			if diff := cmp.Diff(tc.want, shorten(got)); diff != "" {
				t.Errorf("Evaluate findings mismatch (-want +got):\n%s\nmessages: %q", diff, messages(got))
			}
			for i, want := range tc.wantInMessages {
				if i >= len(got) || !strings.Contains(got[i].Message, want) {
					t.Errorf("finding %d message does not contain %q; messages: %q", i, want, messages(got))
				}
			}
		})
	}
}

func messages(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Message)
	}
	return out
}

func TestEvaluateOverwrite(t *testing.T) {
	runEvalCases(t, []evalCase{
		{name: "snapshot allows changes", in: input("snapshot", modified("foo", "1.0.0", nil))},
		{
			name: "staging is an error with an exception hint",
			in:   input("staging", modified("foo", "1.0.0", map[string]Copy{"snapshot": diff})),
			want: []brief{{RuleOverwrite, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{
				"publish them as a new version instead (for example 1.0.1). If this is deliberate, someone allowed to grant exceptions can comment `/allow overwrite foo@1.0.0 <reason>`",
			},
		},
		{
			name:           "production is an error without exception hint",
			in:             input("production", modified("foo", "1.0.0", nil)),
			want:           []brief{{RuleOverwrite, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"already exists in production and must not change"},
		},
		{
			name:  "configured off",
			in:    input("production", modified("foo", "1.0.0", nil)),
			rules: Rules{RuleOverwrite: {Severity: SeverityOff}},
		},
	})
}

func TestEvaluateRemoval(t *testing.T) {
	runEvalCases(t, []evalCase{
		{name: "snapshot removal of a promoted version", in: input("snapshot", removed("foo", "1.0.0", map[string]Copy{"staging": diff}))},
		{
			name:           "snapshot removal leaving every distribution",
			in:             input("snapshot", removed("foo", "1.0.0", nil)),
			want:           []brief{{RuleRemoval, SeverityNotice, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"no higher channel (staging, production) has it, so it leaves every distribution"},
		},
		{
			name: "staging completed promotion",
			in:   input("staging", removed("foo", "1.0.0", map[string]Copy{"production": {TreeSHA: "tree-base", Identical: true}})),
		},
		{
			name:           "staging removal with a different copy above",
			in:             input("staging", removed("foo", "1.0.0", map[string]Copy{"production": diff})),
			want:           []brief{{RuleRemoval, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"the copy in production is not identical"},
		},
		{
			name:           "staging removal of a version nowhere above",
			in:             input("staging", removed("foo", "1.0.0", map[string]Copy{"snapshot": same})),
			want:           []brief{{RuleRemoval, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"no higher channel (production) has it"},
		},
		{
			name:           "production removal",
			in:             input("production", removed("foo", "1.0.0", map[string]Copy{"staging": same})),
			want:           []brief{{RuleRemoval, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"production is the highest channel: versions released there are never removed"},
		},
	})
}

func TestEvaluateVersionOrder(t *testing.T) {
	prod := map[string]Copy{"staging": same}
	runEvalCases(t, []evalCase{
		{name: "newest on its line", in: input("production", added("foo", "1.2.4", prod, "1.2.3", "1.1.9"))},
		{name: "first version", in: input("production", added("foo", "0.1.0", prod))},
		{
			name:           "below the newest of its line",
			in:             input("production", added("foo", "1.2.3", prod, "1.2.5", "1.3.0")),
			want:           []brief{{RuleVersionOrder, SeverityError, "foo", "1.2.3", "packages/foo/1.2.3", false}},
			wantInMessages: []string{"1.2.5 is already there on the 1.2 line: versions on a line must only go up, or users of 1.2.5 never get this one. Publish it as a version above 1.2.5 (for example 1.2.6)."},
		},
		{
			name: "equal ignoring build metadata",
			in:   input("production", added("foo", "1.0.0+b", prod, "1.0.0+a")),
			want: []brief{{RuleVersionOrder, SeverityError, "foo", "1.0.0+b", "packages/foo/1.0.0+b", false}},
		},
		{
			name: "prerelease after its release",
			in:   input("production", added("foo", "1.0.0-beta.1", prod, "1.0.0")),
			want: []brief{{RuleVersionOrder, SeverityError, "foo", "1.0.0-beta.1", "packages/foo/1.0.0-beta.1", false}},
		},
		{name: "release after its prerelease", in: input("production", added("foo", "1.0.0", prod, "1.0.0-beta.1"))},
		{
			name:           "backport to an older line is a notice",
			in:             input("production", added("foo", "7.17.0", prod, "7.16.3", "8.0.0")),
			want:           []brief{{RuleVersionOrder, SeverityNotice, "foo", "7.17.0", "packages/foo/7.17.0", false}},
			wantInMessages: []string{"backport to the 7.17 line: 8.0.0 is newer"},
		},
		{name: "non-semver directories ignored", in: input("production", added("foo", "1.0.0", prod, "latest", "v9.0.0", "2.0"))},
		{name: "staging does not check order", in: input("staging", added("foo", "1.0.0", map[string]Copy{"snapshot": same}, "1.0.1"))},
	})
}

func TestEvaluatePromotionSource(t *testing.T) {
	runEvalCases(t, []evalCase{
		{name: "snapshot accepts anything", in: input("snapshot", added("foo", "1.0.0", nil))},
		{name: "staging from identical snapshot copy", in: input("staging", added("foo", "1.0.0", map[string]Copy{"snapshot": same}))},
		{
			name:           "staging missing from snapshot",
			in:             input("staging", added("foo", "1.0.0", nil)),
			want:           []brief{{RulePromotionSource, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"it is missing from snapshot. Versions reach staging only by promotion. Add it to snapshot first, then promote it with `/promote foo@1.0.0 to staging`"},
		},
		{
			name:           "staging differs from snapshot",
			in:             input("staging", added("foo", "1.0.0", map[string]Copy{"snapshot": diff})),
			want:           []brief{{RulePromotionSource, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"snapshot's copy differs (tree tree-ot, this one tree-he)"},
		},
		{name: "production from staging", in: input("production", added("foo", "1.0.0", map[string]Copy{"staging": same}))},
		{name: "production straight from snapshot", in: input("production", added("foo", "1.0.0", map[string]Copy{"staging": diff, "snapshot": same}))},
		{
			name:           "production from nowhere",
			in:             input("production", added("foo", "1.0.0", nil)),
			want:           []brief{{RulePromotionSource, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"it is missing from staging and snapshot"},
		},
	})
}

func TestEvaluateShadowed(t *testing.T) {
	runEvalCases(t, []evalCase{
		{
			name:           "snapshot edit of a production version is invisible",
			in:             input("snapshot", modified("foo", "1.0.0", map[string]Copy{"production": diff})),
			want:           []brief{{RuleShadowed, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"invisible: served from production"},
		},
		{
			name:           "served from the highest channel holding it",
			in:             input("snapshot", modified("foo", "1.0.0", map[string]Copy{"staging": same, "production": diff})),
			want:           []brief{{RuleShadowed, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"served from production"},
		},
		{
			name:           "identical copy above is a notice",
			in:             input("snapshot", added("foo", "1.0.0", map[string]Copy{"staging": same})),
			want:           []brief{{RuleShadowed, SeverityNotice, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"also exists in staging with identical contents"},
		},
		{
			name: "staging addition shadowed by production",
			in:   input("staging", added("foo", "1.0.0", map[string]Copy{"snapshot": same, "production": diff})),
			want: []brief{{RuleShadowed, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
		},
		{name: "production is never shadowed", in: input("production", added("foo", "1.0.0", map[string]Copy{"staging": same}))},
	})
}

func TestEvaluateManifest(t *testing.T) {
	missing := added("foo", "1.0.0", nil)
	missing.Manifest = Manifest{}
	wrongName := added("foo", "1.0.0", nil)
	wrongName.Manifest.Data = []byte("name: bar\nversion: 1.0.0\n")
	wrongVersion := added("foo", "1.0.0", nil)
	wrongVersion.Manifest.Data = []byte("name: foo\nversion: 1.0.1\n")
	broken := modified("foo", "1.0.0", nil)
	broken.Manifest.Data = []byte("name: [foo\n")
	bomb := added("foo", "1.0.0", nil)
	bomb.Manifest.Data = []byte(aliasBomb(9))
	runEvalCases(t, []evalCase{
		{
			name:           "missing manifest",
			in:             input("snapshot", missing),
			want:           []brief{{RuleManifest, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"has no manifest.yml"},
		},
		{
			name:           "name differs from path",
			in:             input("snapshot", wrongName),
			want:           []brief{{RuleManifest, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0/manifest.yml", false}},
			wantInMessages: []string{"says `name: bar` but the version is stored under packages/foo/. Set `name: foo`, or move the version to packages/bar/1.0.0"},
		},
		{
			name:           "version differs from path",
			in:             input("snapshot", wrongVersion),
			want:           []brief{{RuleManifest, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0/manifest.yml", false}},
			wantInMessages: []string{"says `version: 1.0.1`"},
		},
		{
			name:           "unparsable YAML",
			in:             input("snapshot", broken),
			want:           []brief{{RuleManifest, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0/manifest.yml", false}},
			wantInMessages: []string{"cannot be read: parse YAML"},
		},
		{
			name:           "alias bomb is refused, not expanded",
			in:             input("snapshot", bomb),
			want:           []brief{{RuleManifest, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0/manifest.yml", false}},
			wantInMessages: []string{ErrManifestTooComplex.Error()},
		},
		{
			name:           "version not strict semver",
			in:             input("snapshot", added("foo", "v1.0.0", nil)),
			want:           []brief{{RuleManifest, SeverityError, "foo", "v1.0.0", "packages/foo/v1.0.0", false}},
			wantInMessages: []string{"not a strict semantic version"},
		},
		{name: "removed versions are not read", in: input("snapshot", removed("foo", "1.0.0", map[string]Copy{"staging": same}))},
	})
}

func TestEvaluateDevFiles(t *testing.T) {
	dev := added("foo", "1.0.0", nil)
	dev.Paths = []string{
		"packages/foo/1.0.0/manifest.yml",
		"packages/foo/1.0.0/_dev/build/build.yml",
		"packages/foo/1.0.0/_dev/deploy/docker.yml",
		"packages/foo/1.0.0/data_stream/log/_dev/test/pipeline.json",
		"packages/foo/1.0.0/docs/my_file.md",
	}
	runEvalCases(t, []evalCase{
		{
			name: "one finding per development directory",
			in:   input("snapshot", dev),
			want: []brief{
				{RuleDevFiles, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0/_dev/build/build.yml", false},
				{RuleDevFiles, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0/data_stream/log/_dev/test/pipeline.json", false},
			},
			wantInMessages: []string{
				"packages/foo/1.0.0/_dev (2 files, e.g. packages/foo/1.0.0/_dev/build/build.yml)",
				"Remove packages/foo/1.0.0/data_stream/log/_dev from the change",
			},
		},
		{name: "underscore inside a name is fine", in: input("snapshot", added("foo", "1.0.0", nil))},
	})
}

func TestEvaluateRegistryVersion(t *testing.T) {
	withRegistry := func(dockerfile, gomod string, touched bool) Input {
		in := input("production")
		in.Registry = RegistryFiles{Touched: touched}
		if dockerfile != "" {
			in.Registry.Dockerfile = []byte(dockerfile)
		}
		if gomod != "" {
			in.Registry.GoMod = []byte(gomod)
		}
		return in
	}
	const gomod = "module x\nrequire (\n\tgithub.com/elastic/package-registry v1.15.0\n)\n"
	runEvalCases(t, []evalCase{
		{name: "ARG matches go.mod block", in: withRegistry("ARG PACKAGE_REGISTRY=v1.15.0\n", gomod, true)},
		{name: "ignoring a leading v", in: withRegistry("ARG PACKAGE_REGISTRY=1.15.0\n", gomod, true)},
		{
			name:           "ARG differs",
			in:             withRegistry("ARG PACKAGE_REGISTRY=v1.16.0\n", gomod, true),
			want:           []brief{{RuleRegistryVersion, SeverityError, "", "", "Dockerfile", false}},
			wantInMessages: []string{"Dockerfile builds on package-registry v1.16.0 but go.mod requires github.com/elastic/package-registry v1.15.0"},
		},
		{
			name:           "FROM tag differs",
			in:             withRegistry("FROM docker.elastic.co/package-registry/package-registry:v1.14.0\n", "require github.com/elastic/package-registry v1.15.0\n", true),
			want:           []brief{{RuleRegistryVersion, SeverityError, "", "", "Dockerfile", false}},
			wantInMessages: []string{"package-registry v1.14.0 but go.mod requires github.com/elastic/package-registry v1.15.0"},
		},
		{name: "untouched files are not checked", in: withRegistry("ARG PACKAGE_REGISTRY=v1.16.0\n", gomod, false)},
		{name: "no go.mod", in: withRegistry("ARG PACKAGE_REGISTRY=v1.16.0\n", "", true)},
		{name: "no Dockerfile", in: withRegistry("", gomod, true)},
	})
}

func TestEvaluateTitlePrefix(t *testing.T) {
	titled := func(title string, fix bool) Input {
		in := input("staging")
		in.Title, in.FixTitles = &title, fix
		return in
	}
	runEvalCases(t, []evalCase{
		{name: "prefixed", in: titled("[staging] Promote foo@1.0.0", false)},
		{name: "no title", in: input("staging")},
		{
			name:           "missing prefix",
			in:             titled("Add foo", false),
			want:           []brief{{Rule: RuleTitlePrefix, Severity: SeverityError}},
			wantInMessages: []string{`Edit the title to "[staging] Add foo"`},
		},
		{
			name:           "wrong channel prefix",
			in:             titled("[production] Add foo", false),
			want:           []brief{{Rule: RuleTitlePrefix, Severity: SeverityError}},
			wantInMessages: []string{`must start with "[staging]"`},
		},
		{
			name:           "bot fixes titles",
			in:             titled("Add foo", true),
			want:           []brief{{Rule: RuleTitlePrefix, Severity: SeverityNotice}},
			wantInMessages: []string{`storagebot renames it to "[staging] Add foo"`},
		},
	})
}

func TestEvaluateLayout(t *testing.T) {
	in := input("snapshot")
	in.Layout = []LayoutProblem{
		{Path: "packages/foo/1.0.0/img/logo.svg", Kind: "symlink", Package: "foo", Version: "1.0.0"},
		{Path: "packages/README.md", Kind: "not-a-directory"},
		{Path: "packages/bar/2.0.0/vendor", Kind: "submodule", Package: "bar", Version: "2.0.0"},
	}
	runEvalCases(t, []evalCase{{
		name: "every problem is an error",
		in:   in,
		want: []brief{
			{RuleLayout, SeverityError, "", "", "packages/README.md", false},
			{RuleLayout, SeverityError, "bar", "2.0.0", "packages/bar/2.0.0/vendor", false},
			{RuleLayout, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0/img/logo.svg", false},
		},
		wantInMessages: []string{"expects a directory", "is a git submodule", "is a symbolic link"},
	}})
}

func TestEvaluateExceptions(t *testing.T) {
	exception := func(rule RuleID, tree string) Exception {
		return Exception{Rule: rule, Package: "foo", Version: "1.0.0", TreeSHA: tree, By: "alice", Reason: "fix a broken dashboard"}
	}
	withExceptions := func(in Input, exs ...Exception) Input {
		in.Exceptions = exs
		return in
	}
	stagingEdit := input("staging", modified("foo", "1.0.0", map[string]Copy{"snapshot": diff}))
	runEvalCases(t, []evalCase{
		{
			name:           "exception bound to the current tree applies",
			in:             withExceptions(stagingEdit, exception(RuleOverwrite, "tree-head")),
			want:           []brief{{RuleOverwrite, SeverityNotice, "foo", "1.0.0", "packages/foo/1.0.0", true}},
			wantInMessages: []string{"Allowed by @alice: fix a broken dashboard"},
		},
		{
			name:           "exception lapses when the content changed",
			in:             withExceptions(stagingEdit, exception(RuleOverwrite, "tree-older")),
			want:           []brief{{RuleOverwrite, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"The exception granted by @alice lapsed because the content changed after it was granted (tree tree-ol then, tree-he now)"},
		},
		{
			name:           "current exception wins over an older one",
			in:             withExceptions(stagingEdit, exception(RuleOverwrite, "tree-older"), exception(RuleOverwrite, "tree-head")),
			want:           []brief{{RuleOverwrite, SeverityNotice, "foo", "1.0.0", "packages/foo/1.0.0", true}},
			wantInMessages: []string{"Allowed by @alice"},
		},
		{
			name: "exception for another rule does not apply",
			in:   withExceptions(stagingEdit, exception(RuleRemoval, "tree-head")),
			want: []brief{{RuleOverwrite, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
		},
		{
			name:           "production allows no exceptions",
			in:             withExceptions(input("production", modified("foo", "1.0.0", nil)), exception(RuleOverwrite, "tree-head")),
			want:           []brief{{RuleOverwrite, SeverityError, "foo", "1.0.0", "packages/foo/1.0.0", false}},
			wantInMessages: []string{"does not apply: overwrite allows no exceptions in production"},
		},
		{
			name: "staging removal excepted on the removed tree",
			in: withExceptions(input("staging", removed("foo", "1.0.0", nil)),
				exception(RuleRemoval, "tree-base")),
			want: []brief{{RuleRemoval, SeverityNotice, "foo", "1.0.0", "packages/foo/1.0.0", true}},
		},
		{
			name:  "configuration may allow exceptions elsewhere",
			in:    withExceptions(input("production", added("foo", "1.0.0", nil)), exception(RulePromotionSource, "tree-head")),
			rules: Rules{RulePromotionSource: {Severity: SeverityError, Exceptions: true}},
			want:  []brief{{RulePromotionSource, SeverityNotice, "foo", "1.0.0", "packages/foo/1.0.0", true}},
		},
	})
}

func TestEvaluateOrderIsDeterministic(t *testing.T) {
	title := "no prefix"
	in := input("production",
		modified("zeta", "1.0.0", nil),
		added("alpha", "1.10.0", nil),
		added("alpha", "1.9.0", nil),
	)
	in.Title = &title
	want := []brief{
		{Rule: RuleTitlePrefix, Severity: SeverityError},
		{RulePromotionSource, SeverityError, "alpha", "1.9.0", "packages/alpha/1.9.0", false},
		{RulePromotionSource, SeverityError, "alpha", "1.10.0", "packages/alpha/1.10.0", false},
		{RuleOverwrite, SeverityError, "zeta", "1.0.0", "packages/zeta/1.0.0", false},
	}
	for i := 0; i < 2; i++ {
		got := shorten(Evaluate(in, defaults("production")))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("Evaluate order mismatch (-want +got):\n%s", diff)
		}
		in.Changes[0], in.Changes[2] = in.Changes[2], in.Changes[0]
	}
}

func TestConclusion(t *testing.T) {
	tests := []struct {
		name     string
		findings []Finding
		want     string
	}{
		{name: "no findings", want: ConclusionSuccess},
		{name: "notices and warnings", findings: []Finding{{Severity: SeverityNotice}, {Severity: SeverityWarning}}, want: ConclusionSuccess},
		{name: "one error", findings: []Finding{{Severity: SeverityNotice}, {Severity: SeverityError}}, want: ConclusionFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Conclusion(tc.findings)); diff != "" {
				t.Errorf("Conclusion mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
