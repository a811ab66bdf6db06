package exceptions

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/policy"
)

func comment(login, body string) *github.IssueComment {
	return &github.IssueComment{User: &github.User{Login: github.String(login)}, Body: github.String(body)}
}

func TestRoundTrip(t *testing.T) {
	a := policy.Exception{Rule: policy.RuleOverwrite, Package: "foo", Version: "1.2.3", TreeSHA: "aaa", By: "maint", Reason: "fix typo -- see #12 -->"}
	b := policy.Exception{Rule: policy.RuleRemoval, Package: "bar", Version: "2.0.0", TreeSHA: "bbb", By: "maint", Reason: "cleanup"}
	a2 := a
	a2.Reason = "regranted"
	tests := []struct {
		name     string
		comments []*github.IssueComment
		want     []policy.Exception
	}{
		{name: "bot marker read back", comments: []*github.IssueComment{comment("storagebot[bot]", "Allowed.\n"+Marker([]policy.Exception{a, b}))}, want: []policy.Exception{b, a}},
		{name: "marker by someone else ignored", comments: []*github.IssueComment{comment("mallory", Marker([]policy.Exception{a}))}, want: []policy.Exception{}},
		{name: "later grant replaces earlier", comments: []*github.IssueComment{
			comment("storagebot[bot]", Marker([]policy.Exception{a})),
			comment("storagebot[bot]", Marker([]policy.Exception{a2})),
		}, want: []policy.Exception{a2}},
		{name: "no markers", comments: []*github.IssueComment{comment("storagebot[bot]", "hello")}, want: []policy.Exception{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FromComments(tc.comments, "storagebot[bot]")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestMarkerCannotCloseEarly(t *testing.T) {
	m := Marker([]policy.Exception{{Reason: "a --> b"}})
	if got := len(markerRE.FindAllString(m, -1)); got != 1 {
		t.Fatalf("marker %q matched %d times", m, got)
	}
	if i := len(markerPrefix); m[i:len(m)-4] == "" || containsCommentEnd(m[i:len(m)-4]) {
		t.Errorf("marker body %q contains a comment terminator", m)
	}
}

func containsCommentEnd(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '-' && s[i+1] == '-' {
			return true
		}
	}
	return false
}
