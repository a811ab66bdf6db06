package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/storagebot/storagebot/internal/checkrun"
)

// PullRequest handles pull_request events: the storage-policy check when a PR into a channel branch opens or
// changes, and the removal follow-up when one merges.
type PullRequest struct {
	app *App
}

var _ githubapp.EventHandler = (*PullRequest)(nil)

// Handles names the event.
func (h *PullRequest) Handles() []string { return []string{"pull_request"} }

// Handle decodes the event and routes it by action.
func (h *PullRequest) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var event github.PullRequestEvent
	if err := json.Unmarshal(payload, &event); err != nil {
		return fmt.Errorf("decode pull_request payload: %w", err)
	}
	pr := event.GetPullRequest()
	if pr == nil || event.GetRepo() == nil {
		return fmt.Errorf("pull_request %s payload lacks pull_request or repository: nothing to check", event.GetAction())
	}
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	ctx, log := githubapp.PreparePRContext(ctx, installationID, event.GetRepo(), event.GetNumber())
	log.Info().Str("action", event.GetAction()).Str("base", pr.GetBase().GetRef()).
		Str("head_sha", pr.GetHead().GetSHA()).Msg("pull_request received")

	if event.GetAction() == "edited" {
		h.app.detectPRTampering(ctx, &event)
	}
	switch event.GetAction() {
	case "opened", "synchronize", "reopened", "edited", "ready_for_review":
		if event.GetAction() == "edited" && !editMatters(event.GetChanges()) {
			log.Debug().Msg("edit changed neither title nor base: nothing the policy reads")
			return nil
		}
		client, err := h.app.installationClient(installationID)
		if err != nil {
			return fmt.Errorf("installation client: %w", err)
		}
		out, err := h.app.checks.CheckPR(ctx, client, event.GetRepo(), pr)
		// Fork PRs trigger no write but the check run.
		if err != nil || out.Conclusion != "success" || checkrun.IsFork(pr) {
			return err
		}
		return h.app.autoMergeRemoval(ctx, client, event.GetRepo(), out.Config, pr.GetNumber(), pr.GetHead().GetRef())
	case "closed":
		if !pr.GetMerged() {
			return nil
		}
		client, err := h.app.installationClient(installationID)
		if err != nil {
			return fmt.Errorf("installation client: %w", err)
		}
		return h.app.followUp(ctx, client, event.GetRepo(), pr)
	}
	return nil
}

// editMatters reports whether an "edited" event changed what the policy reads: the title (title-prefix) or
// the base branch (the channel the PR is judged against). Body edits alone change nothing.
func editMatters(c *github.EditChange) bool {
	return c != nil && (c.Title != nil || c.Base != nil)
}
