// Package checkrun runs the storage policy on a pull request and publishes the verdict as the `storage-policy`
// check run on the PR's head commit: created in progress at once, completed with the summary, annotations and
// conclusion.
//
// Every evaluation writes a new run, never re-opening an earlier one: GitHub appends the annotations of every
// update to a run's, so a re-used run would keep the failures of every earlier evaluation, and GitHub shows
// the newest run of a name anyway. Runs are read scoped to this App (app_id): another App (an Actions job
// running `storagebot check`, an older registration of the bot) may own a `storage-policy` run on the same
// commit, which this App can neither update (403) nor take for its own verdict.
package checkrun

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/exceptions"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/report"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// Name is the check run's name, the one branch protection requires.
const Name = "storage-policy"

// Service evaluates pull requests. It is safe for concurrent use; its only state is the cache of git objects
// by SHA (which never change) and per-commit locks that keep two events for one commit from racing.
type Service struct {
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

	locks [64]sync.Mutex // striped by "owner/repo@sha": bounded, whatever the number of commits
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
	// Config is the repository configuration the PR was judged by (nil when it was invalid).
	Config *repoconfig.Config
}

// CheckPR evaluates pr (base must be the channel branch) and writes a new check run on its head commit.
func (s *Service) CheckPR(ctx context.Context, client *github.Client, repo *github.Repository, pr *github.PullRequest) (Outcome, error) {
	unlock := s.lock(repo.GetOwner().GetLogin() + "/" + repo.GetName() + "@" + pr.GetHead().GetSHA())
	defer unlock()
	return s.checkPR(ctx, client, repo, pr)
}

// CheckPRIfStale evaluates pr unless this App's newest storage-policy run on its head completed with a
// verdict (not "could not evaluate"), or started less than staleAfter ago (an evaluation still under way). It decides under the lock CheckPR takes, so an
// event handled by this process at the same moment is not evaluated twice. ran says whether it evaluated.
func (s *Service) CheckPRIfStale(ctx context.Context, client *github.Client, repo *github.Repository, pr *github.PullRequest, staleAfter time.Duration) (out Outcome, ran bool, err error) {
	owner, name, headSHA := repo.GetOwner().GetLogin(), repo.GetName(), pr.GetHead().GetSHA()
	unlock := s.lock(owner + "/" + name + "@" + headSHA)
	defer unlock()
	run, err := s.LatestRun(ctx, client, owner, name, headSHA)
	if err != nil {
		return Outcome{}, false, err
	}
	completed := run.GetStatus() == "completed"
	judged := completed && run.GetOutput().GetTitle() != CouldNotEvaluateTitle
	underWay := !completed && s.now().Sub(run.GetStartedAt().Time) < staleAfter
	if run != nil && (judged || underWay) {
		return Outcome{CheckRunID: run.GetID(), Conclusion: run.GetConclusion()}, false, nil
	}
	out, err = s.checkPR(ctx, client, repo, pr)
	return out, true, err
}

// LatestRun returns this App's newest storage-policy run on sha, nil when there is none. Runs other Apps
// wrote under the same name are not this App's verdict and are never returned.
func (s *Service) LatestRun(ctx context.Context, client *github.Client, owner, name, sha string) (*github.CheckRun, error) {
	if s.AppID == 0 {
		return nil, errors.New("read " + Name + " runs: this App's ID is unknown (set GITHUB_APP_INTEGRATION_ID), so its runs cannot be told from other Apps'")
	}
	list, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, &github.ListCheckRunsOptions{
		CheckName: github.String(Name), AppID: github.Int64(s.AppID), Filter: github.String("latest"),
		ListOptions: github.ListOptions{PerPage: 100},
	})
	if err != nil {
		return nil, fmt.Errorf("list this App's %s runs on %s: %w", Name, sha, err)
	}
	var newest *github.CheckRun
	for _, run := range list.CheckRuns {
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
func (s *Service) checkPR(ctx context.Context, client *github.Client, repo *github.Repository, pr *github.PullRequest) (Outcome, error) {
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	headSHA, baseRef := pr.GetHead().GetSHA(), pr.GetBase().GetRef()
	fork := IsFork(pr)
	log := zerolog.Ctx(ctx).With().Str("head_sha", headSHA).Str("base", baseRef).Bool("fork", fork).Logger()

	cfg, cfgErr := repoconfig.Load(ctx, client, owner, name, repo.GetDefaultBranch())
	if cfgErr != nil {
		if _, invalid := repoconfig.IsInvalid(cfgErr); !invalid {
			return Outcome{}, cfgErr
		}
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

	runID, err := s.startRun(ctx, client, owner, name, headSHA)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Channel: channel.Name, CheckRunID: runID, Config: cfg}

	if cfgErr != nil {
		e, _ := repoconfig.IsInvalid(cfgErr)
		rendered := report.ConfigError(cfgErr, repoconfig.Path, e.Line)
		out.Conclusion = rendered.Conclusion
		log.Info().Err(cfgErr).Msg("repository config invalid: check fails without evaluating")
		return out, s.complete(ctx, client, owner, name, runID, rendered)
	}

	// A fork PR's title is not fixed (fork PRs trigger no write but the check run): the finding asks its
	// author to fix it instead.
	fixTitles := cfg.FixTitles && !fork
	input, err := s.gather(ctx, client, owner, name, cfg, fixTitles, channel, pr)
	if err != nil {
		// Report it on the PR rather than leave the run spinning; /recheck retries.
		failed := report.Output{
			Title:      CouldNotEvaluateTitle,
			Summary:    fmt.Sprintf("Reading the change failed:\n\n```\n%s\n```\n\nComment `/recheck` to try again; if it keeps failing, tell the storagebot operators.", err),
			Conclusion: policy.ConclusionFailure,
		}
		if cerr := s.complete(ctx, client, owner, name, runID, failed); cerr != nil {
			return out, errors.Join(err, cerr)
		}
		return out, err
	}
	findings := policy.Evaluate(input, cfg.RulesFor(channel.Name))
	rendered := report.Render(input, findings)
	out.Findings, out.Conclusion = findings, rendered.Conclusion
	if err := s.complete(ctx, client, owner, name, runID, rendered); err != nil {
		return out, err
	}
	log.Info().Str("channel", channel.Name).Str("conclusion", rendered.Conclusion).
		Int("changes", len(input.Changes)).Int("findings", len(findings)).Msg("storage-policy completed")

	if fixTitles && !strings.HasPrefix(pr.GetTitle(), "["+baseRef+"]") {
		title := "[" + baseRef + "] " + pr.GetTitle()
		if _, _, err := client.PullRequests.Edit(ctx, owner, name, pr.GetNumber(), &github.PullRequest{Title: &title}); err != nil {
			return out, fmt.Errorf("fix title of #%d: %w", pr.GetNumber(), err)
		}
		out.TitleFixed = true
	}
	return out, nil
}

// Facts gathers the change of a PR into a channel branch under cfg (the repository config the caller has
// already loaded), for commands that act on the versions a PR touches (/allow). ok is false when the PR's
// base is no channel branch.
func (s *Service) Facts(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config, pr *github.PullRequest) (channel repoconfig.Channel, input policy.Input, ok bool, err error) {
	channel, ok = cfg.ChannelByBranch(pr.GetBase().GetRef())
	if !ok {
		return channel, input, false, nil
	}
	input, err = s.gather(ctx, client, repo.GetOwner().GetLogin(), repo.GetName(), cfg, cfg.FixTitles && !IsFork(pr), channel, pr)
	return channel, input, true, err
}

// gather collects the facts of the PR: the change against its base branch, the other channels' branch heads,
// and the exceptions the bot recorded on the PR.
func (s *Service) gather(ctx context.Context, client *github.Client, owner, name string, cfg *repoconfig.Config, fixTitles bool, channel repoconfig.Channel, pr *github.PullRequest) (policy.Input, error) {
	others := map[string]string{}
	for _, c := range cfg.Channels {
		if c.Name != channel.Name {
			others[c.Name] = c.Branch
		}
	}
	excs, err := s.exceptions(ctx, client, owner, name, pr.GetNumber())
	if err != nil {
		return policy.Input{}, err
	}
	title := pr.GetTitle()
	reader := storage.NewGitHubReader(client, owner, name, s.Cache)
	res, err := storage.Gather(ctx, reader, storage.Request{
		Channel:    channel.Name,
		Channels:   cfg.ChannelNames(),
		Branch:     channel.Branch,
		Base:       channel.Branch,
		Head:       pr.GetHead().GetSHA(),
		Others:     others,
		Title:      &title,
		FixTitles:  fixTitles,
		Exceptions: excs,
	})
	if err != nil {
		return policy.Input{}, fmt.Errorf("gather change of #%d: %w", pr.GetNumber(), err)
	}
	return res.Input, nil
}

// exceptions reads the exceptions the bot recorded in the PR's comments.
func (s *Service) exceptions(ctx context.Context, client *github.Client, owner, name string, number int) ([]policy.Exception, error) {
	if s.BotLogin == nil {
		return nil, errors.New("read exceptions: no way to learn the bot login is configured")
	}
	bot, err := s.BotLogin(ctx)
	if err != nil {
		return nil, fmt.Errorf("read exceptions: %w", err)
	}
	var all []*github.IssueComment
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		page, resp, err := client.Issues.ListComments(ctx, owner, name, number, opts)
		if err != nil {
			return nil, fmt.Errorf("list comments of #%d for exceptions: %w", number, err)
		}
		all = append(all, page...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return exceptions.FromComments(ctx, all, bot, exceptions.Key(s.Seal, owner+"/"+name, number)), nil
}

// startRun creates a new run on the head commit, in progress. It never re-opens an earlier run: GitHub
// appends annotations on every update, so the earlier evaluation's would stay on it.
func (s *Service) startRun(ctx context.Context, client *github.Client, owner, name, headSHA string) (int64, error) {
	now := github.Timestamp{Time: s.now()}
	run, _, err := client.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: Name, HeadSHA: headSHA, Status: github.String("in_progress"), StartedAt: &now,
		ExternalID: github.String(headSHA),
	})
	if err != nil {
		return 0, fmt.Errorf("create %s run on %s: %w", Name, headSHA, err)
	}
	return run.GetID(), nil
}

// complete writes the verdict on the run this evaluation created; annotations past GitHub's 50 per request go
// in further updates of that same run, which GitHub appends to its annotations.
func (s *Service) complete(ctx context.Context, client *github.Client, owner, name string, runID int64, out report.Output) error {
	batches := report.Batches(out.Annotations, report.MaxAnnotationsPerRequest)
	if len(batches) == 0 {
		batches = [][]report.Annotation{nil}
	}
	now := github.Timestamp{Time: s.now()}
	for i, batch := range batches {
		opts := github.UpdateCheckRunOptions{
			Name: Name,
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
		if _, _, err := client.Checks.UpdateCheckRun(ctx, owner, name, runID, opts); err != nil {
			return fmt.Errorf("complete %s run %d (batch %d of %d): %w", Name, runID, i+1, len(batches), err)
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

// lock serialises work on one commit inside this process, so the reconciler's "is a run missing?" and an
// event's evaluation of the same commit do not interleave. Replicas can still race: the newest run wins.
func (s *Service) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	mu := &s.locks[h.Sum32()%uint32(len(s.locks))]
	mu.Lock()
	return mu.Unlock
}
