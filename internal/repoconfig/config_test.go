package repoconfig

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/storagebot/storagebot/policy"
)

func TestParseExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "storagebot.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse example: %v", err)
	}
	want := Default()
	want.Rules["staging"][policy.RuleVersionOrder] = policy.Setting{Severity: policy.SeverityWarning}
	want.Distributions = []Distribution{
		{Name: "production", Branch: "production", Image: "ghcr.io/storage-org/distribution-production",
			Build:  Build{Workflow: "distribution.yml", Timeout: DefaultBuildTimeout},
			Deploy: Deploy{Kubernetes: &KubernetesTarget{Namespace: "package-registry", Deployment: "production"}, Timeout: DefaultDeployTimeout},
			Verify: Verify{Registry: "https://epr.example", Timeout: DefaultVerifyTimeout}},
		{Name: "staging", Branch: "staging", Base: "production", Image: "ghcr.io/storage-org/distribution-staging",
			Build:  Build{Workflow: "distribution.yml", Inputs: map[string]string{"platforms": "linux/amd64"}, Timeout: 30 * time.Minute},
			Deploy: Deploy{Kubernetes: &KubernetesTarget{Namespace: "package-registry", Deployment: "staging"}, Timeout: 5 * time.Minute},
			Verify: Verify{Registry: "https://epr-staging.example", Timeout: 5 * time.Minute}},
		{Name: "snapshot", Branch: "snapshot", Base: "staging", Image: "ghcr.io/storage-org/distribution-snapshot",
			Build:  Build{Workflow: "distribution.yml", Timeout: DefaultBuildTimeout},
			Deploy: Deploy{Workflow: "deploy-snapshot.yml", Timeout: DefaultDeployTimeout},
			Verify: Verify{Timeout: DefaultVerifyTimeout}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse example mismatch (-want +got):\n%s", diff)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		modify func(c *Config) // applied to Default() to build the expected configuration
	}{
		{name: "empty file", yaml: ""},
		{name: "comments only", yaml: "# nothing configured\n"},
		{name: "explicit defaults", yaml: "fix_titles: false\nexceptions: {permission: maintain}\n"},
		{
			name: "renamed channels get defaults by position",
			yaml: "channels:\n  - {name: dev, branch: main}\n  - name: release\n",
			modify: func(c *Config) {
				*c = *withDefaults([]Channel{{Name: "dev", Branch: "main"}, {Name: "release", Branch: "release"}})
			},
		},
		{
			name: "bare severity applies to every channel",
			yaml: "rules:\n  dev-files: warning\n",
			modify: func(c *Config) {
				for _, ch := range c.Channels {
					c.Rules[ch.Name][policy.RuleDevFiles] = policy.Setting{Severity: policy.SeverityWarning}
				}
			},
		},
		{
			name: "exceptions alone keep the default severity",
			yaml: "rules:\n  overwrite:\n    production: {exceptions: true}\n",
			modify: func(c *Config) {
				c.Rules["production"][policy.RuleOverwrite] = policy.Setting{Severity: policy.SeverityError, Exceptions: true}
			},
		},
		{
			name: "one promote permission for every target",
			yaml: "commands:\n  promote: admin\n  recheck: read\n",
			modify: func(c *Config) {
				c.Commands.Promote = map[string]Permission{"staging": Admin, "production": Admin}
				c.Commands.Recheck = Read
			},
		},
		{
			name: "switches and interval",
			yaml: "fix_titles: true\nauto_merge_removals: true\nreconcile:\n  interval: 1h\n",
			modify: func(c *Config) {
				c.FixTitles, c.AutoMergeRemovals, c.Reconcile.Interval = true, true, time.Hour
			},
		},
		{
			name: "dashboard opted out",
			yaml: "dashboard: false\n",
			modify: func(c *Config) {
				c.Dashboard = false
			},
		},
		{
			name: "aliases are followed",
			yaml: "commands:\n  allow: &p admin\n  rebuild: *p\n",
			modify: func(c *Config) {
				c.Commands.Allow, c.Commands.Rebuild = Admin, Admin
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			if tc.modify != nil {
				tc.modify(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChannelLookups(t *testing.T) {
	c := Default()
	type result struct {
		ByBranch, ByName Channel
		OKBranch, OKName bool
		Position         int
		Above            Channel
		OKAbove          bool
		Below, Higher    []Channel
		Promote          Permission
		OKPromote        bool
		HasRules         bool
	}
	lookup := func(name string) result {
		var r result
		r.ByBranch, r.OKBranch = c.ChannelByBranch(name)
		r.ByName, r.OKName = c.ChannelByName(name)
		r.Position = c.Position(name)
		r.Above, r.OKAbove = c.Above(name)
		r.Below, r.Higher = c.Below(name), c.Higher(name)
		r.Promote, r.OKPromote = c.PromotePermission(name)
		r.HasRules = c.RulesFor(name) != nil
		return r
	}
	snapshot, staging, production := c.Channels[0], c.Channels[1], c.Channels[2]
	tests := []struct {
		name string
		want result
	}{
		{name: "snapshot", want: result{ByBranch: snapshot, OKBranch: true, ByName: snapshot, OKName: true, Position: 0,
			Above: staging, OKAbove: true, Higher: []Channel{staging, production}, HasRules: true}},
		{name: "staging", want: result{ByBranch: staging, OKBranch: true, ByName: staging, OKName: true, Position: 1,
			Above: production, OKAbove: true, Below: []Channel{snapshot}, Higher: []Channel{production},
			Promote: Write, OKPromote: true, HasRules: true}},
		{name: "production", want: result{ByBranch: production, OKBranch: true, ByName: production, OKName: true, Position: 2,
			Below: []Channel{staging, snapshot}, Higher: []Channel{}, Promote: Maintain, OKPromote: true, HasRules: true}},
		{name: "unknown", want: result{Position: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, lookup(tc.name), cmpEmptyAsNil); diff != "" {
				t.Errorf("lookups mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmptyAsNil = cmp.FilterValues(func(a, b []Channel) bool { return len(a) == 0 && len(b) == 0 },
	cmp.Comparer(func(a, b []Channel) bool { return true }))

func TestRulesForIsACopy(t *testing.T) {
	c := Default()
	r := c.RulesFor("production")
	r[policy.RuleOverwrite] = policy.Setting{Severity: policy.SeverityOff}
	if diff := cmp.Diff(policy.Setting{Severity: policy.SeverityError}, c.RulesFor("production")[policy.RuleOverwrite]); diff != "" {
		t.Errorf("RulesFor leaked a change (-want +got):\n%s", diff)
	}
}

func TestPermissionMeets(t *testing.T) {
	tests := []struct {
		name     string
		have     Permission
		required Permission
		want     bool
	}{
		{name: "equal", have: Write, required: Write, want: true},
		{name: "higher", have: Admin, required: Maintain, want: true},
		{name: "lower", have: Triage, required: Write, want: false},
		{name: "read meets read", have: Read, required: Read, want: true},
		{name: "unknown have", have: "push", required: Read, want: false},
		{name: "unknown required", have: Admin, required: "owner", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.have.Meets(tc.required)); diff != "" {
				t.Errorf("%s.Meets(%s) mismatch (-want +got):\n%s", tc.have, tc.required, diff)
			}
		})
	}
}

// TestDistributionDefaultsAndOrder checks the default bases (staging on production, snapshot on staging,
// production on the registry image) and that Distributions lists bases before dependents whatever the file
// order.
func TestDistributionDefaultsAndOrder(t *testing.T) {
	const d = "image: r/d, build: {workflow: b.yml}, deploy: {workflow: d.yml}"
	cfg, err := Parse([]byte("distributions:\n  - {name: snapshot, " + d + "}\n  - {name: staging, " + d + "}\n  - {name: production, " + d + "}\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	type nb struct{ Name, Branch, Base string }
	var got []nb
	for _, x := range cfg.Distributions {
		got = append(got, nb{x.Name, x.Branch, x.Base})
	}
	want := []nb{{"production", "production", ""}, {"staging", "staging", "production"}, {"snapshot", "snapshot", "staging"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("distributions (-want +got):\n%s", diff)
	}
	var deps []string
	for _, x := range cfg.Dependents("production") {
		deps = append(deps, x.Name)
	}
	if diff := cmp.Diff([]string{"staging", "snapshot"}, deps); diff != "" {
		t.Errorf("Dependents(production) (-want +got):\n%s", diff)
	}
}
