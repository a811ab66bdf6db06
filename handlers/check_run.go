package handlers

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/storagebot/storagebot/internal/checkrun"
)

// CheckRun handles check_run events: "Re-run" on a storage-policy run evaluates its PRs again.
type CheckRun struct {
	app *App
}

var _ githubapp.EventHandler = (*CheckRun)(nil)

// Handles names the event.
func (h *CheckRun) Handles() []string { return []string{"check_run"} }

// Handle re-runs the check for every PR of a rerequested storage-policy run.
func (h *CheckRun) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var event github.CheckRunEvent
	if err := json.Unmarshal(payload, &event); err != nil {
		return fmt.Errorf("decode check_run payload: %w", err)
	}
	if event.GetAction() != "rerequested" || event.GetCheckRun().GetName() != checkrun.Name {
		return nil
	}
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	ctx, _ = githubapp.PrepareRepoContext(ctx, installationID, event.GetRepo())
	return h.app.recheckPRs(ctx, installationID, event.GetRepo(), event.GetCheckRun().PullRequests)
}

// CheckSuite handles check_suite events: "Re-run all checks" evaluates the suite's PRs again.
type CheckSuite struct {
	app *App
}

var _ githubapp.EventHandler = (*CheckSuite)(nil)

// Handles names the event.
func (h *CheckSuite) Handles() []string { return []string{"check_suite"} }

// Handle re-runs the check for the PRs of a rerequested suite, and, when a suite completes (other CI on a
// removal PR finished), tries the removal auto-merge.
func (h *CheckSuite) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var event github.CheckSuiteEvent
	if err := json.Unmarshal(payload, &event); err != nil {
		return fmt.Errorf("decode check_suite payload: %w", err)
	}
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	ctx, _ = githubapp.PrepareRepoContext(ctx, installationID, event.GetRepo())
	switch event.GetAction() {
	case "rerequested":
		return h.app.recheckPRs(ctx, installationID, event.GetRepo(), event.GetCheckSuite().PullRequests)
	case "completed":
		if len(event.GetCheckSuite().PullRequests) == 0 {
			return nil
		}
		client, err := h.app.installationClient(installationID)
		if err != nil {
			return fmt.Errorf("installation client: %w", err)
		}
		for _, pr := range event.GetCheckSuite().PullRequests {
			if err := h.app.autoMergeRemoval(ctx, client, event.GetRepo(), nil, pr.GetNumber(), pr.GetHead().GetRef()); err != nil {
				return err
			}
		}
	}
	return nil
}

// recheckPRs fetches each PR (the payload's copies lack the title) and runs the check on it.
func (a *App) recheckPRs(ctx context.Context, installationID int64, repo *github.Repository, prs []*github.PullRequest) error {
	if len(prs) == 0 {
		return nil
	}
	client, err := a.installationClient(installationID)
	if err != nil {
		return fmt.Errorf("installation client: %w", err)
	}
	for _, p := range prs {
		pr, _, err := client.PullRequests.Get(ctx, repo.GetOwner().GetLogin(), repo.GetName(), p.GetNumber())
		if err != nil {
			return fmt.Errorf("read PR #%d: %w", p.GetNumber(), err)
		}
		if _, err := a.checks.CheckPR(ctx, client, repo, pr); err != nil {
			return err
		}
	}
	return nil
}
