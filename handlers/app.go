package handlers

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/checkrun"
	"github.com/storagebot/storagebot/internal/commandexec"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/rollout"
)

// Deps are what the handlers delegate to. Every field is shared by all handlers and safe for concurrent use.
type Deps struct {
	// Clients creates GitHub clients authenticated as the App or one of its installations.
	Clients githubapp.ClientCreator
	// Cache holds git objects by SHA for every reader; nil gets a default-sized one.
	Cache *storage.ObjectCache
	// Rollouts rebuilds and rolls out distributions; nil disables rollout (and /rebuild says so).
	Rollouts *rollout.Service
}

// App is the set of event handlers storagebot registers with the dispatcher, and the services they share.
type App struct {
	deps       Deps
	checks     *checkrun.Service
	promotions *promotion.Service
	commands   *commandexec.Executor
	rollouts   *rollout.Service
	bot        botIdentity

	// followUpLocks serialise follow-ups of one merged PR in this process: GitHub's "Redeliver" can hand the
	// same merge to two workers at once, and both would otherwise look for the note before either posts it.
	followUpLocks [64]sync.Mutex
}

// New builds the handlers over deps.
func New(deps Deps) *App {
	if deps.Cache == nil {
		deps.Cache = storage.NewObjectCache(storage.DefaultCacheEntries)
	}
	a := &App{deps: deps, bot: botIdentity{clients: deps.Clients}, rollouts: deps.Rollouts}
	a.checks = &checkrun.Service{Cache: deps.Cache, BotLogin: a.bot.Login}
	a.promotions = &promotion.Service{Cache: deps.Cache}
	a.commands = &commandexec.Executor{Checks: a.checks, Promotions: a.promotions}
	if deps.Rollouts != nil {
		a.commands.Rollouts = deps.Rollouts
	}
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
		&WorkflowRun{app: a},
		&DeploymentStatus{app: a},
	}
}

// Promotions exposes the promotion service to the reconciler.
func (a *App) Promotions() *promotion.Service { return a.promotions }

// Checks exposes the check service to the reconciler.
func (a *App) Checks() *checkrun.Service { return a.checks }

// botIdentity resolves the App's bot login ("<slug>[bot]") once, from GET /app.
type botIdentity struct {
	clients githubapp.ClientCreator
	mu      sync.Mutex
	login   string
}

// Login returns the bot login, or "" when GitHub could not be asked (callers then trust no marker).
func (b *botIdentity) Login(ctx context.Context) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.login != "" {
		return b.login
	}
	client, err := b.clients.NewAppClient()
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("app client for GET /app")
		return ""
	}
	app, _, err := client.Apps.Get(ctx, "")
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("GET /app to learn the bot login")
		return ""
	}
	b.login = app.GetSlug() + "[bot]"
	return b.login
}

// installationClient returns a client for the event's installation.
func (a *App) installationClient(installationID int64) (*github.Client, error) {
	return a.deps.Clients.NewInstallationClient(installationID)
}

// followUp opens the removal PRs after a merge into a channel branch (exactly once, by deterministic branch).
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
	results, err := a.promotions.FollowUp(ctx, promotion.Repo{Client: client, Owner: repo.GetOwner().GetLogin(), Name: repo.GetName(), Config: cfg}, pr)
	if err != nil {
		return fmt.Errorf("removal follow-up of #%d: %w", pr.GetNumber(), err)
	}
	log := zerolog.Ctx(ctx)
	for _, r := range results {
		log.Info().Str("channel", r.Channel).Int("removal_pr", r.PR.Number).Bool("created", r.Created).
			Int("removed", len(r.Removed)).Int("skipped", len(r.Skipped)).Msg("removal follow-up")
	}
	return a.noteFollowUp(ctx, client, repo, pr.GetNumber(), promotion.FollowUpNote(results, pr.GetNumber()))
}

// noteFollowUp tells the merged PR what became of the lower copies, once: a redelivery finds the note by
// its marker among the bot's comments and posts nothing.
func (a *App) noteFollowUp(ctx context.Context, client *github.Client, repo *github.Repository, number int, note string) error {
	if note == "" {
		return nil
	}
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	bot := a.bot.Login(ctx)
	marker := promotion.FollowUpNoteMarker(number)
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		comments, resp, err := client.Issues.ListComments(ctx, owner, name, number, opts)
		if err != nil {
			return fmt.Errorf("look for the follow-up note on #%d: %w", number, err)
		}
		for _, c := range comments {
			if strings.EqualFold(c.GetUser().GetLogin(), bot) && strings.Contains(c.GetBody(), marker) {
				return nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if _, _, err := client.Issues.CreateComment(ctx, owner, name, number, &github.IssueComment{Body: &note}); err != nil {
		return fmt.Errorf("post the follow-up note on #%d: %w", number, err)
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
