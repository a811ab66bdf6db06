package handlers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/botcomment"
	"github.com/storagebot/storagebot/internal/commandrun"
	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/rollout"
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
	// Rollouts rebuilds and rolls out distributions; nil disables rollout (and /rebuild says so).
	Rollouts *rollout.Service
	// WriteSettle is how long a reply or note whose answer was lost may still land; 0 = botcomment.DefaultSettle.
	WriteSettle time.Duration
	// Rechecks takes a late look for duplicates after each reply or note (botcomment.Rechecks); nil takes none.
	Rechecks *botcomment.Rechecks
}

// GitHub is what the handlers call on GitHub, and hand to the services: githubapi.Client in production, a
// fake in unit tests.
type GitHub interface {
	commandrun.GitHub
	OpenPullRequests(ctx context.Context, owner, name, base string) ([]*github.PullRequest, error)
}

// checks is what the handlers ask of the check service (prcheck.Service).
type checks interface {
	CheckPR(ctx context.Context, gh prcheck.GitHub, repo repoctx.Repo, pr *github.PullRequest) (prcheck.Outcome, error)
}

// promotions is what the handlers ask of the promotion service (promotion.Service).
type promotions interface {
	HandleMerged(ctx context.Context, repo promotion.Repo, merged *github.PullRequest) error
	AutoMergeRemoval(ctx context.Context, repo promotion.Repo, number int, headRef string) error
}

// commandRunner is what the handlers ask of the command executor (commandrun.Executor).
type commandRunner interface {
	Handle(ctx context.Context, gh commandrun.GitHub, ev *github.IssueCommentEvent) error
}

// App is the set of event handlers storagebot registers with the dispatcher, and the services they share.
type App struct {
	// gitHub returns the API of one installation.
	gitHub     func(installationID int64) (GitHub, error)
	checks     checks
	promotions promotions
	commands   commandRunner
	bot        interface {
		Login(ctx context.Context) (string, error)
	}
	rollouts *rollout.Service

	// The concrete services, for the reconciler.
	checkService     *prcheck.Service
	promotionService *promotion.Service
}

// New builds the handlers over deps.
func New(deps Deps) *App {
	if deps.Cache == nil {
		deps.Cache = storage.NewObjectCache(storage.DefaultCacheEntries)
	}
	bot := &botIdentity{clients: deps.Clients}
	checkSvc := &prcheck.Service{Cache: deps.Cache, BotLogin: bot.Login, Seal: deps.Seal, AppID: deps.AppID}
	comments := botcomment.Writer{Settle: deps.WriteSettle, Rechecks: deps.Rechecks}
	promotionSvc := &promotion.Service{Cache: deps.Cache, BotLogin: bot.Login, Seal: deps.Seal, AppID: deps.AppID, Notes: comments}
	executor := &commandrun.Executor{Checks: checkSvc, Promotions: promotionSvc, Seal: deps.Seal, BotLogin: bot.Login, Replies: comments}
	if deps.Rollouts != nil { // a nil *rollout.Service must not become a non-nil Rebuilder
		executor.Rollouts = deps.Rollouts
	}
	return &App{
		gitHub: func(installationID int64) (GitHub, error) {
			client, err := deps.Clients.NewInstallationClient(installationID)
			if err != nil {
				return nil, fmt.Errorf("client of installation %d: %w", installationID, err)
			}
			return githubapi.New(client, deps.Cache), nil
		},
		checks:           checkSvc,
		promotions:       promotionSvc,
		commands:         executor,
		rollouts:         deps.Rollouts,
		bot:              bot,
		checkService:     checkSvc,
		promotionService: promotionSvc,
	}
}

// Handlers returns one handler per event storagebot reacts to.
func (a *App) Handlers() []githubapp.EventHandler {
	return []githubapp.EventHandler{
		&PullRequest{app: a},
		&CheckRun{app: a},
		&CheckSuite{app: a},
		&IssueComment{app: a},
		&Installation{},
		&WorkflowRun{app: a},
		&DeploymentStatus{app: a},
		&Push{app: a},
	}
}

// Promotions exposes the promotion service to the reconciler.
func (a *App) Promotions() *promotion.Service { return a.promotionService }

// BotLogin is the App's bot login ("<slug>[bot]"), learnt from GitHub once per process.
func (a *App) BotLogin(ctx context.Context) (string, error) { return a.bot.Login(ctx) }

// Checks exposes the check service to the reconciler.
func (a *App) Checks() *prcheck.Service { return a.checkService }

// repository builds the event's repository context: its installation's API and its configuration, loaded
// once for every service the event reaches.
func (a *App) repository(ctx context.Context, installationID int64, repo *github.Repository) (GitHub, repoctx.Repo, error) {
	gh, err := a.gitHub(installationID)
	if err != nil {
		return nil, repoctx.Repo{}, err
	}
	rc, err := repoctx.Load(ctx, gh, repo)
	return gh, rc, err
}

// promotionRepo is the promotion service's view of the repository context.
func promotionRepo(gh GitHub, rc repoctx.Repo) promotion.Repo {
	return promotion.Repo{Client: gh, Owner: rc.Owner, Name: rc.Name, Config: rc.Config}
}

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
