package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// IssueComment handles issue_comment events: the slash commands in issue and PR comments.
type IssueComment struct {
	app *App
}

var _ githubapp.EventHandler = (*IssueComment)(nil)

// Handles names the event.
func (h *IssueComment) Handles() []string { return []string{"issue_comment"} }

// Handle hands the comment to the command executor.
func (h *IssueComment) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var event github.IssueCommentEvent
	if err := json.Unmarshal(payload, &event); err != nil {
		return fmt.Errorf("decode issue_comment payload: %w", err)
	}
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	ctx, _ = githubapp.PreparePRContext(ctx, installationID, event.GetRepo(), event.GetIssue().GetNumber())
	switch event.GetAction() {
	case "created":
		// GitHub always sends these; a payload without them names nothing to answer on (and go-github's
		// Issue.IsPullRequest has a value receiver, so a nil issue would panic further down).
		if event.GetIssue() == nil || event.GetComment() == nil || event.GetRepo() == nil {
			return fmt.Errorf("issue_comment created payload lacks issue, comment or repository: no command to run")
		}
	case "edited":
		// An edited comment never re-runs its commands; an edit of the bot's own comment is logged.
		h.app.detectCommentTampering(ctx, &event)
		return nil
	default:
		return nil
	}
	gh, err := h.app.gitHub(installationID)
	if err != nil {
		return err
	}
	return h.app.commands.Handle(ctx, gh, &event)
}
