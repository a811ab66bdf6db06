package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
)

// Push handles push events. GitHub sends one for a pushed tag too (ref refs/tags/<name>; none when more than
// three tags are pushed at once): a stack-version tag builds the production distribution's image with that
// tag, or is refused on its commit. A push to a distribution branch that changes the package-registry version
// opens the PRs bringing the other distribution branches to it.
type Push struct {
	app *App
}

var _ githubapp.EventHandler = (*Push)(nil)

// Handles names the event.
func (h *Push) Handles() []string { return []string{"push"} }

// Handle routes a created tag to the stack-version build and a branch push to the registry version sync;
// deleted refs and repositories without rollout change nothing.
func (h *Push) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) error {
	var event github.PushEvent
	if err := json.Unmarshal(payload, &event); err != nil {
		return fmt.Errorf("decode push payload: %w", err)
	}
	if h.app.rollouts == nil || event.GetDeleted() || event.GetRepo() == nil {
		return nil
	}
	tag, isTag := strings.CutPrefix(event.GetRef(), "refs/tags/")
	branch, isBranch := strings.CutPrefix(event.GetRef(), "refs/heads/")
	if !isTag && !isBranch {
		return nil
	}
	if isBranch && !touches(event.Commits, "Dockerfile") {
		return nil // the registry version lives in the Dockerfile: nothing to sync, no call made
	}
	repo := pushRepository(event.GetRepo())
	installationID := githubapp.GetInstallationIDFromEvent(&event)
	ctx, log := githubapp.PrepareRepoContext(ctx, installationID, repo)
	gh, rc, err := h.app.repository(ctx, installationID, repo)
	if err != nil {
		return err
	}
	if rc.Config == nil {
		log.Warn().Err(rc.ConfigErr).Str("ref", event.GetRef()).Msg("push ignored: the repository configuration is invalid")
		return nil
	}
	if isTag {
		if !event.GetCreated() {
			return nil // a moved tag (push --force) is not built again
		}
		// head_commit is the commit the tag points at, for lightweight and annotated tags alike.
		sha := event.GetHeadCommit().GetID()
		if sha == "" {
			sha = event.GetAfter()
		}
		log.Info().Str("tag", tag).Str("sha", sha).Msg("tag pushed")
		return h.app.rollouts.StackTag(ctx, gh.GoGitHub(), repo, rc.Config, h.app.checkService.AppID, tag, sha)
	}
	return h.app.rollouts.RegistrySync(ctx, gh.GoGitHub(), repo, rc.Config, h.app.checkService.Seal, branch, event.GetBefore(), event.GetAfter())
}

// maxPushCommits is how many commits GitHub lists in a push payload; a longer push may touch more.
const maxPushCommits = 2048

// touches reports whether a push may have changed path: a commit lists it as added or modified, or the
// payload's list is cut at GitHub's limit.
func touches(commits []*github.HeadCommit, path string) bool {
	if len(commits) >= maxPushCommits {
		return true
	}
	for _, c := range commits {
		if c == nil {
			continue // not in GitHub's payloads, but a null entry must not stop the server's handler
		}
		for _, p := range append(append([]string(nil), c.Added...), c.Modified...) {
			if p == path {
				return true
			}
		}
	}
	return false
}

// pushRepository converts a push event's repository to the shape the rest of the App takes.
func pushRepository(r *github.PushEventRepository) *github.Repository {
	owner := r.GetOwner().GetLogin()
	if owner == "" {
		owner = r.GetOwner().GetName() // push payloads name the owner in both; older ones only in name
	}
	return &github.Repository{
		ID: r.ID, Name: r.Name, FullName: r.FullName, DefaultBranch: r.DefaultBranch, Private: r.Private,
		Owner: &github.User{Login: github.String(owner)},
	}
}
