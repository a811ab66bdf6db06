package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/storage"
)

// Service runs controller passes for the repositories the App is installed on: at most one pass per
// repository at a time, and triggers that arrive during a pass coalesce into one more pass after it — so a
// burst of merges and run events costs one or two passes, and a rollout wait never blocks a webhook worker.
type Service struct {
	Controller *Controller
	Cache      *storage.ObjectCache
	// Wake, when set, is woken by every trigger: a rollout waiting for a run re-reads it at once.
	Wake *Waker
	// States remembers deployments' final states between passes, so an idle pass does not read them again.
	States *StateCache

	ctx   context.Context // the server's lifetime: passes outlive the event that triggered them
	mu    sync.Mutex
	repos map[string]*repoPasses
	wg    sync.WaitGroup
}

type repoPasses struct {
	running, again bool
	client         *github.Client
	repo           *github.Repository
}

// NewService builds a service whose passes run until ctx ends.
func NewService(ctx context.Context, c *Controller, cache *storage.ObjectCache) *Service {
	return &Service{Controller: c, Cache: cache, States: NewStateCache(), ctx: ctx, repos: map[string]*repoPasses{}}
}

// Wait blocks until every pass has returned (after the service's context is cancelled, passes stop at
// their next wait and leave rollouts in progress for the next replica).
func (s *Service) Wait() { s.wg.Wait() }

// Trigger asks for a pass over repo. It returns at once.
func (s *Service) Trigger(client *github.Client, repo *github.Repository) {
	s.Wake.Wake()
	key := strings.ToLower(repo.GetFullName())
	s.mu.Lock()
	rp := s.repos[key]
	if rp == nil {
		rp = &repoPasses{}
		s.repos[key] = rp
	}
	rp.client, rp.repo = client, repo
	if rp.running {
		rp.again = true
		s.mu.Unlock()
		return
	}
	rp.running = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		for {
			s.mu.Lock()
			client, repo := rp.client, rp.repo
			rp.again = false
			s.mu.Unlock()
			if s.ctx.Err() == nil {
				if _, err := s.Pass(s.ctx, client, repo); err != nil {
					zerolog.Ctx(s.ctx).Error().Err(err).Str("repository", repo.GetFullName()).Msg("rollout pass")
				}
			}
			s.mu.Lock()
			if !rp.again || s.ctx.Err() != nil {
				rp.running = false
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		}
	}()
}

// Pass runs one controller pass over repo now, reading its configuration from the default branch. A
// repository without distributions has nothing to do.
func (s *Service) Pass(ctx context.Context, client *github.Client, repo *github.Repository) ([]Step, error) {
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	cfg, err := repoconfig.Load(ctx, client, owner, name, repo.GetDefaultBranch())
	if err != nil {
		if _, invalid := repoconfig.IsInvalid(err); invalid {
			zerolog.Ctx(ctx).Warn().Err(err).Str("repository", repo.GetFullName()).Msg("rollout skipped: repository config invalid")
			return nil, nil
		}
		return nil, fmt.Errorf("load the configuration of %s: %w", repo.GetFullName(), err)
	}
	return s.PassWithConfig(ctx, client, repo, cfg)
}

// PassWithConfig runs one pass with a configuration the caller already loaded.
func (s *Service) PassWithConfig(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config) ([]Step, error) {
	if len(cfg.Distributions) == 0 {
		return nil, nil
	}
	log := zerolog.Ctx(ctx).With().Str("repository", repo.GetFullName()).Logger()
	return s.Controller.Pass(log.WithContext(ctx), s.repo(client, repo, cfg))
}

func (s *Service) repo(client *github.Client, repo *github.Repository, cfg *repoconfig.Config) Repo {
	return Repo{GitHub: &Client{GH: client, Owner: repo.GetOwner().GetLogin(), Repo: repo.GetName(), Cache: s.Cache, States: s.States}, Config: cfg}
}

// Rebuild answers `/rebuild [<distribution>]`: it starts the build and returns the reply. fallbackBranch is
// the pull request's base branch, whose distribution is rebuilt when no name is given.
func (s *Service) Rebuild(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config, name, fallbackBranch string) string {
	if len(cfg.Distributions) == 0 {
		return fmt.Sprintf("❌ Nothing to rebuild: `%s` lists no `distributions`. Add them to configure builds and rollouts.", repoconfig.Path)
	}
	if name == "" {
		on := cfg.DistributionsOnBranch(fallbackBranch)
		if len(on) != 1 {
			return fmt.Sprintf("❌ Name the distribution to rebuild: `/rebuild <distribution>`, one of %s.", distributionNames(cfg))
		}
		name = on[0].Name
	}
	if _, ok := cfg.DistributionByName(name); !ok {
		return fmt.Sprintf("❌ There is no distribution `%s`; the distributions are %s.", name, distributionNames(cfg))
	}
	key, err := s.Controller.Rebuild(ctx, s.repo(client, repo, cfg), name)
	switch {
	case errors.Is(err, ErrBusy):
		return fmt.Sprintf("⏳ Not started: %v. Wait for it to finish (its deployment status says when), then comment again if needed.", err)
	case err != nil:
		zerolog.Ctx(ctx).Error().Err(err).Str("distribution", name).Msg("rebuild")
		return fmt.Sprintf("❌ `%s` could not be rebuilt: %v.", name, err)
	}
	dependents := dependentsText(cfg, name)
	return fmt.Sprintf("✅ Build of **%s** at %s started (build key `%s`); it is rolled out when the build succeeds, then %s follow.",
		name, shortRef(key.Ref), key, dependents)
}

func distributionNames(cfg *repoconfig.Config) string {
	names := make([]string, len(cfg.Distributions))
	for i, d := range cfg.Distributions {
		names[i] = "`" + d.Name + "`"
	}
	return strings.Join(names, ", ")
}

func shortRef(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
