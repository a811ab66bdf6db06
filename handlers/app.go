package handlers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/checkrun"
	"github.com/storagebot/storagebot/internal/commandexec"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
)

// Deps are what the handlers delegate to. Every field is shared by all handlers and safe for concurrent use.
type Deps struct {
	// Clients creates GitHub clients authenticated as the App or one of its installations.
	Clients githubapp.ClientCreator
	// Cache holds git objects by SHA for every reader; nil gets a default-sized one.
	Cache *storage.ObjectCache
	// Seal signs the markers the bot leaves in comments and PR bodies and verifies them when read back
	// (seal.FromPrivateKeyPEM of the App key, so every replica agrees). The zero Key trusts no marker.
	Seal seal.Key
	// AppID is this GitHub App's ID (GITHUB_APP_INTEGRATION_ID): check runs are read scoped to it, since
	// another App may own a storage-policy run on the same commit.
	AppID int64
}

// App is the set of event handlers storagebot registers with the dispatcher, and the services they share.
type App struct {
	deps       Deps
	checks     *checkrun.Service
	promotions *promotion.Service
	commands   *commandexec.Executor
	bot        botIdentity

	// followUpLocks serialise follow-ups of one merged PR in this process: GitHub's "Redeliver" can hand the
	// same merge to two workers at once. Correctness does not depend on it (see followUp); it saves calls.
	followUpLocks [64]sync.Mutex
}

// New builds the handlers over deps.
func New(deps Deps) *App {
	if deps.Cache == nil {
		deps.Cache = storage.NewObjectCache(storage.DefaultCacheEntries)
	}
	a := &App{deps: deps, bot: botIdentity{clients: deps.Clients}}
	a.checks = &checkrun.Service{Cache: deps.Cache, BotLogin: a.bot.Login, Seal: deps.Seal, AppID: deps.AppID}
	a.promotions = &promotion.Service{Cache: deps.Cache, BotLogin: a.bot.Login, Seal: deps.Seal, AppID: deps.AppID}
	a.commands = &commandexec.Executor{Checks: a.checks, Promotions: a.promotions, Seal: deps.Seal}
	return a
}

// Handlers returns one handler per event storagebot reacts to.
func (a *App) Handlers() []githubapp.EventHandler {
	return []githubapp.EventHandler{
		&PullRequest{app: a},
		&CheckRun{app: a},
		&CheckSuite{app: a},
		&IssueComment{app: a},
		&Installation{},
	}
}

// Promotions exposes the promotion service to the reconciler.
func (a *App) Promotions() *promotion.Service { return a.promotions }

// Checks exposes the check service to the reconciler.
func (a *App) Checks() *checkrun.Service { return a.checks }

// botIdentity resolves the App's bot login ("<slug>[bot]") from GET /app, once per process: a login only
// changes with the App's slug, which needs a restart anyway.
type botIdentity struct {
	clients githubapp.ClientCreator
	mu      sync.Mutex
	login   string
	// retryDelay is the first pause between attempts (doubled each time); zero means botLoginRetryDelay.
	retryDelay time.Duration
}

// botLoginAttempts bounds how often one call asks GET /app. The client already retries server errors and
// rate limits; these attempts also cover what it does not (a dropped connection, a JWT refused for clock
// skew), and a failure is not remembered, so the next event asks again.
const (
	botLoginAttempts   = 3
	botLoginRetryDelay = 200 * time.Millisecond
)

// Login returns the bot login. It fails when GitHub could not tell after a few attempts: callers must then
// fail loudly (the check says it could not evaluate), never carry on as if the bot had recorded nothing.
func (b *botIdentity) Login(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.login != "" {
		return b.login, nil
	}
	delay := b.retryDelay
	if delay == 0 {
		delay = botLoginRetryDelay
	}
	var lastErr error
	for attempt := 1; attempt <= botLoginAttempts; attempt++ {
		login, err := b.fetch(ctx)
		if err == nil {
			b.login = login
			return login, nil
		}
		lastErr = err
		zerolog.Ctx(ctx).Warn().Err(err).Int("attempt", attempt).Msg("could not learn the bot login")
		if attempt == botLoginAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("learn the bot login (GET /app): %w", ctx.Err())
		case <-time.After(delay):
		}
		delay *= 2
	}
	return "", fmt.Errorf("learn the bot login (GET /app, %d attempts): %w", botLoginAttempts, lastErr)
}

func (b *botIdentity) fetch(ctx context.Context) (string, error) {
	client, err := b.clients.NewAppClient()
	if err != nil {
		return "", fmt.Errorf("app client: %w", err)
	}
	app, _, err := client.Apps.Get(ctx, "")
	if err != nil {
		return "", err
	}
	if app.GetSlug() == "" {
		return "", errors.New("GET /app answered without a slug")
	}
	return app.GetSlug() + "[bot]", nil
}

// installationClient returns a client for the event's installation.
func (a *App) installationClient(installationID int64) (*github.Client, error) {
	return a.deps.Clients.NewInstallationClient(installationID)
}

// followUp opens the removal PRs after a merge into a channel branch and notes them on the merged PR. Exactly
// once does not rest on this process: the removal branch name is deterministic (GitHub creates a ref once, so
// another replica or the reconciler, which runs this same follow-up for the merge, finds it instead of opening
// a second PR) and a duplicate note is deleted by whoever posted it second. The lock only spares the API
// calls of two workers of this process handling the same merge at once ("Redeliver" while the first runs).
func (a *App) followUp(ctx context.Context, client *github.Client, repo *github.Repository, pr *github.PullRequest) error {
	h := fnv.New32a()
	_, _ = fmt.Fprintf(h, "%s#%d", repo.GetFullName(), pr.GetNumber())
	mu := &a.followUpLocks[h.Sum32()%uint32(len(a.followUpLocks))]
	mu.Lock()
	defer mu.Unlock()
	cfg, err := repoconfig.Load(ctx, client, repo.GetOwner().GetLogin(), repo.GetName(), repo.GetDefaultBranch())
	if err != nil {
		return fmt.Errorf("removal follow-up of #%d: %w", pr.GetNumber(), err)
	}
	if _, ok := cfg.ChannelByBranch(pr.GetBase().GetRef()); !ok {
		return nil
	}
	results, err := a.promotions.FollowUpMerged(ctx, promotion.Repo{Client: client, Owner: repo.GetOwner().GetLogin(), Name: repo.GetName(), Config: cfg}, pr)
	log := zerolog.Ctx(ctx)
	for _, r := range results {
		log.Info().Str("channel", r.Channel).Int("removal_pr", r.PR.Number).Bool("created", r.Created).
			Int("removed", len(r.Removed)).Int("skipped", len(r.Skipped)).Msg("removal follow-up")
	}
	if err != nil {
		return fmt.Errorf("removal follow-up of #%d: %w", pr.GetNumber(), err)
	}
	return nil
}

// autoMergeRemoval merges a storagebot removal PR once it is safe (auto_merge_removals: true); the promotion
// service decides, and says why it waits.
// cfg is the repository config when the caller has it already, else nil (it is loaded here).
func (a *App) autoMergeRemoval(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config, number int, headRef string) error {
	if !strings.HasPrefix(headRef, promotion.RemoveBranchPrefix) {
		return nil
	}
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	if cfg == nil {
		var err error
		if cfg, err = repoconfig.Load(ctx, client, owner, name, repo.GetDefaultBranch()); err != nil {
			return fmt.Errorf("auto-merge of #%d: %w", number, err)
		}
	}
	if !cfg.AutoMergeRemovals {
		return nil
	}
	merged, reason, err := a.promotions.MergeRemovalIfReady(ctx, promotion.Repo{Client: client, Owner: owner, Name: name, Config: cfg}, number)
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Int("removal_pr", number).Bool("merged", merged).Str("reason", reason).Msg("removal auto-merge")
	return nil
}
