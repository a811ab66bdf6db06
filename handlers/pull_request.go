package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// PullRequest handles pull_request events: the storage-policy check on channel branches.
type PullRequest struct {
	deps Deps
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
	ctx, log := githubapp.PreparePRContext(ctx, githubapp.GetInstallationIDFromEvent(&event), event.GetRepo(), event.GetNumber())
	log.Info().Str("action", event.GetAction()).Str("base", event.GetPullRequest().GetBase().GetRef()).
		Str("head_sha", event.GetPullRequest().GetHead().GetSHA()).Msg("pull_request received")
	_ = ctx
	return nil
}
