package repoconfig

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// problems flattens a Parse error into its *Error values.
func problems(t *testing.T, err error) []Error {
	t.Helper()
	var list Errors
	if errors.As(err, &list) {
		var out []Error
		for _, e := range list {
			out = append(out, *e)
		}
		return out
	}
	var one *Error
	if !errors.As(err, &one) {
		t.Fatalf("Parse error %v (%T) is neither *Error nor Errors", err, err)
	}
	return []Error{*one}
}

// at builds the expected error at line:column.
func at(line, column int, field, msg string) Error {
	return Error{File: Path, Line: line, Column: column, Field: field, Msg: msg}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []Error
	}{
		{
			name: "unknown severity",
			yaml: "rules:\n  overwrite:\n    staging: eror\n",
			want: []Error{at(3, 14, "rules.overwrite.staging", `unknown severity "eror" (want error, warning, notice or off)`)},
		},
		{
			name: "unknown top-level key",
			yaml: "fix_titles: true\nfix_title: true\n",
			want: []Error{at(2, 1, "fix_title", `unknown key "fix_title" (want channels, rules, fix_titles, auto_merge_removals, commands, exceptions, distributions, reconcile, dashboard)`)},
		},
		{
			name: "unknown nested key",
			yaml: "rules:\n  overwrite:\n    production: {severity: error, exception: true}\n",
			want: []Error{at(3, 35, "rules.overwrite.production.exception", `unknown key "exception" (want severity, exceptions)`)},
		},
		{
			name: "unknown rule",
			yaml: "rules:\n  overwrites: error\n",
			want: []Error{at(2, 3, "rules.overwrites", `unknown rule "overwrites" (want overwrite, removal, version-order, promotion-source, shadowed, manifest, dev-files, registry-version, title-prefix, layout)`)},
		},
		{
			name: "rule for an unknown channel",
			yaml: "rules:\n  removal:\n    prod: error\n",
			want: []Error{at(3, 5, "rules.removal.prod", `unknown channel "prod" (want snapshot, staging, production)`)},
		},
		{
			name: "exceptions not a boolean",
			yaml: "rules:\n  removal:\n    staging: {exceptions: yes}\n",
			want: []Error{at(3, 27, "rules.removal.staging.exceptions", `want true or false, got "yes"`)},
		},
		{
			name: "syntax error",
			yaml: "fix_titles: true\n\tauto_merge_removals: true\n",
			want: []Error{at(2, 0, "", "invalid YAML: found a tab character that violates indentation")},
		},
		{
			name: "duplicate key",
			yaml: "fix_titles: true\nfix_titles: false\n",
			want: []Error{at(2, 1, "fix_titles", `duplicate key "fix_titles"`)},
		},
		{
			name: "merge key",
			yaml: "base: &b {allow: admin}\ncommands:\n  <<: *b\n",
			want: []Error{
				at(1, 1, "base", `unknown key "base" (want channels, rules, fix_titles, auto_merge_removals, commands, exceptions, distributions, reconcile, dashboard)`),
				at(3, 3, "commands", "merge keys (<<) are not supported; write the settings out"),
			},
		},
		{
			name: "top level is a list",
			yaml: "- a\n",
			want: []Error{at(1, 1, "", `want a mapping of keys to values, got a list`)},
		},
		{
			name: "no channels",
			yaml: "channels: []\n",
			want: []Error{at(1, 11, "channels", "at least one channel is needed")},
		},
		{
			name: "channels not a list",
			yaml: "channels: snapshot\n",
			want: []Error{at(1, 11, "channels", `want a list of channels from lowest to highest, got "snapshot"`)},
		},
		{
			name: "duplicate channel name and branch",
			yaml: "channels:\n  - {name: a, branch: x}\n  - {name: a, branch: y}\n  - {name: b, branch: x}\n",
			want: []Error{
				at(3, 12, "channels[1].name", `channel "a" is listed twice`),
				at(4, 23, "channels[2].branch", `branch "x" holds two channels`),
			},
		},
		{
			name: "channel without name",
			yaml: "channels:\n  - branch: main\n",
			want: []Error{at(2, 5, "channels[0]", "a channel needs a name")},
		},
		{
			name: "invalid channel name and branch",
			yaml: "channels:\n  - {name: \"to prod\", branch: \"a..b\"}\n",
			want: []Error{
				at(2, 12, "channels[0].name", `invalid channel name "to prod" (want letters, digits, '.', '_' or '-')`),
				at(2, 31, "channels[0].branch", `invalid branch "a..b": it must not contain '..', '//' or '@{'`),
			},
		},
		{
			name: "unknown permission",
			yaml: "commands:\n  allow: writ\n",
			want: []Error{at(2, 10, "commands.allow", `unknown permission "writ" (want read, triage, write, maintain or admin)`)},
		},
		{
			name: "unknown command",
			yaml: "commands:\n  merge: write\n",
			want: []Error{at(2, 3, "commands.merge", `unknown key "merge" (want promote, allow, rebuild, recheck)`)},
		},
		{
			name: "promote to unknown and lowest channels",
			yaml: "commands:\n  promote:\n    snapshot: write\n    prod: admin\n",
			want: []Error{
				at(3, 5, "commands.promote.snapshot", "snapshot is the lowest channel: nothing is promoted into it"),
				at(4, 5, "commands.promote.prod", `unknown channel "prod" (want snapshot, staging, production)`),
			},
		},
		{
			name: "exceptions permission",
			yaml: "exceptions:\n  permission: owner\n",
			want: []Error{at(2, 15, "exceptions.permission", `unknown permission "owner" (want read, triage, write, maintain or admin)`)},
		},
		{
			name: "distribution on a branch that is not a channel",
			yaml: "distributions:\n  - {name: prod, branch: main, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n",
			want: []Error{at(2, 26, "distributions[0].branch", `branch "main" is not a channel branch (want one of snapshot, staging, production)`)},
		},
		{
			name: "distribution not named after a channel needs a branch",
			yaml: "distributions:\n  - {name: prod, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n",
			want: []Error{at(2, 5, "distributions[0].branch", `distribution "prod" is not named after a channel, so it needs a branch (one of snapshot, staging, production)`)},
		},
		{
			name: "distribution without name, image, workflow or deploy",
			yaml: "distributions:\n  - {branch: staging}\n  - {name: staging}\n",
			want: []Error{
				at(2, 5, "distributions[0]", "a distribution needs a name (e.g. production)"),
				at(3, 5, "distributions[1].image", "a distribution needs the image its build pushes (e.g. ghcr.io/org/distribution)"),
				at(3, 5, "distributions[1].build.workflow", "a distribution needs the workflow that builds it (e.g. distribution.yml)"),
				at(3, 5, "distributions[1].deploy", "a distribution needs deploy.kubernetes {namespace, deployment} or deploy.workflow"),
			},
		},
		{
			name: "a distribution listed twice",
			yaml: "distributions:\n  - {name: staging, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n  - {name: staging, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n",
			want: []Error{at(3, 12, "distributions[1].name", `distribution "staging" is listed twice`)},
		},
		{
			name: "unknown base",
			yaml: "distributions:\n  - {name: staging, base: production, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n",
			want: []Error{at(2, 27, "distributions[0].base", `base "production" is not a distribution listed here (or "" for the registry image)`)},
		},
		{
			name: "bases form a cycle",
			yaml: "distributions:\n  - {name: staging, base: snapshot, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n  - {name: snapshot, base: staging, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n",
			want: []Error{
				at(2, 27, "distributions[0].base", "bases form a cycle: staging → snapshot → staging"),
				at(3, 28, "distributions[1].base", "bases form a cycle: snapshot → staging → snapshot"),
			},
		},
		{
			name: "distribution is its own base",
			yaml: "distributions:\n  - {name: staging, base: staging, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n",
			want: []Error{at(2, 27, "distributions[0].base", "bases form a cycle: staging → staging")},
		},
		{
			name: "invalid verify URL",
			yaml: "distributions:\n  - {name: staging, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}, verify: {registry: \"epr.example\"}}\n",
			want: []Error{at(2, 105, "distributions[0].verify.registry", `invalid URL "epr.example" (want the registry's absolute http or https base URL)`)},
		},
		{
			name: "kubernetes and workflow deploy at once, without a deployment",
			yaml: "distributions:\n  - name: staging\n    image: r/d\n    build: {workflow: b.yml}\n    deploy: {workflow: d.yml, kubernetes: {namespace: epr}}\n",
			want: []Error{
				at(5, 13, "distributions[0].deploy", "set deploy.kubernetes or deploy.workflow, not both"),
				at(5, 43, "distributions[0].deploy.kubernetes", "deploy.kubernetes needs both namespace and deployment"),
			},
		},
		{
			name: "reserved build input and bad timeout",
			yaml: "distributions:\n  - name: staging\n    image: r/d\n    build: {workflow: b.yml, inputs: {ref: main}, timeout: soon}\n    deploy: {workflow: d.yml}\n",
			want: []Error{
				at(4, 39, "distributions[0].build.inputs.ref", `input "ref" is set by storagebot itself`),
				at(4, 60, "distributions[0].build.timeout", `invalid duration "soon" (want e.g. 10m or 1h)`),
			},
		},
		{
			name: "reconcile interval",
			yaml: "reconcile:\n  interval: 10\n",
			want: []Error{at(2, 13, "reconcile.interval", `invalid duration "10" (want e.g. 10m or 1h)`)},
		},
		{
			name: "reconcile interval too short",
			yaml: "reconcile: {interval: 5s}\n",
			want: []Error{at(1, 23, "reconcile.interval", "interval 5s is shorter than the minimum of 1m0s")},
		},
		{
			name: "boolean switch",
			yaml: "auto_merge_removals: \"true\"\n",
			want: []Error{at(1, 22, "auto_merge_removals", `want true or false, got "true"`)},
		},
		{
			name: "file too large",
			yaml: "#" + strings.Repeat("x", MaxSize),
			want: []Error{at(0, 0, "", "the file is "+strconv.Itoa(MaxSize+1)+" bytes, more than the 262144 allowed")},
		},
		{
			name: "alias bomb",
			yaml: aliasBomb(6),
			want: []Error{at(5, 7, "", "the document expands to more than 10000 YAML nodes through aliases (or an alias refers to itself)")},
		},
		{
			name: "recursive alias",
			yaml: "commands: &c {allow: *c}\n",
			want: []Error{at(1, 22, "", "the document expands to more than 10000 YAML nodes through aliases (or an alias refers to itself)")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want errors", cfg)
			}
			if diff := cmp.Diff(tc.want, problems(t, err)); diff != "" {
				t.Errorf("Parse errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "with line, column and field",
			err:  &Error{File: "storagebot.yml", Line: 12, Column: 3, Field: "rules.overwrite.staging", Msg: `unknown severity "eror" (want error, warning, notice or off)`},
			want: `storagebot.yml:12:3: rules.overwrite.staging: unknown severity "eror" (want error, warning, notice or off)`,
		},
		{name: "whole file", err: &Error{File: Path, Msg: "too large"}, want: ".github/storagebot.yml: too large"},
		{name: "line only", err: &Error{File: Path, Line: 3, Msg: "invalid YAML"}, want: ".github/storagebot.yml:3: invalid YAML"},
		{
			name: "several",
			err:  Errors{{File: Path, Line: 1, Column: 1, Field: "a", Msg: "x"}, {File: Path, Line: 2, Column: 1, Field: "b", Msg: "y"}},
			want: ".github/storagebot.yml:1:1: a: x\n.github/storagebot.yml:2:1: b: y",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.err.Error()); diff != "" {
				t.Errorf("Error() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// aliasBomb builds a "billion laughs" document under a known key.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("commands:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat("*a"+strconv.Itoa(i-1)+", ", 10), ", ")
		b.WriteString("  a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [" + refs + "]\n")
	}
	return b.String()
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("channels:\n  - {name: snapshot, branch: snapshot}\n  - {name: production}\n"))
	f.Add([]byte("rules:\n  overwrite: {staging: {severity: error, exceptions: true}}\n"))
	f.Add([]byte("commands: {promote: {staging: write}, allow: maintain}\n"))
	f.Add([]byte("distributions:\n  - {name: staging, base: staging, image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}}\n"))
	f.Add([]byte("commands: &c {allow: *c}\n"))
	f.Add([]byte(aliasBomb(3)))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", cfg, err)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error %v (%T) carries no *Error", err, err)
			}
			return
		}
		if len(cfg.Channels) == 0 {
			t.Fatal("Parse accepted a configuration without channels")
		}
		for _, ch := range cfg.Channels {
			if cfg.RulesFor(ch.Name) == nil {
				t.Fatalf("channel %q has no rules", ch.Name)
			}
		}
	})
}

func TestParseFileNamesTheFile(t *testing.T) {
	const name = "ci/storagebot-staging.yml"
	tests := []struct {
		name string
		data string
	}{
		{name: "one problem", data: "channels: 3\n"},
		{name: "several problems", data: "fix_titles: maybe\nrules:\n  overwrite:\n    staging: eror\n"},
		{name: "invalid YAML", data: "rules: [\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile(name, []byte(tc.data))
			if err == nil {
				t.Fatal("no error for an invalid configuration")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, name+":") || strings.Contains(line, Path) {
					t.Errorf("error line %q does not name %s (or still names %s)", line, name, Path)
				}
			}
		})
	}
}
