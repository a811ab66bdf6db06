package exceptions

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/policy"
)

// viaJSON is what an exception looks like after a trip through JSON: invalid UTF-8 becomes U+FFFD, which is
// what any stored marker gives back, so the round trip is compared against it rather than the raw input.
func viaJSON(t *testing.T, e policy.Exception) policy.Exception {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal %+v: %v", e, err)
	}
	var out policy.Exception
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return out
}

// FuzzFromComments feeds the exception reader comments holding a sealed marker wrapped in arbitrary text, by
// the bot or by someone else, and comments of arbitrary text. Whatever the text, the reader must never return
// an exception the server did not seal for this pull request, and must give back exactly what it sealed when
// the surrounding text holds no other marker.
func FuzzFromComments(f *testing.F) {
	f.Add("Allowed.\n\n", "", "overwrite", "foo", "1.2.3", "abc", "fix typo -- see #12 -->", "storagebot[bot]", false)
	f.Add("", "<!-- storagebot:exceptions [] -->", "removal", "bar", "2.0.0", "def", "]", "someone", false)
	f.Add("<!-- storagebot:exceptions [{\"rule\":\"overwrite\"}] -->", "", "overwrite", "*", "*", "", "a---b", "STORAGEBOT[BOT]", true)
	f.Add("<!-- storagebot:exceptions x [", "", "overwrite", "p", "v", "t", "\xff\xfe", "storagebot[bot]", false)
	f.Add("", "", "", "", "", "", "", "", true)
	f.Fuzz(func(t *testing.T, before, after, rule, pkg, version, tree, reason, author string, otherPR bool) {
		const bot = "storagebot[bot]"
		root, err := seal.New([]byte("fuzz secret"))
		if err != nil {
			t.Fatal(err)
		}
		key := Key(root, "org/storage", 7)
		granted := policy.Exception{Rule: policy.RuleID(rule), Package: pkg, Version: version, TreeSHA: tree, By: "maint", Reason: reason}
		sealKey := key
		if otherPR {
			sealKey = Key(root, "org/storage", 8) // a marker copied from another pull request
		}
		body := before + Marker([]policy.Exception{granted}, sealKey) + after
		ctx := context.Background()

		// Arbitrary text alone carries no exception: the fuzzer cannot compute a MAC.
		for _, text := range []string{before, after, before + after} {
			if got := FromComments(ctx, []*github.IssueComment{comment(1, bot, text)}, bot, key); len(got) != 0 {
				t.Fatalf("FromComments(%q) = %+v from text the server never sealed", text, got)
			}
		}

		got := FromComments(ctx, []*github.IssueComment{comment(2, author, body)}, bot, key)
		want := viaJSON(t, granted)
		for _, e := range got {
			if e != want {
				t.Fatalf("FromComments returned %+v, which the server never sealed (it sealed %+v)", e, want)
			}
		}
		mine := strings.EqualFold(author, bot)
		if (!mine || otherPR) && len(got) != 0 {
			t.Fatalf("FromComments = %+v from a marker by %q sealed for another PR %v; want none", got, author, otherPR)
		}
		if mine && !otherPR && !strings.Contains(before, "<!--") {
			// Nothing before the marker can start a match that swallows it, so the grant must be read back.
			if diff := cmp.Diff([]policy.Exception{want}, got); diff != "" {
				t.Fatalf("sealed grant not read back from %q (-want +got):\n%s", body, diff)
			}
		}
	})
}
