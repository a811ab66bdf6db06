package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// DeploymentStatus handles deployment_status events: when a distribution's deployment ends (on this replica
// or another), its dependents may now be rebuilt on it.
type DeploymentStatus struct {
	app *App
}

var _ githubapp.EventHandler = (*DeploymentStatus)(nil)

// Handles names the event.
func (h *DeploymentStatus) Handles() []string { return []string{"deployment_status"} }

// Handle triggers a rollout pass on a final state; in-progress statuses change nothing a pass would act on.
func (h *DeploymentStatus) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var event github.DeploymentStatusEvent
	if err := json.Unmarshal(payload, &event); err != nil {
		return fmt.Errorf("decode deployment_status payload: %w", err)
	}
	switch event.GetDeploymentStatus().GetState() {
	case "success", "failure", "error":
	default:
		return nil
	}
	if h.app.rollouts == nil {
		return nil
	}
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	_, log := githubapp.PrepareRepoContext(ctx, installationID, event.GetRepo())
	log.Info().Int64("deployment", event.GetDeployment().GetID()).Str("environment", event.GetDeployment().GetEnvironment()).
		Str("state", event.GetDeploymentStatus().GetState()).Msg("deployment_status: rollout pass")
	gh, err := h.app.gitHub(installationID)
	if err != nil {
		return err
	}
	h.app.rollouts.Trigger(gh.GoGitHub(), event.GetRepo())
	return nil
}
