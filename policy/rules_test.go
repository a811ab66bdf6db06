package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultRules(t *testing.T) {
	err := Setting{Severity: SeverityError}
	off := Setting{Severity: SeverityOff}
	excepted := Setting{Severity: SeverityError, Exceptions: true}
	always := Rules{RuleManifest: err, RuleDevFiles: err, RuleRegistryVersion: err, RuleTitlePrefix: err, RuleLayout: err}
	with := func(extra Rules) Rules {
		r := always.Clone()
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	snapshot := with(Rules{RuleOverwrite: off, RuleRemoval: {Severity: SeverityNotice}, RuleVersionOrder: off,
		RulePromotionSource: off, RuleShadowed: err})
	staging := with(Rules{RuleOverwrite: excepted, RuleRemoval: excepted, RuleVersionOrder: off,
		RulePromotionSource: err, RuleShadowed: err})
	production := with(Rules{RuleOverwrite: err, RuleRemoval: err, RuleVersionOrder: err,
		RulePromotionSource: err, RuleShadowed: off})
	tests := []struct {
		name            string
		position, count int
		want            Rules
	}{
		{name: "snapshot", position: 0, count: 3, want: snapshot},
		{name: "staging", position: 1, count: 3, want: staging},
		{name: "production", position: 2, count: 3, want: production},
		{name: "second of four is staging-like", position: 1, count: 4, want: staging},
		{name: "third of four is staging-like", position: 2, count: 4, want: staging},
		{name: "highest of two is production-like", position: 1, count: 2, want: production},
		{name: "lowest of two is snapshot-like", position: 0, count: 2, want: snapshot},
		{name: "a lone channel has nothing to promote from", position: 0, count: 1,
			want: with(Rules{RuleOverwrite: err, RuleRemoval: err, RuleVersionOrder: err, RulePromotionSource: off, RuleShadowed: off})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := DefaultRules(tc.position, tc.count)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DefaultRules(%d, %d) mismatch (-want +got):\n%s", tc.position, tc.count, diff)
			}
			for _, id := range AllRules() {
				if _, ok := got[id]; !ok {
					t.Errorf("DefaultRules(%d, %d) has no setting for %s", tc.position, tc.count, id)
				}
			}
		})
	}
}

func TestKnownRuleAndSeverity(t *testing.T) {
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{name: "known rule", got: KnownRule(RuleShadowed), want: true},
		{name: "unknown rule", got: KnownRule("overwrites"), want: false},
		{name: "off is a known severity", got: KnownSeverity(SeverityOff), want: true},
		{name: "misspelt severity", got: KnownSeverity("eror"), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
