package exceptions

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/policy"
)

func comment(id int64, login, body string) *github.IssueComment {
	return &github.IssueComment{ID: github.Int64(id), User: &github.User{Login: github.String(login)}, Body: github.String(body)}
}

func testRoot(t *testing.T) seal.Key {
	t.Helper()
	k, err := seal.New([]byte("test secret"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	root := testRoot(t)
	key := Key(root, "Org/Storage", 7)
	a := policy.Exception{Rule: policy.RuleOverwrite, Package: "foo", Version: "1.2.3", TreeSHA: "aaa", By: "maint", Reason: "fix typo -- see #12 -->"}
	b := policy.Exception{Rule: policy.RuleRemoval, Package: "bar", Version: "2.0.0", TreeSHA: "bbb", By: "maint", Reason: "cleanup"}
	a2 := a
	a2.Reason = "regranted"
	forged := a
	forged.TreeSHA = "ccc"
	tests := []struct {
		name     string
		comments []*github.IssueComment
		want     []policy.Exception
		wantLog  string
	}{
		{name: "bot marker read back", comments: []*github.IssueComment{comment(1, "storagebot[bot]", "Allowed.\n"+Marker([]policy.Exception{a, b}, key))}, want: []policy.Exception{b, a}},
		{name: "repository name case does not matter", comments: []*github.IssueComment{comment(1, "storagebot[bot]", Marker([]policy.Exception{b}, Key(root, "org/storage", 7)))}, want: []policy.Exception{b}},
		{name: "marker by someone else ignored", comments: []*github.IssueComment{comment(2, "mallory", Marker([]policy.Exception{a}, key))}, want: []policy.Exception{}, wantLog: "did not write"},
		{name: "later grant replaces earlier", comments: []*github.IssueComment{
			comment(1, "storagebot[bot]", Marker([]policy.Exception{a}, key)),
			comment(2, "storagebot[bot]", Marker([]policy.Exception{a2}, key)),
		}, want: []policy.Exception{a2}},
		{name: "no markers", comments: []*github.IssueComment{comment(1, "storagebot[bot]", "hello")}, want: []policy.Exception{}},
		{name: "tree SHA edited in the bot's marker", comments: []*github.IssueComment{
			comment(3, "storagebot[bot]", strings.Replace(Marker([]policy.Exception{a}, key), `"aaa"`, `"ccc"`, 1)),
		}, want: []policy.Exception{}, wantLog: `"comment_id":3`},
		{name: "marker sealed for another pull request", comments: []*github.IssueComment{
			comment(4, "storagebot[bot]", Marker([]policy.Exception{forged}, Key(root, "org/storage", 8))),
		}, want: []policy.Exception{}, wantLog: "tampered"},
		{name: "marker sealed in another repository", comments: []*github.IssueComment{
			comment(4, "storagebot[bot]", Marker([]policy.Exception{forged}, Key(root, "org/other", 7))),
		}, want: []policy.Exception{}, wantLog: "tampered"},
		{name: "unsealed marker (old format or forged)", comments: []*github.IssueComment{
			comment(5, "storagebot[bot]", `<!-- storagebot:exceptions [{"rule":"overwrite","package":"foo","version":"1.2.3","tree_sha":"ccc"}] -->`),
		}, want: []policy.Exception{}, wantLog: `"unsealed":true`},
		{name: "no key trusts nothing", comments: []*github.IssueComment{comment(1, "storagebot[bot]", Marker([]policy.Exception{a}, seal.Key{}))}, want: []policy.Exception{}, wantLog: "tampered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			ctx := zerolog.New(&logs).WithContext(context.Background())
			verify := key
			if tc.name == "no key trusts nothing" {
				verify = seal.Key{}
			}
			got := FromComments(ctx, tc.comments, "storagebot[bot]", verify)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if tc.wantLog != "" && !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("logs do not mention %q:\n%s", tc.wantLog, logs.String())
			}
			if tc.wantLog == "" && logs.Len() > 0 {
				t.Errorf("unexpected logs:\n%s", logs.String())
			}
		})
	}
}

func TestMarkerCannotCloseEarly(t *testing.T) {
	m := Marker([]policy.Exception{{Reason: "a --> b"}}, testRoot(t))
	if got := len(markerRE.FindAllString(m, -1)); got != 1 {
		t.Fatalf("marker %q matched %d times", m, got)
	}
	if i := len(markerPrefix); m[i:len(m)-4] == "" || strings.Contains(m[i:len(m)-4], "--") {
		t.Errorf("marker body %q contains a comment terminator", m)
	}
}
