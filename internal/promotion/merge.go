package promotion

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// AutoMergeRemoval merges PR number (head branch headRef) when it is one of the bot's removal PRs, the
// repository has auto_merge_removals on, and MergeRemovalIfReady finds it safe; it logs why it waits.
func (s *Service) AutoMergeRemoval(ctx context.Context, repo Repo, number int, headRef string) error {
	if !strings.HasPrefix(headRef, RemoveBranchPrefix) || !repo.config().AutoMergeRemovals {
		return nil
	}
	merged, reason, err := s.MergeRemovalIfReady(ctx, repo, number)
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Int("removal_pr", number).Bool("merged", merged).Str("reason", reason).Msg("removal auto-merge")
	return nil
}

// MergeRemovalIfReady squash-merges a storagebot removal PR when auto_merge_removals is on and it is safe:
// the head is still the commit the bot wrote (nobody pushed to it), the storage-policy check run on it
// succeeded, no other check run or commit status on it failed, and every version it removes is still held,
// identically, by a higher channel (so a removal never takes a version out of every distribution). reason says
// what was done or what it waits for.
func (s *Service) MergeRemovalIfReady(ctx context.Context, repo Repo, prNumber int) (merged bool, reason string, err error) {
	cfg := repo.config()
	if !cfg.AutoMergeRemovals {
		return false, "auto_merge_removals is off in .github/storagebot.yml", nil
	}
	pr, err := repo.Client.PullRequest(ctx, repo.Owner, repo.Name, prNumber)
	if err != nil {
		return false, "", fmt.Errorf("auto-merge #%d: read PR: %w", prNumber, err)
	}
	m, ok := ParseMarker(ctx, pr, s.markerKey(repo))
	switch {
	case pr.GetMerged():
		return false, fmt.Sprintf("#%d is already merged", prNumber), nil
	case pr.GetState() != "open":
		return false, fmt.Sprintf("#%d is closed", prNumber), nil
	case !ok || m.Kind != "removal" || !strings.HasPrefix(pr.GetHead().GetRef(), RemoveBranchPrefix):
		return false, fmt.Sprintf("#%d is not a storagebot removal PR", prNumber), nil
	}
	headSHA := pr.GetHead().GetSHA()
	if headSHA != m.Commit {
		return false, fmt.Sprintf("someone pushed to %s (head %s is not the bot's commit %s): review and merge it by hand",
			pr.GetHead().GetRef(), policy.ShortSHA(headSHA), policy.ShortSHA(m.Commit)), nil
	}
	if wait, err := s.checksBlock(ctx, repo, headSHA); err != nil || wait != "" {
		return false, wait, err
	}
	if wait, err := s.stillShadowed(ctx, repo, pr.GetBase().GetRef(), m); err != nil || wait != "" {
		return false, wait, err
	}
	err = repo.Client.MergePullRequest(ctx, repo.Owner, repo.Name, prNumber, headSHA, "squash")
	if hasStatus(err, http.StatusConflict) || hasStatus(err, http.StatusMethodNotAllowed) {
		return false, fmt.Sprintf("GitHub refused to merge #%d: %s", prNumber, errorMessage(err)), nil
	}
	if err != nil {
		return false, "", fmt.Errorf("auto-merge #%d: %w", prNumber, err)
	}
	return true, fmt.Sprintf("merged #%d (squash): its %s check passed", prNumber, policy.CheckName), nil
}

// checksBlock returns why the check runs and statuses on sha do not allow a merge yet, "" when they do. Only
// this App's storage-policy run counts as the policy verdict, and its newest one wins (every evaluation writes
// a new run): another App's run of that name (a CI job running `storagebot check`, an older registration of
// the bot) never satisfies the gate, though like any other check it blocks when it failed.
func (s *Service) checksBlock(ctx context.Context, repo Repo, sha string) (string, error) {
	if s.AppID == 0 {
		return "", fmt.Errorf("auto-merge gate on %s: this App's ID is unknown (set GITHUB_APP_INTEGRATION_ID), so its %s run cannot be told from other Apps'", sha, policy.CheckName)
	}
	runs, err := repo.Client.CheckRuns(ctx, repo.Owner, repo.Name, sha, github.ListCheckRunsOptions{Filter: github.String("latest")})
	if err != nil {
		return "", fmt.Errorf("list check runs of %s: %w", sha, err)
	}
	var verdict *github.CheckRun // this App's newest storage-policy run
	for _, run := range runs {
		ours := run.GetName() == policy.CheckName && run.GetApp().GetID() == s.AppID
		switch concl := run.GetConclusion(); {
		case ours:
			if verdict == nil || run.GetID() > verdict.GetID() {
				verdict = run
			}
		case run.GetStatus() == "completed" && failing(concl):
			if run.GetName() == policy.CheckName {
				return fmt.Sprintf("check %q of another App (%s) concluded %s", run.GetName(), run.GetApp().GetSlug(), concl), nil
			}
			return fmt.Sprintf("check %q concluded %s", run.GetName(), concl), nil
		}
	}
	switch {
	case verdict == nil:
		return fmt.Sprintf("waiting for the %s check", policy.CheckName), nil
	case verdict.GetStatus() != "completed":
		return fmt.Sprintf("waiting for the %s check to complete", policy.CheckName), nil
	case verdict.GetConclusion() != policy.ConclusionSuccess:
		return fmt.Sprintf("the %s check concluded %s: see the check for what to fix", policy.CheckName, verdict.GetConclusion()), nil
	}
	status, err := repo.Client.CombinedStatus(ctx, repo.Owner, repo.Name, sha)
	switch {
	case hasStatus(err, http.StatusNotFound) || hasStatus(err, http.StatusUnprocessableEntity):
		// No commit statuses route on this host: GitHub always answers for an existing commit, but
		// internal/githubfake does not serve GET /commits/{ref}/status (it answers 422). Check runs still gate.
	case err != nil:
		return "", fmt.Errorf("read combined status of %s: %w", sha, err)
	case status.GetState() == "failure" || status.GetState() == "error":
		for _, st := range status.Statuses {
			if st.GetState() == "failure" || st.GetState() == "error" {
				return fmt.Sprintf("status %q is %s", st.GetContext(), st.GetState()), nil
			}
		}
		return fmt.Sprintf("the combined status is %s", status.GetState()), nil
	}
	return "", nil
}

func failing(conclusion string) bool {
	switch conclusion {
	case "failure", "cancelled", "timed_out", "action_required", "stale":
		return true
	}
	return false
}

// stillShadowed returns why a removal must wait ("" when it need not): each removed version must be held
// identically by a channel above the one it is removed from.
func (s *Service) stillShadowed(ctx context.Context, repo Repo, baseBranch string, m Marker) (string, error) {
	cfg := repo.config()
	lower, ok := cfg.ChannelByBranch(baseBranch)
	if !ok {
		return fmt.Sprintf("%s is not a channel branch", baseBranch), nil
	}
	loc := s.newLocator(repo)
	r := loc.r
	for _, v := range m.Versions {
		ref := commandparse.VersionRef{Package: v.Package, Version: v.Version}
		found := false
		for _, higher := range cfg.Higher(lower.Name) {
			listed, err := loc.versions(ctx, higher, v.Package)
			if err != nil {
				return "", err
			}
			tree, ok := listed[v.Version]
			if !ok {
				continue
			}
			same, err := storage.Identical(ctx, r, tree, v.Tree)
			if err != nil {
				return "", fmt.Errorf("compare %s in %s: %w", ref, higher.Name, err)
			}
			if same {
				found = true
				break
			}
		}
		if !found {
			return fmt.Sprintf("%s is not (or no longer identically) in a channel above %s: removing it would take it out of every "+
				"distribution; merge its promotion first", ref, lower.Name), nil
		}
	}
	return "", nil
}
