package promotion

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/seal"
)

// followUpNotePrefix starts every follow-up note marker of merged PR n, sealed or not.
func followUpNotePrefix(merged int) string {
	return fmt.Sprintf("<!-- storagebot:followup pr-%d", merged)
}

// FollowUpNoteMarker identifies the bot's follow-up note on a merged PR, so it is posted once per PR. It is
// sealed with key (from MarkerKey): any writer can edit a bot comment, and an unsealed marker pasted into
// one would otherwise stop the real note from ever being posted. The MAC covers the PR number only, so the
// marker is the same on every replica and redelivery; it can only be copied from the note it identifies.
func FollowUpNoteMarker(merged int, key seal.Key) string {
	mac := key.For("followup-note").Sign([]byte(fmt.Sprintf("pr-%d", merged)))
	if mac == "" {
		return followUpNotePrefix(merged) + " -->" // no key: unsealed, trusted by no reader
	}
	return followUpNotePrefix(merged) + " " + mac + " -->"
}

// IsFollowUpNote reports whether c is the bot's follow-up note on merged PR n: written by botLogin and
// holding the sealed marker. A comment holding a marker for n that does not verify is logged (it was edited,
// or forged) and does not count.
func IsFollowUpNote(ctx context.Context, c *github.IssueComment, botLogin string, merged int, key seal.Key) bool {
	body := c.GetBody()
	if !strings.Contains(body, followUpNotePrefix(merged)+" ") {
		return false
	}
	if botLogin != "" && strings.EqualFold(c.GetUser().GetLogin(), botLogin) && strings.Contains(body, FollowUpNoteMarker(merged, key)) && !key.IsZero() {
		return true
	}
	zerolog.Ctx(ctx).Warn().Int64("comment_id", c.GetID()).Str("comment_author", c.GetUser().GetLogin()).
		Int("merged_pr", merged).Time("comment_updated_at", c.GetUpdatedAt().Time).
		Msg("tampered: follow-up note marker does not verify or is not the bot's, so it counts for nothing")
	return false
}

// FollowUpNote is the comment telling the author of a merged PR what happens to the lower copies of the
// versions it added: the removal PRs opened, and the copies left alone with why. "" when there is nothing to
// say (the PR added nothing that a lower channel holds). key seals its marker (from MarkerKey).
func FollowUpNote(results []FollowUpResult, merged int, key seal.Key) string {
	var b strings.Builder
	for _, r := range results {
		if r.PR.Number != 0 {
			fmt.Fprintf(&b, "- `%s`: #%d removes %s.\n", r.Channel, r.PR.Number, listRefs(r.Removed))
		}
		for _, s := range r.Skipped {
			fmt.Fprintf(&b, "- `%s`: `%s` is left in place: %s.\n", r.Channel, s.Version, s.Reason)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	note := "Removal follow-up for the versions this pull request merged:\n\n" + b.String() + "\n" + FollowUpNoteMarker(merged, key)
	// A very long list is shortened to GitHub's comment limit; the marker at its end is kept whole.
	if fitted, err := FitComment(note); err == nil {
		return fitted
	}
	return note
}
