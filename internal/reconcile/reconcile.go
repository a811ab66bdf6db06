// Package reconcile periodically finishes work that a missed or failed webhook left undone: for every
// repository of every installation, removal PRs for versions already promoted, and a report of versions
// held by two channels with different contents. Every step is idempotent (deterministic branch names, look
// before create), so running it on several replicas at once is safe, if wasteful. A duplicate a merged PR
// explains is removed by running that PR's own follow-up, so the reconciler and the merge event (on any
// replica) write the same branch and GitHub's one-time ref creation decides who opens the PR.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/checkrun"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoconfig"
)

// Runner reconciles every repository the App is installed on.
type Runner struct {
	Clients    githubapp.ClientCreator
	Promotions *promotion.Service
	// Checks, when set, re-runs storage-policy on open PRs whose head has no completed run (a delivery lost
	// while a replica restarted, a failure GitHub did not redeliver).
	Checks *checkrun.Service
	// Interval between runs; 0 runs once at start only. A repository's own reconcile.interval, when longer,
	// spaces its runs further.
	Interval time.Duration
	// StaleAfter is how long a run may stay in progress before it is taken for abandoned (a replica died
	// mid-evaluation) and evaluated again; NewRunner sets DefaultStaleAfter.
	StaleAfter time.Duration
	// Grace leaves a PR updated less than this long ago to its webhook: its delivery may still be queued, and
	// evaluating it here too would evaluate it twice. 0 evaluates every PR whose check is missing.
	Grace time.Duration

	runs      *prometheus.CounterVec
	conflicts *prometheus.GaugeVec

	mu      sync.Mutex
	lastRun map[string]time.Time // repository full name → last reconcile
}

// NewRunner builds a runner and registers its metrics in reg (nil: not registered).
func NewRunner(clients githubapp.ClientCreator, promotions *promotion.Service, checks *checkrun.Service, interval time.Duration, reg prometheus.Registerer) *Runner {
	r := &Runner{
		Clients: clients, Promotions: promotions, Checks: checks, Interval: interval, StaleAfter: DefaultStaleAfter,
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
	var errs []error
	opts := &github.ListOptions{PerPage: 100}
	for {
		insts, resp, err := app.Apps.ListInstallations(ctx, opts)
		if err != nil {
			return fmt.Errorf("list installations: %w", err)
		}
		for _, inst := range insts {
			if err := r.installation(ctx, inst.GetID()); err != nil {
				errs = append(errs, err)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return errors.Join(errs...)
}

func (r *Runner) installation(ctx context.Context, id int64) error {
	client, err := r.Clients.NewInstallationClient(id)
	if err != nil {
		return fmt.Errorf("installation %d client: %w", id, err)
	}
	var errs []error
	opts := &github.ListOptions{PerPage: 100}
	for {
		list, resp, err := client.Apps.ListRepos(ctx, opts)
		if err != nil {
			return fmt.Errorf("list repositories of installation %d: %w", id, err)
		}
		for _, repo := range list.Repositories {
			if err := r.repository(ctx, client, repo); err != nil {
				r.runs.WithLabelValues("error").Inc()
				errs = append(errs, fmt.Errorf("%s: %w", repo.GetFullName(), err))
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return errors.Join(errs...)
}

func (r *Runner) repository(ctx context.Context, client *github.Client, repo *github.Repository) error {
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	log := zerolog.Ctx(ctx).With().Str(githubapp.LogKeyRepositoryOwner, owner).Str(githubapp.LogKeyRepositoryName, name).Logger()
	cfg, err := repoconfig.Load(ctx, client, owner, name, repo.GetDefaultBranch())
	if err != nil {
		if _, invalid := repoconfig.IsInvalid(err); invalid {
			log.Warn().Err(err).Msg("reconcile skipped: repository config invalid")
			r.runs.WithLabelValues("skipped").Inc()
			return nil
		}
		return err
	}
	if !r.due(repo.GetFullName(), cfg.Reconcile.Interval) {
		return nil
	}
	// A repository without the channel branches is not a storage repository.
	for _, ch := range cfg.Channels {
		if _, resp, err := client.Repositories.GetBranch(ctx, owner, name, ch.Branch, false); err != nil {
			if resp != nil && resp.StatusCode == http.StatusNotFound {
				log.Debug().Str("branch", ch.Branch).Msg("reconcile skipped: no such channel branch")
				r.runs.WithLabelValues("skipped").Inc()
				return nil
			}
			return fmt.Errorf("read branch %s: %w", ch.Branch, err)
		}
	}
	res, err := r.Promotions.Reconcile(ctx, promotion.Repo{Client: client, Owner: owner, Name: name, Config: cfg})
	if err != nil {
		return err
	}
	r.runs.WithLabelValues("ok").Inc()
	r.conflicts.WithLabelValues(repo.GetFullName()).Set(float64(len(res.Conflicts)))
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
	return r.staleChecks(log.WithContext(ctx), client, repo, cfg)
}

// staleChecks runs storage-policy on open PRs into channel branches whose head has no completed run.
func (r *Runner) staleChecks(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config) error {
	if r.Checks == nil {
		return nil
	}
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	var errs []error
	for _, ch := range cfg.Channels {
		opts := &github.PullRequestListOptions{State: "open", Base: ch.Branch, ListOptions: github.ListOptions{PerPage: 100}}
		for {
			prs, resp, err := client.PullRequests.List(ctx, owner, name, opts)
			if err != nil {
				return fmt.Errorf("list open PRs into %s: %w", ch.Branch, err)
			}
			for _, pr := range prs {
				if err := r.checkIfStale(ctx, client, repo, pr); err != nil {
					errs = append(errs, fmt.Errorf("#%d: %w", pr.GetNumber(), err))
				}
			}
			if resp.NextPage == 0 {
				break
			}
			opts.Page = resp.NextPage
		}
	}
	return errors.Join(errs...)
}

// DefaultStaleAfter is how long a run may stay in progress before the reconciler takes it for abandoned (a
// replica died mid-evaluation).
const DefaultStaleAfter = 10 * time.Minute

// DefaultGrace is how long after a PR's last update the reconciler leaves its check to the webhook.
const DefaultGrace = 5 * time.Minute

func (r *Runner) checkIfStale(ctx context.Context, client *github.Client, repo *github.Repository, pr *github.PullRequest) error {
	log := zerolog.Ctx(ctx).With().Int(githubapp.LogKeyPRNum, pr.GetNumber()).Logger()
	if age := time.Since(pr.GetUpdatedAt().Time); age < r.Grace {
		log.Debug().Dur("age", age).Dur("grace", r.Grace).Msg("reconcile: PR updated within the grace period; its webhook evaluates it")
		r.runs.WithLabelValues("check_left_to_webhook").Inc()
		return nil
	}
	// The decision is made under the check service's per-commit lock and on this App's runs only: another
	// App's storage-policy run is no evidence this App checked the head.
	_, ran, err := r.Checks.CheckPRIfStale(ctx, client, repo, pr, r.StaleAfter)
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
	if last, ok := r.lastRun[repo]; ok && time.Since(last) < interval*9/10 {
		return false
	}
	r.lastRun[repo] = time.Now()
	return true
}
