package handlers

import (
	"context"
	"regexp"
	"strings"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"
)

// storagebotMarkerRE finds the hidden markers the bot records its state in (exceptions, PR body markers,
// follow-up notes).
var storagebotMarkerRE = regexp.MustCompile(`<!-- storagebot:[^>]*-->`)

// markersChanged reports whether an edit from before to after added, removed or changed a storagebot marker.
func markersChanged(before, after string) bool {
	b, a := storagebotMarkerRE.FindAllString(before, -1), storagebotMarkerRE.FindAllString(after, -1)
	if len(b) != len(a) {
		return true
	}
	for i := range b {
		if b[i] != a[i] {
			return true
		}
	}
	return false
}

// detectCommentTampering logs who edited one of the bot's comments, when someone else did. Anyone with write
// access may edit any comment; the markers in the bot's comments are sealed, so an edited one already counts
// for nothing when read back, but only this event says who edited it (policy-bot's detectAndLogTampering).
func (a *App) detectCommentTampering(ctx context.Context, ev *github.IssueCommentEvent) {
	author, editor := ev.GetComment().GetUser().GetLogin(), ev.GetSender().GetLogin()
	if strings.EqualFold(author, editor) {
		return
	}
	log := zerolog.Ctx(ctx)
	bot, err := a.bot.Login(ctx)
	if err != nil {
		log.Error().Err(err).Int64("comment_id", ev.GetComment().GetID()).Str("editor", editor).
			Msg("a comment was edited by someone other than its author; could not tell whether it is the bot's")
		return
	}
	if !strings.EqualFold(author, bot) {
		return
	}
	log.Warn().Str("editor", editor).Int64("comment_id", ev.GetComment().GetID()).Int("issue", ev.GetIssue().GetNumber()).
		Bool("marker_changed", markersChanged(ev.GetChanges().GetBody().GetFrom(), ev.GetComment().GetBody())).
		Msg("tampered: the bot's comment was edited by someone else; any storagebot marker in it no longer verifies and counts for nothing")
}

// detectPRTampering logs who edited the body of a PR the bot opened, when someone else did: its marker
// (what the PR promotes or removes, the commit the bot wrote) is sealed and stops counting once edited.
func (a *App) detectPRTampering(ctx context.Context, ev *github.PullRequestEvent) {
	if ev.GetChanges().GetBody() == nil {
		return
	}
	author, editor := ev.GetPullRequest().GetUser().GetLogin(), ev.GetSender().GetLogin()
	if strings.EqualFold(author, editor) {
		return
	}
	log := zerolog.Ctx(ctx)
	bot, err := a.bot.Login(ctx)
	if err != nil {
		log.Error().Err(err).Int("pr", ev.GetNumber()).Str("editor", editor).
			Msg("a PR body was edited by someone other than its author; could not tell whether the PR is the bot's")
		return
	}
	if !strings.EqualFold(author, bot) {
		return
	}
	log.Warn().Str("editor", editor).Int("pr", ev.GetNumber()).Str("head_ref", ev.GetPullRequest().GetHead().GetRef()).
		Bool("marker_changed", markersChanged(ev.GetChanges().GetBody().GetFrom(), ev.GetPullRequest().GetBody())).
		Msg("tampered: the body of a PR the bot opened was edited by someone else; its storagebot marker no longer verifies and counts for nothing")
}
