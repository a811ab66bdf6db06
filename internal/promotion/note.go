package promotion

import (
	"fmt"
	"strings"
)

// FollowUpNoteMarker identifies the bot's follow-up note on a merged PR, so it is posted once per PR.
func FollowUpNoteMarker(merged int) string {
	return fmt.Sprintf("<!-- storagebot:followup pr-%d -->", merged)
}

// FollowUpNote is the comment telling the author of a merged PR what happens to the lower copies of the
// versions it added: the removal PRs opened, and the copies left alone with why. "" when there is nothing to
// say (the PR added nothing that a lower channel holds).
func FollowUpNote(results []FollowUpResult, merged int) string {
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
	note := "Removal follow-up for the versions this pull request merged:\n\n" + b.String() + "\n" + FollowUpNoteMarker(merged)
	// A very long list is shortened to GitHub's comment limit; the marker at its end is kept whole.
	if fitted, err := FitComment(note); err == nil {
		return fitted
	}
	return note
}
