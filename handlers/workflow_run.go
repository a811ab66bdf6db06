package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// WorkflowRun handles workflow_run events: a finished run may be a distribution build or deploy, so the
// repository's rollout takes its next step.
type WorkflowRun struct {
	app *App
}

var _ githubapp.EventHandler = (*WorkflowRun)(nil)

// Handles names the event.
func (h *WorkflowRun) Handles() []string { return []string{"workflow_run"} }

// Handle triggers a rollout pass when a workflow_dispatch run completes. The pass reads every state from
// GitHub, so which run it was does not matter here.
func (h *WorkflowRun) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var event github.WorkflowRunEvent
	if err := json.Unmarshal(payload, &event); err != nil {
		return fmt.Errorf("decode workflow_run payload: %w", err)
	}
	run := event.GetWorkflowRun()
	if event.GetAction() != "completed" || run.GetEvent() != "workflow_dispatch" || h.app.rollouts == nil {
		return nil
	}
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	_, log := githubapp.PrepareRepoContext(ctx, installationID, event.GetRepo())
	log.Info().Int64("run", run.GetID()).Str("branch", run.GetHeadBranch()).Str("conclusion", run.GetConclusion()).
		Msg("workflow_run completed: rollout pass")
	gh, err := h.app.gitHub(installationID)
	if err != nil {
		return err
	}
	h.app.rollouts.Trigger(gh.GoGitHub(), event.GetRepo())
	return nil
}
