package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/policy"
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
		gh, repo, err := h.app.repository(ctx, installationID, event.GetRepo())
		if err != nil {
			return err
		}
		out, err := h.app.checks.CheckPR(ctx, gh, repo, pr)
		// Fork PRs trigger no write but the check run; an invalid configuration enables nothing.
		if err != nil || out.Conclusion != policy.ConclusionSuccess || prcheck.IsFork(pr) || repo.Config == nil {
			return err
		}
		return h.app.promotions.AutoMergeRemoval(ctx, promotionRepo(gh, repo), pr.GetNumber(), pr.GetHead().GetRef())
	case "closed":
		if !pr.GetMerged() {
			return nil
		}
		gh, repo, err := h.app.repository(ctx, installationID, event.GetRepo())
		if err != nil {
			return fmt.Errorf("removal follow-up of #%d: %w", pr.GetNumber(), err)
		}
		if h.app.rollouts != nil { // a merge into a distribution branch goes live by itself
			h.app.rollouts.Trigger(gh.GoGitHub(), event.GetRepo())
		}
		if repo.ConfigErr != nil {
			return fmt.Errorf("removal follow-up of #%d: %w", pr.GetNumber(), repo.ConfigErr)
		}
		return h.app.promotions.HandleMerged(ctx, promotionRepo(gh, repo), pr)
	}
	return nil
}

// editMatters reports whether an "edited" event changed what the policy reads: the title (title-prefix) or
// the base branch (the channel the PR is judged against). Body edits alone change nothing.
func editMatters(c *github.EditChange) bool {
	return c != nil && (c.Title != nil || c.Base != nil)
}
