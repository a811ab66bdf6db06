// Package prcheck runs the storage policy on a pull request and publishes the verdict as the `storage-policy`
// check run on the PR's head commit: created in progress at once, completed with the summary, annotations and
// conclusion.
//
// Every evaluation writes a new run, never re-opening an earlier one: GitHub appends the annotations of every
// update to a run's, so a re-used run would keep the failures of every earlier evaluation, and GitHub shows
// the newest run of a name anyway. Runs are read scoped to this App (app_id): another App (an Actions job
// running `storagebot check`, an older registration of the bot) may own a `storage-policy` run on the same
// commit, which this App can neither update (403) nor take for its own verdict.
package prcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/exceptions"
	"github.com/storagebot/storagebot/internal/keylock"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/internal/report"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// GitHub is what the check service calls on GitHub: githubapi.Client in production, a fake in unit tests.
type GitHub interface {
	// GitData reads the repository's git objects by SHA.
	GitData(owner, name string) storage.Reader
	CreateCheckRun(ctx context.Context, owner, name string, opts github.CreateCheckRunOptions) (*github.CheckRun, error)
	UpdateCheckRun(ctx context.Context, owner, name string, id int64, opts github.UpdateCheckRunOptions) error
	CheckRuns(ctx context.Context, owner, name, ref string, opts github.ListCheckRunsOptions) ([]*github.CheckRun, error)
	IssueComments(ctx context.Context, owner, name string, number int) ([]*github.IssueComment, error)
	EditTitle(ctx context.Context, owner, name string, number int, title string) error
}

// Service evaluates pull requests. It is safe for concurrent use; its only state is the cache of git objects
// by SHA (which never change) and per-commit locks that keep two events for one commit from racing.
type Service struct {
	// Cache is the git object cache the installation clients made for this service share; the service itself
	// reads git data through its GitHub (GitData), which holds it.
	Cache *storage.ObjectCache
	// BotLogin returns the App's bot user ("<slug>[bot]"): only its comments carry exceptions. An error fails
	// the evaluation ("could not evaluate") rather than silently ignoring every exception.
	BotLogin func(ctx context.Context) (string, error)
	// Seal verifies the exceptions markers in the bot's comments; the zero Key trusts none.
	Seal seal.Key
	// Now is the clock for check-run timestamps.
	Now func() time.Time
	// AppID is this GitHub App's ID: runs of other Apps are never read as this App's verdict.
	AppID int64

	// locks serialise work on one commit inside this process, so the reconciler's "is a run missing?" and an
	// event's evaluation of the same commit do not interleave. Replicas can still race: the newest run wins.
	locks keylock.Striped
}

// CouldNotEvaluateTitle is the title of a run completed because reading the change failed (GitHub erred or
// timed out): a verdict on nothing, so the reconciler evaluates the head again.
const CouldNotEvaluateTitle = "storagebot could not evaluate this change"

// Outcome says what CheckPR did.
type Outcome struct {
	// Skipped is set when the PR's base is no channel branch: no check run is written.
	Skipped    bool
	Channel    string
	CheckRunID int64
	Conclusion string
	Findings   []policy.Finding
	// TitleFixed is set when the bot prefixed the title (fix_titles: true).
	TitleFixed bool
}

// CheckPR evaluates pr (base must be the channel branch) and writes a new check run on its head commit.
func (s *Service) CheckPR(ctx context.Context, gh GitHub, repo repoctx.Repo, pr *github.PullRequest) (Outcome, error) {
	unlock := s.locks.Lock(repo.FullName() + "@" + pr.GetHead().GetSHA())
	defer unlock()
	return s.checkPR(ctx, gh, repo, pr)
}

// CheckPRIfStale evaluates pr unless this App's newest storage-policy run on its head completed with a
// verdict (not "could not evaluate"), or started less than staleAfter ago (an evaluation still under way). It decides under the lock CheckPR takes, so an
// event handled by this process at the same moment is not evaluated twice. ran says whether it evaluated.
func (s *Service) CheckPRIfStale(ctx context.Context, gh GitHub, repo repoctx.Repo, pr *github.PullRequest, staleAfter time.Duration) (out Outcome, ran bool, err error) {
	headSHA := pr.GetHead().GetSHA()
	unlock := s.locks.Lock(repo.FullName() + "@" + headSHA)
	defer unlock()
	run, err := s.LatestRun(ctx, gh, repo.Owner, repo.Name, headSHA)
	if err != nil {
		return Outcome{}, false, err
	}
	completed := run.GetStatus() == "completed"
	judged := completed && run.GetOutput().GetTitle() != CouldNotEvaluateTitle
	underWay := !completed && s.now().Sub(run.GetStartedAt().Time) < staleAfter
	if run != nil && (judged || underWay) {
		return Outcome{CheckRunID: run.GetID(), Conclusion: run.GetConclusion()}, false, nil
	}
	out, err = s.checkPR(ctx, gh, repo, pr)
	return out, true, err
}

// LatestRun returns this App's newest storage-policy run on sha, nil when there is none. Runs other Apps
// wrote under the same name are not this App's verdict and are never returned.
func (s *Service) LatestRun(ctx context.Context, gh GitHub, owner, name, sha string) (*github.CheckRun, error) {
	if s.AppID == 0 {
		return nil, errors.New("read " + policy.CheckName + " runs: this App's ID is unknown (set GITHUB_APP_INTEGRATION_ID), so its runs cannot be told from other Apps'")
	}
	runs, err := gh.CheckRuns(ctx, owner, name, sha, github.ListCheckRunsOptions{
		CheckName: github.String(policy.CheckName), AppID: github.Int64(s.AppID), Filter: github.String("latest"),
	})
	if err != nil {
		return nil, fmt.Errorf("list this App's %s runs on %s: %w", policy.CheckName, sha, err)
	}
	var newest *github.CheckRun
	for _, run := range runs {
		// filter=latest lists one run per App and name; the check on the App guards against a host that
		// ignores the app_id parameter.
		if run.GetApp().GetID() != s.AppID {
			continue
		}
		if newest == nil || run.GetID() > newest.GetID() {
			newest = run
		}
	}
	return newest, nil
}

// IsFork reports whether pr's head branch lives in another repository than its base (a fork, or a deleted
// one: GitHub then sends head.repo null). Fork PRs trigger no write but the check run.
func IsFork(pr *github.PullRequest) bool {
	head, base := pr.GetHead().GetRepo(), pr.GetBase().GetRepo()
	if head == nil {
		return true
	}
	if head.GetID() != 0 && base.GetID() != 0 {
		return head.GetID() != base.GetID()
	}
	return !strings.EqualFold(head.GetFullName(), base.GetFullName())
}

// checkPR is CheckPR under the commit's lock.
func (s *Service) checkPR(ctx context.Context, gh GitHub, repo repoctx.Repo, pr *github.PullRequest) (Outcome, error) {
	owner, name := repo.Owner, repo.Name
	headSHA, baseRef := pr.GetHead().GetSHA(), pr.GetBase().GetRef()
	fork := IsFork(pr)
	log := zerolog.Ctx(ctx).With().Str("head_sha", headSHA).Str("base", baseRef).Bool("fork", fork).Logger()

	cfg, cfgErr := repo.Config, repo.ConfigErr
	if cfgErr != nil {
		// The channels are unknown; judge by the defaults whether this PR is one the check guards.
		if _, ok := repoconfig.Default().ChannelByBranch(baseRef); !ok {
			return Outcome{Skipped: true}, nil
		}
	}
	var channel repoconfig.Channel
	if cfgErr == nil {
		var ok bool
		if channel, ok = cfg.ChannelByBranch(baseRef); !ok {
			log.Debug().Msg("base is no channel branch: no check")
			return Outcome{Skipped: true}, nil
		}
	}

	runID, err := s.startRun(ctx, gh, owner, name, headSHA)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Channel: channel.Name, CheckRunID: runID}

	if cfgErr != nil {
		e, _ := repoconfig.IsInvalid(cfgErr)
		rendered := report.ConfigError(cfgErr, repoconfig.Path, e.Line)
		out.Conclusion = rendered.Conclusion
		log.Info().Err(cfgErr).Msg("repository config invalid: check fails without evaluating")
		return out, s.complete(ctx, gh, owner, name, runID, rendered)
	}

	// A fork PR's title is not fixed (fork PRs trigger no write but the check run): the finding asks its
	// author to fix it instead.
	fixTitles := cfg.FixTitles && !fork
	input, err := s.gather(ctx, gh, repo, fixTitles, channel, pr)
	if err != nil {
		// Report it on the PR rather than leave the run spinning; /recheck retries.
		failed := report.Output{
			Title:      CouldNotEvaluateTitle,
			Summary:    fmt.Sprintf("Reading the change failed:\n\n```\n%s\n```\n\nComment `/recheck` to try again; if it keeps failing, tell the storagebot operators.", err),
			Conclusion: policy.ConclusionFailure,
		}
		if cerr := s.complete(ctx, gh, owner, name, runID, failed); cerr != nil {
			return out, errors.Join(err, cerr)
		}
		return out, err
	}
	findings := policy.Evaluate(input, cfg.RulesFor(channel.Name))
	rendered := report.Render(input, findings)
	out.Findings, out.Conclusion = findings, rendered.Conclusion
	if err := s.complete(ctx, gh, owner, name, runID, rendered); err != nil {
		return out, err
	}
	log.Info().Str("channel", channel.Name).Str("conclusion", rendered.Conclusion).
		Int("changes", len(input.Changes)).Int("findings", len(findings)).Msg("storage-policy completed")

	if fixTitles && !strings.HasPrefix(pr.GetTitle(), "["+baseRef+"]") {
		title := "[" + baseRef + "] " + pr.GetTitle()
		if err := gh.EditTitle(ctx, owner, name, pr.GetNumber(), title); err != nil {
			return out, fmt.Errorf("fix title of #%d: %w", pr.GetNumber(), err)
		}
		out.TitleFixed = true
	}
	return out, nil
}

// Change is what a PR into a channel branch changes, as the policy sees it.
type Change struct {
	Channel repoconfig.Channel
	Input   policy.Input
}

// ChangeOf gathers the change of a PR into a channel branch under the repository's (valid) configuration,
// for commands that act on the versions a PR touches (/allow). ok is false when the PR's base is no channel
// branch.
func (s *Service) ChangeOf(ctx context.Context, gh GitHub, repo repoctx.Repo, pr *github.PullRequest) (change Change, ok bool, err error) {
	if repo.Config == nil {
		return Change{}, false, fmt.Errorf("gather change of #%d: the repository configuration is invalid: %w", pr.GetNumber(), repo.ConfigErr)
	}
	channel, ok := repo.Config.ChannelByBranch(pr.GetBase().GetRef())
	if !ok {
		return Change{}, false, nil
	}
	input, err := s.gather(ctx, gh, repo, repo.Config.FixTitles && !IsFork(pr), channel, pr)
	return Change{Channel: channel, Input: input}, true, err
}

// gather collects the facts of the PR: the change against its base branch, the other channels' branch heads,
// and the exceptions the bot recorded on the PR.
func (s *Service) gather(ctx context.Context, gh GitHub, repo repoctx.Repo, fixTitles bool, channel repoconfig.Channel, pr *github.PullRequest) (policy.Input, error) {
	cfg := repo.Config
	others := map[string]string{}
	for _, c := range cfg.Channels {
		if c.Name != channel.Name {
			others[c.Name] = c.Branch
		}
	}
	// The exceptions are read while the storage is: Gather only passes them through.
	type read struct {
		excs []policy.Exception
		err  error
	}
	comments := make(chan read, 1)
	go func() {
		excs, err := s.exceptions(ctx, gh, repo, pr.GetNumber())
		comments <- read{excs, err}
	}()
	title := pr.GetTitle()
	res, err := storage.Gather(ctx, gh.GitData(repo.Owner, repo.Name), storage.Request{
		Channel:   channel.Name,
		Channels:  cfg.ChannelNames(),
		Branch:    channel.Branch,
		Base:      channel.Branch,
		Head:      pr.GetHead().GetSHA(),
		Others:    others,
		Title:     &title,
		FixTitles: fixTitles,
	})
	c := <-comments
	if c.err != nil {
		return policy.Input{}, c.err
	}
	if err != nil {
		return policy.Input{}, fmt.Errorf("gather change of #%d: %w", pr.GetNumber(), err)
	}
	if res.BatchErr != nil {
		zerolog.Ctx(ctx).Info().Err(res.BatchErr).Int("pr", pr.GetNumber()).Msg("GraphQL batch read failed: the change was read through REST")
	}
	res.Input.Exceptions = c.excs
	return res.Input, nil
}

// exceptions reads the exceptions the bot recorded in the PR's comments.
func (s *Service) exceptions(ctx context.Context, gh GitHub, repo repoctx.Repo, number int) ([]policy.Exception, error) {
	if s.BotLogin == nil {
		return nil, errors.New("read exceptions: no way to learn the bot login is configured")
	}
	bot, err := s.BotLogin(ctx)
	if err != nil {
		return nil, fmt.Errorf("read exceptions: %w", err)
	}
	all, err := gh.IssueComments(ctx, repo.Owner, repo.Name, number)
	if err != nil {
		return nil, fmt.Errorf("list comments of #%d for exceptions: %w", number, err)
	}
	return exceptions.FromComments(ctx, all, bot, exceptions.Key(s.Seal, repo.FullName(), number)), nil
}

// startRun creates a new run on the head commit, in progress. It never re-opens an earlier run: GitHub
// appends annotations on every update, so the earlier evaluation's would stay on it.
func (s *Service) startRun(ctx context.Context, gh GitHub, owner, name, headSHA string) (int64, error) {
	now := github.Timestamp{Time: s.now()}
	run, err := gh.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: policy.CheckName, HeadSHA: headSHA, Status: github.String("in_progress"), StartedAt: &now,
		ExternalID: github.String(headSHA),
	})
	if err != nil {
		return 0, fmt.Errorf("create %s run on %s: %w", policy.CheckName, headSHA, err)
	}
	return run.GetID(), nil
}

// complete writes the verdict on the run this evaluation created; annotations past GitHub's 50 per request go
// in further updates of that same run, which GitHub appends to its annotations.
func (s *Service) complete(ctx context.Context, gh GitHub, owner, name string, runID int64, out report.Output) error {
	batches := report.Batches(out.Annotations, report.MaxAnnotationsPerRequest)
	if len(batches) == 0 {
		batches = [][]report.Annotation{nil}
	}
	now := github.Timestamp{Time: s.now()}
	for i, batch := range batches {
		opts := github.UpdateCheckRunOptions{
			Name: policy.CheckName,
			Output: &github.CheckRunOutput{
				Title:       github.String(out.Title),
				Summary:     github.String(out.Summary),
				Annotations: annotations(batch),
			},
		}
		if out.Text != "" {
			opts.Output.Text = github.String(out.Text)
		}
		// Completed with the last batch: until then the run stays in progress, so nothing reads a verdict
		// whose annotations are not all there yet.
		if i == len(batches)-1 {
			opts.Status = github.String("completed")
			opts.Conclusion = github.String(out.Conclusion)
			opts.CompletedAt = &now
		}
		if err := gh.UpdateCheckRun(ctx, owner, name, runID, opts); err != nil {
			return fmt.Errorf("complete %s run %d (batch %d of %d): %w", policy.CheckName, runID, i+1, len(batches), err)
		}
	}
	return nil
}

func annotations(batch []report.Annotation) []*github.CheckRunAnnotation {
	out := make([]*github.CheckRunAnnotation, 0, len(batch))
	for _, a := range batch {
		out = append(out, &github.CheckRunAnnotation{
			Path:            github.String(a.Path),
			StartLine:       github.Int(a.StartLine),
			EndLine:         github.Int(a.EndLine),
			AnnotationLevel: github.String(a.Level),
			Title:           github.String(a.Title),
			Message:         github.String(a.Message),
		})
	}
	return out
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
