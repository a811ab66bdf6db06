// Package repoctx is the repository context of one event: the repository's coordinates and its
// configuration, loaded once per delivery (or reconcile pass) by the handler or the reconciler and handed to
// every service that acts on the event, so no service fetches these facts again (policy-bot's EvalContext).
package repoctx

import (
	"context"
	"fmt"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/repoconfig"
)

// Repo is what every service needs to know about the event's repository.
type Repo struct {
	Owner, Name, DefaultBranch string
	// Config is the repository's configuration from its default branch; nil when ConfigErr is set.
	Config *repoconfig.Config
	// ConfigErr is set when the configuration is invalid (repoconfig.IsInvalid): each service reports it in
	// its own way (the check fails and says where, a command replies, the reconciler skips the repository).
	ConfigErr error
}

// FullName is "owner/name".
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// ConfigSource reads a repository's configuration (githubapi.Client, or a fake in tests).
type ConfigSource interface {
	Config(ctx context.Context, owner, name, defaultBranch string) (*repoconfig.Config, error)
}

// Load builds the context of repo, reading its configuration once. An invalid configuration is recorded in
// ConfigErr, not returned: it is a verdict to report, not a failure to retry.
func Load(ctx context.Context, src ConfigSource, repo *github.Repository) (Repo, error) {
	r := Repo{Owner: repo.GetOwner().GetLogin(), Name: repo.GetName(), DefaultBranch: repo.GetDefaultBranch()}
	cfg, err := src.Config(ctx, r.Owner, r.Name, r.DefaultBranch)
	if err != nil {
		if _, invalid := repoconfig.IsInvalid(err); !invalid {
			return Repo{}, fmt.Errorf("load the configuration of %s: %w", r.FullName(), err)
		}
		r.ConfigErr = err
		return r, nil
	}
	r.Config = cfg
	return r, nil
}
