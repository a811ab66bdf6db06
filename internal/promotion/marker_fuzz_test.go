package promotion

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/seal"
)

// fuzzMarkerKey is the key of "org/storage" under a fixed test secret.
func fuzzMarkerKey(t *testing.T) seal.Key {
	t.Helper()
	root, err := seal.New([]byte("fuzz secret"))
	if err != nil {
		t.Fatal(err)
	}
	return MarkerKey(root, "org/storage")
}

// markerViaJSON is m after a trip through JSON (invalid UTF-8 becomes U+FFFD), which is all a PR body can
// give back.
func markerViaJSON(t *testing.T, m Marker) Marker {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %+v: %v", m, err)
	}
	var out Marker
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	out.Kind = m.Kind
	return out
}

// FuzzParseMarker wraps a sealed PR body marker of arbitrary content in arbitrary text. The reader must never
// accept text the server did not seal (nor a promotion marker relabelled as a removal), and must read back
// exactly what was sealed when nothing before it looks like a marker.
func FuzzParseMarker(f *testing.F) {
	f.Add("Promotes apm.\n\n", "", true, "staging", "apm", "8.1.0", "snapshot", "abc", "def", 12, "alice")
	f.Add("", "<!-- storagebot:removal {} -->", false, "snapshot", "a--b", "-->", "}", "{", "", 0, "")
	f.Add("<!-- storagebot:promotion {", "", true, "x", "", "", "", "", "", -1, "\xff")
	f.Add("", "", false, "", "", "", "", "", "", 0, "")
	f.Fuzz(func(t *testing.T, before, after string, promotion bool, target, pkg, version, channel, tree, commit string, fromPR int, by string) {
		key := fuzzMarkerKey(t)
		kind := "removal"
		if promotion {
			kind = "promotion"
		}
		m := Marker{Kind: kind, Target: target, Commit: commit, By: by, FromPR: fromPR, PromotedIn: fromPR,
			Versions: []MarkedVersion{{Package: pkg, Version: version, Channel: channel, Tree: tree}}}
		ctx := context.Background()
		pr := func(body string) *github.PullRequest {
			return &github.PullRequest{Number: github.Int(3), Body: github.String(body)}
		}

		for _, text := range []string{before, after, before + after} {
			if got, ok := ParseMarker(ctx, pr(text), key); ok {
				t.Fatalf("ParseMarker(%q) = %+v from text the server never sealed", text, got)
			}
		}
		// The MAC covers the kind: relabelling the marker must not verify.
		sealed := m.String(key)
		other := "promotion"
		if promotion {
			other = "removal"
		}
		relabelled := strings.Replace(sealed, "storagebot:"+kind+" ", "storagebot:"+other+" ", 1)
		if got, ok := ParseMarker(ctx, pr(relabelled), key); ok {
			t.Fatalf("ParseMarker accepted a %s marker relabelled %s: %+v", kind, other, got)
		}

		got, ok := ParseMarker(ctx, pr(before+sealed+after), key)
		want := markerViaJSON(t, m)
		if ok {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("ParseMarker returned a marker the server never sealed (-sealed +got):\n%s", diff)
			}
		} else if !strings.Contains(before, "<!--") {
			t.Fatalf("ParseMarker did not read back the sealed marker in %q", before+sealed+after)
		}
	})
}

// FuzzIsFollowUpNote checks the follow-up note marker: the note counts only when the bot wrote it and it
// holds the sealed marker of that very merged PR, whatever text surrounds it.
func FuzzIsFollowUpNote(f *testing.F) {
	f.Add("Removal follow-up:\n\n", "", "storagebot[bot]", 12, 12)
	f.Add("<!-- storagebot:followup pr-1 ", " -->", "alice", 1, 12)
	f.Add("", "", "STORAGEBOT[BOT]", 1, 10)
	f.Add("<!-- storagebot:followup pr-5 x -->", "", "storagebot[bot]", 5, 5)
	f.Fuzz(func(t *testing.T, before, after, author string, sealedFor, asked int) {
		const bot = "storagebot[bot]"
		key := fuzzMarkerKey(t)
		ctx := context.Background()
		note := func(login, body string) *github.IssueComment {
			return &github.IssueComment{ID: github.Int64(1), User: &github.User{Login: github.String(login)}, Body: github.String(body)}
		}
		for _, text := range []string{before, after, before + after} {
			if IsFollowUpNote(ctx, note(bot, text), bot, asked, key) {
				t.Fatalf("IsFollowUpNote(%q, pr-%d) = true for text the server never sealed", text, asked)
			}
		}
		body := before + FollowUpNoteMarker(sealedFor, key) + after
		got := IsFollowUpNote(ctx, note(author, body), bot, asked, key)
		want := strings.EqualFold(author, bot) && sealedFor == asked
		if got && !want {
			t.Fatalf("IsFollowUpNote(by %q, sealed for pr-%d, asked pr-%d) = true; want false", author, sealedFor, asked)
		}
		if want && !got {
			t.Fatalf("IsFollowUpNote(by %q, pr-%d) = false for the bot's own sealed note %q", author, asked, body)
		}
		if IsFollowUpNote(ctx, note(bot, body), bot, asked, seal.Key{}) {
			t.Fatal("IsFollowUpNote = true under the zero key, which must trust nothing")
		}
	})
}
