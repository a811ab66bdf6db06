package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/policy"
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
	if event.GetAction() != "rerequested" {
		return nil
	}
	run := event.GetCheckRun()
	if run == nil || event.GetRepo() == nil {
		return errors.New("check_run rerequested payload lacks check_run or repository: nothing to re-run")
	}
	if run.GetName() != policy.CheckName {
		return nil
	}
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	ctx, _ = githubapp.PrepareRepoContext(ctx, installationID, event.GetRepo())
	return h.app.recheckPRs(ctx, installationID, event.GetRepo(), run.PullRequests, run.GetHeadSHA())
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
	action := event.GetAction()
	if action != "rerequested" && action != "completed" {
		return nil
	}
	suite := event.GetCheckSuite()
	if suite == nil || event.GetRepo() == nil {
		return fmt.Errorf("check_suite %s payload lacks check_suite or repository: nothing to do", action)
	}
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	ctx, _ = githubapp.PrepareRepoContext(ctx, installationID, event.GetRepo())
	switch action {
	case "rerequested":
		return h.app.recheckPRs(ctx, installationID, event.GetRepo(), suite.PullRequests, suite.GetHeadSHA())
	case "completed":
		// A fork PR's suite lists no pull requests: fork PRs are never auto-merged, so there is nothing to find.
		if len(suite.PullRequests) == 0 {
			return nil
		}
		gh, repo, err := h.app.repository(ctx, installationID, event.GetRepo())
		if err != nil {
			return fmt.Errorf("auto-merge after check suite: %w", err)
		}
		if repo.ConfigErr != nil {
			return fmt.Errorf("auto-merge after check suite: %w", repo.ConfigErr)
		}
		for _, pr := range suite.PullRequests {
			if pr == nil {
				continue
			}
			if err := h.app.promotions.AutoMergeRemoval(ctx, promotionRepo(gh, repo), pr.GetNumber(), pr.GetHead().GetRef()); err != nil {
				return err
			}
		}
	}
	return nil
}

// recheckPRs fetches each PR (the payload's copies lack the title) and runs the check on it. GitHub lists no
// pull requests in check_run and check_suite events of a fork PR (its head branch is in another
// repository), so with none listed the open PRs whose head is headSHA are found instead. GET
// /commits/{sha}/pulls does not find PRs whose head is in a fork, so the open PRs are listed and matched.
func (a *App) recheckPRs(ctx context.Context, installationID int64, ghRepo *github.Repository, prs []*github.PullRequest, headSHA string) error {
	if len(prs) == 0 && headSHA == "" {
		return nil
	}
	gh, err := a.gitHub(installationID)
	if err != nil {
		return err
	}
	owner, name := ghRepo.GetOwner().GetLogin(), ghRepo.GetName()
	var numbers []int
	for _, p := range prs {
		if p != nil {
			numbers = append(numbers, p.GetNumber())
		}
	}
	if len(numbers) == 0 {
		open, err := gh.OpenPullRequests(ctx, owner, name, "")
		if err != nil {
			return fmt.Errorf("list open PRs to find the ones with head %s: %w", headSHA, err)
		}
		for _, pr := range open {
			if pr.GetHead().GetSHA() == headSHA {
				numbers = append(numbers, pr.GetNumber())
			}
		}
		zerolog.Ctx(ctx).Debug().Str("head_sha", headSHA).Ints("prs", numbers).Msg("no pull requests in the payload (fork PR): found by head SHA")
	}
	if len(numbers) == 0 {
		return nil
	}
	repo, err := repoctx.Load(ctx, gh, ghRepo)
	if err != nil {
		return err
	}
	for _, n := range numbers {
		pr, err := gh.PullRequest(ctx, owner, name, n)
		if err != nil {
			return fmt.Errorf("read PR #%d: %w", n, err)
		}
		if pr.GetState() != "open" {
			continue
		}
		if _, err := a.checks.CheckPR(ctx, gh, repo, pr); err != nil {
			return err
		}
	}
	return nil
}
