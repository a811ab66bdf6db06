package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
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
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	ctx, log := githubapp.PreparePRContext(ctx, installationID, event.GetRepo(), event.GetNumber())
	pr := event.GetPullRequest()
	log.Info().Str("action", event.GetAction()).Str("base", pr.GetBase().GetRef()).
		Str("head_sha", pr.GetHead().GetSHA()).Msg("pull_request received")

	switch event.GetAction() {
	case "opened", "synchronize", "reopened", "edited", "ready_for_review":
		client, err := h.app.installationClient(installationID)
		if err != nil {
			return fmt.Errorf("installation client: %w", err)
		}
		out, err := h.app.checks.CheckPR(ctx, client, event.GetRepo(), pr)
		if err != nil || out.Conclusion != "success" {
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
		if h.app.rollouts != nil { // a merge into a distribution branch goes live by itself
			h.app.rollouts.Trigger(client, event.GetRepo())
		}
		return h.app.followUp(ctx, client, event.GetRepo(), pr)
	}
	return nil
}
