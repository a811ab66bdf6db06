package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

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
	if event.GetAction() != "rerequested" {
		return nil
	}
	run := event.GetCheckRun()
	if run == nil || event.GetRepo() == nil {
		return errors.New("check_run rerequested payload lacks check_run or repository: nothing to re-run")
	}
	if run.GetName() != checkrun.Name {
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
		client, err := h.app.installationClient(installationID)
		if err != nil {
			return fmt.Errorf("installation client: %w", err)
		}
		for _, pr := range suite.PullRequests {
			if pr == nil {
				continue
			}
			if err := h.app.autoMergeRemoval(ctx, client, event.GetRepo(), nil, pr.GetNumber(), pr.GetHead().GetRef()); err != nil {
				return err
			}
		}
	}
	return nil
}

// recheckPRs fetches each PR (the payload's copies lack the title) and runs the check on it. GitHub lists no
// pull requests in check_run and check_suite events of a fork PR (its head branch is in another
// repository), so with none listed the open PRs whose head is headSHA are found instead.
func (a *App) recheckPRs(ctx context.Context, installationID int64, repo *github.Repository, prs []*github.PullRequest, headSHA string) error {
	if len(prs) == 0 && headSHA == "" {
		return nil
	}
	client, err := a.installationClient(installationID)
	if err != nil {
		return fmt.Errorf("installation client: %w", err)
	}
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	var numbers []int
	for _, p := range prs {
		if p != nil {
			numbers = append(numbers, p.GetNumber())
		}
	}
	if len(numbers) == 0 {
		if numbers, err = openPRsWithHead(ctx, client, owner, name, headSHA); err != nil {
			return err
		}
		zerolog.Ctx(ctx).Debug().Str("head_sha", headSHA).Ints("prs", numbers).Msg("no pull requests in the payload (fork PR): found by head SHA")
	}
	for _, n := range numbers {
		pr, _, err := client.PullRequests.Get(ctx, owner, name, n)
		if err != nil {
			return fmt.Errorf("read PR #%d: %w", n, err)
		}
		if pr.GetState() != "open" {
			continue
		}
		if _, err := a.checks.CheckPR(ctx, client, repo, pr); err != nil {
			return err
		}
	}
	return nil
}

// openPRsWithHead lists the open PRs whose head commit is sha. GET /commits/{sha}/pulls does not find PRs
// whose head is in a fork, so the open PRs are listed and matched on head.sha.
func openPRsWithHead(ctx context.Context, client *github.Client, owner, name, sha string) ([]int, error) {
	var out []int
	opts := &github.PullRequestListOptions{State: "open", ListOptions: github.ListOptions{PerPage: 100}}
	for {
		page, resp, err := client.PullRequests.List(ctx, owner, name, opts)
		if err != nil {
			return nil, fmt.Errorf("list open PRs to find the ones with head %s: %w", sha, err)
		}
		for _, pr := range page {
			if pr.GetHead().GetSHA() == sha {
				out = append(out, pr.GetNumber())
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}
