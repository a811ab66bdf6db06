// Package reconcile periodically finishes work that a missed or failed webhook left undone: for every
// repository of every installation, removal PRs for versions already promoted, and a report of versions
// held by two channels with different contents (docs/architecture.md §6). Every step is idempotent (deterministic branch
// names, look before create), so running it on several replicas at once is safe, if wasteful.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/internal/storage"
)

// GitHub is what the reconciler calls on one installation's GitHub: githubapi.Client in production, a fake in
// unit tests. It includes the check service's calls, which stale checks are run with.
type GitHub interface {
	prcheck.GitHub
	promotion.GitHub
	repoctx.ConfigSource
	Repositories(ctx context.Context) ([]*github.Repository, error)
	BranchExists(ctx context.Context, owner, name, branch string) (bool, error)
	OpenPullRequests(ctx context.Context, owner, name, base string) ([]*github.PullRequest, error)
	// GoGitHub is the client the rollout controller works with; nil in unit tests.
	GoGitHub() *github.Client
}

// Recorder is what the reconciler tells the status board (status.Recorder).
type Recorder interface {
	Changed(installationID int64, repo *github.Repository)
	Failed(repo, what string, err error)
}

// Checks is what the reconciler asks of the check service (prcheck.Service).
type Checks interface {
	CheckPRIfStale(ctx context.Context, gh prcheck.GitHub, repo repoctx.Repo, pr *github.PullRequest, staleAfter time.Duration) (prcheck.Outcome, bool, error)
}

// Promotions is what the reconciler asks of the promotion service (promotion.Service).
type Promotions interface {
	ReconcileRemovals(ctx context.Context, repo promotion.Repo) (promotion.ReconcileResult, error)
}

// Runner reconciles every repository the App is installed on.
type Runner struct {
	Clients    githubapp.ClientCreator
	Promotions Promotions
	// Checks, when set, re-runs storage-policy on open PRs whose head has no completed run (a delivery lost
	// while a replica restarted, a failure GitHub did not redeliver).
	Checks Checks
	// Rollout, when set, is asked for a rollout pass over every storage repository each run, so distributions
	// behind their desired state catch up after a missed event.
	Rollout func(client *github.Client, repo *github.Repository)
	// Interval between runs; 0 runs once at start only. A repository's own reconcile.interval, when longer,
	// spaces its runs further.
	Interval time.Duration
	// StaleAfter is how long a run may stay in progress before it is taken for abandoned (a replica died
	// mid-evaluation) and evaluated again; NewRunner sets DefaultStaleAfter.
	StaleAfter time.Duration
	// Grace leaves a PR updated less than this long ago to its webhook: its delivery may still be queued, and
	// evaluating it here too would evaluate it twice. 0 evaluates every PR whose check is missing.
	Grace time.Duration
	// GitHub returns the API of one installation.
	GitHub func(installationID int64) (GitHub, error)
	// Now is the clock (grace periods, repository intervals); nil is time.Now.
	Now func() time.Time
	// Recorder, when set, is told of every repository reconciled (so its dashboard is brought up to date)
	// and of every repository whose reconcile failed, with the cause (the status page shows both).
	Recorder Recorder

	runs      *prometheus.CounterVec
	conflicts *prometheus.GaugeVec

	mu      sync.Mutex
	lastRun map[string]time.Time // repository full name → last reconcile
}

// NewRunner builds a runner and registers its metrics in reg (nil: not registered). checks may be nil: no
// stale checks are re-run.
func NewRunner(clients githubapp.ClientCreator, promotions *promotion.Service, checks *prcheck.Service, interval time.Duration, reg prometheus.Registerer) *Runner {
	var cache *storage.ObjectCache // the git objects the handlers read too
	if promotions != nil {
		cache = promotions.Cache
	}
	r := &Runner{
		Clients: clients, Interval: interval, StaleAfter: DefaultStaleAfter,
		GitHub: func(id int64) (GitHub, error) {
			client, err := clients.NewInstallationClient(id)
			if err != nil {
				return nil, fmt.Errorf("installation %d client: %w", id, err)
			}
			return githubapi.New(client, cache), nil
		},
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storagebot_reconcile_repositories_total",
			Help: "Reconcile work, by result: ok, error, skipped (repositories), stale_check (PR checks re-run), check_left_to_webhook (PRs updated within the grace period).",
		}, []string{"result"}),
		conflicts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "storagebot_reconcile_conflicts",
			Help: "Versions held by two channels with different contents, by repository (never removed automatically).",
		}, []string{"repository"}),
		lastRun: map[string]time.Time{},
	}
	// A nil pointer in an interface would not compare equal to nil.
	if promotions != nil {
		r.Promotions = promotions
	}
	if checks != nil {
		r.Checks = checks
	}
	if reg != nil {
		reg.MustRegister(r.runs, r.conflicts)
	}
	return r
}

// Loop reconciles at once, then every Interval, until ctx ends.
func (r *Runner) Loop(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	for {
		if err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			log.Error().Err(err).Msg("reconcile run failed; the next run retries")
		}
		if r.Interval <= 0 {
			return
		}
		t := time.NewTimer(r.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// RunOnce reconciles every repository of every installation once. One repository's failure does not stop
// the others; all failures are returned together.
func (r *Runner) RunOnce(ctx context.Context) error {
	app, err := r.Clients.NewAppClient()
	if err != nil {
		return fmt.Errorf("app client: %w", err)
	}
	insts, err := githubapi.AllPages(ctx, func(ctx context.Context, page int) ([]*github.Installation, *github.Response, error) {
		return app.Apps.ListInstallations(ctx, &github.ListOptions{Page: page, PerPage: githubapi.PerPage})
	})
	if err != nil {
		return fmt.Errorf("list installations: %w", err)
	}
	var errs []error
	for _, inst := range insts {
		if err := r.installation(ctx, inst.GetID()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) installation(ctx context.Context, id int64) error {
	gh, err := r.GitHub(id)
	if err != nil {
		return err
	}
	repos, err := gh.Repositories(ctx)
	if err != nil {
		return fmt.Errorf("list repositories of installation %d: %w", id, err)
	}
	var errs []error
	for _, repo := range repos {
		err := r.repository(ctx, gh, repo)
		if err != nil {
			r.runs.WithLabelValues("error").Inc()
			errs = append(errs, fmt.Errorf("%s: %w", repo.GetFullName(), err))
		}
		if r.Recorder != nil {
			r.Recorder.Failed(repo.GetFullName(), "reconcile", err) // nil records nothing
			r.Recorder.Changed(id, repo)
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) repository(ctx context.Context, gh GitHub, ghRepo *github.Repository) error {
	repo, err := repoctx.Load(ctx, gh, ghRepo)
	if err != nil {
		return err
	}
	log := zerolog.Ctx(ctx).With().Str(githubapp.LogKeyRepositoryOwner, repo.Owner).Str(githubapp.LogKeyRepositoryName, repo.Name).Logger()
	if repo.ConfigErr != nil {
		log.Warn().Err(repo.ConfigErr).Msg("reconcile skipped: repository config invalid")
		r.runs.WithLabelValues("skipped").Inc()
		return nil
	}
	cfg := repo.Config
	if !r.due(repo.FullName(), cfg.Reconcile.Interval) {
		return nil
	}
	// A repository without the channel branches is not a storage repository.
	for _, ch := range cfg.Channels {
		exists, err := gh.BranchExists(ctx, repo.Owner, repo.Name, ch.Branch)
		if err != nil {
			return err
		}
		if !exists {
			log.Debug().Str("branch", ch.Branch).Msg("reconcile skipped: no such channel branch")
			r.runs.WithLabelValues("skipped").Inc()
			return nil
		}
	}
	if r.Rollout != nil && len(cfg.Distributions) > 0 {
		r.Rollout(gh.GoGitHub(), &github.Repository{
			Owner: &github.User{Login: github.String(repo.Owner)}, Name: github.String(repo.Name),
			FullName: github.String(repo.FullName()), DefaultBranch: github.String(repo.DefaultBranch),
		})
	}
	res, err := r.Promotions.ReconcileRemovals(ctx, promotion.Repo{Client: gh, Owner: repo.Owner, Name: repo.Name, Config: cfg})
	if err != nil {
		return err
	}
	r.runs.WithLabelValues("ok").Inc()
	r.conflicts.WithLabelValues(repo.FullName()).Set(float64(len(res.Conflicts)))
	for _, c := range res.Conflicts {
		log.Warn().Str("package", c.Version.Package).Str("version", c.Version.Version).
			Str("lower", c.Lower).Str("higher", c.Higher).Str("lower_tree", c.LowerTree).Str("higher_tree", c.HigherTree).
			Msg("version held by two channels with different contents: the lower copy is invisible; fix it by hand")
	}
	for _, rm := range res.Removals {
		// A PR found again on every run is not news; one this run opened is.
		ev := log.Debug()
		if rm.Created {
			ev = log.Info()
		}
		ev.Str("channel", rm.Channel).Int("removal_pr", rm.PR.Number).Str("branch", rm.PR.Branch).Bool("created", rm.Created).
			Int("versions", len(rm.Removed)).Msg("reconcile: removal PR for versions already promoted")
	}
	if len(res.FollowedUp) > 0 {
		log.Debug().Ints("merged_prs", res.FollowedUp).Msg("reconcile: ran the removal follow-up of merged PRs")
	}
	return r.staleChecks(log.WithContext(ctx), gh, repo)
}

// staleChecks runs storage-policy on open PRs into channel branches whose head has no completed run.
func (r *Runner) staleChecks(ctx context.Context, gh GitHub, repo repoctx.Repo) error {
	if r.Checks == nil {
		return nil
	}
	var errs []error
	for _, ch := range repo.Config.Channels {
		prs, err := gh.OpenPullRequests(ctx, repo.Owner, repo.Name, ch.Branch)
		if err != nil {
			return fmt.Errorf("list open PRs into %s: %w", ch.Branch, err)
		}
		for _, pr := range prs {
			if err := r.checkIfStale(ctx, gh, repo, pr); err != nil {
				errs = append(errs, fmt.Errorf("#%d: %w", pr.GetNumber(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// DefaultStaleAfter is how long a run may stay in progress before the reconciler takes it for abandoned (a
// replica died mid-evaluation).
const DefaultStaleAfter = 10 * time.Minute

// DefaultGrace is how long after a PR's last update the reconciler leaves its check to the webhook.
const DefaultGrace = 5 * time.Minute

func (r *Runner) checkIfStale(ctx context.Context, gh GitHub, repo repoctx.Repo, pr *github.PullRequest) error {
	log := zerolog.Ctx(ctx).With().Int(githubapp.LogKeyPRNum, pr.GetNumber()).Logger()
	if age := r.now().Sub(pr.GetUpdatedAt().Time); age < r.Grace {
		log.Debug().Dur("age", age).Dur("grace", r.Grace).Msg("reconcile: PR updated within the grace period; its webhook evaluates it")
		r.runs.WithLabelValues("check_left_to_webhook").Inc()
		return nil
	}
	// The decision is made under the check service's per-commit lock and on this App's runs only: another
	// App's storage-policy run is no evidence this App checked the head.
	_, ran, err := r.Checks.CheckPRIfStale(ctx, gh, repo, pr, r.StaleAfter)
	if ran {
		log.Info().Msg("reconcile: storage-policy missing or stuck on the PR head; evaluated")
		r.runs.WithLabelValues("stale_check").Inc()
	}
	return err
}

// due records and reports whether a repository's own interval has elapsed since its last reconcile.
func (r *Runner) due(repo string, interval time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	// 10% slack: a repository on the server's own interval must not skip every other tick to timer drift.
	now := r.now()
	if last, ok := r.lastRun[repo]; ok && now.Sub(last) < interval*9/10 {
		return false
	}
	r.lastRun[repo] = now
	return true
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
