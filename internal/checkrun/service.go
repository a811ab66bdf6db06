// Package checkrun runs the storage policy on a pull request and publishes the verdict as the `storage-policy`
// check run on the PR's head commit: created in progress at once, completed with the summary, annotations and
// conclusion, one run per head SHA updated in place.
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

	locks [64]sync.Mutex // striped by "owner/repo@sha": bounded, whatever the number of commits
}

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

// CheckPR evaluates pr (base must be the channel branch) and writes the check run on its head commit.
func (s *Service) CheckPR(ctx context.Context, client *github.Client, repo *github.Repository, pr *github.PullRequest) (Outcome, error) {
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	headSHA, baseRef := pr.GetHead().GetSHA(), pr.GetBase().GetRef()
	log := zerolog.Ctx(ctx).With().Str("head_sha", headSHA).Str("base", baseRef).Logger()

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

	unlock := s.lock(owner + "/" + name + "@" + headSHA)
	defer unlock()

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

	input, err := s.gather(ctx, client, owner, name, cfg, channel, pr)
	if err != nil {
		// Report it on the PR rather than leave the run spinning; /recheck retries.
		failed := report.Output{
			Title:      "storagebot could not evaluate this change",
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

	if cfg.FixTitles && !strings.HasPrefix(pr.GetTitle(), "["+baseRef+"]") {
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
	input, err = s.gather(ctx, client, repo.GetOwner().GetLogin(), repo.GetName(), cfg, channel, pr)
	return channel, input, true, err
}

// gather collects the facts of the PR: the change against its base branch, the other channels' branch heads,
// and the exceptions the bot recorded on the PR.
func (s *Service) gather(ctx context.Context, client *github.Client, owner, name string, cfg *repoconfig.Config, channel repoconfig.Channel, pr *github.PullRequest) (policy.Input, error) {
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
		FixTitles:  cfg.FixTitles,
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

// startRun finds the head commit's storage-policy run or creates it, and marks it in progress.
func (s *Service) startRun(ctx context.Context, client *github.Client, owner, name, headSHA string) (int64, error) {
	now := github.Timestamp{Time: s.now()}
	list, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, headSHA, &github.ListCheckRunsOptions{
		CheckName: github.String(Name), Filter: github.String("latest"),
	})
	if err != nil {
		return 0, fmt.Errorf("list %s runs on %s: %w", Name, headSHA, err)
	}
	if list.GetTotal() > 0 && len(list.CheckRuns) > 0 {
		run := list.CheckRuns[0]
		_, _, err := client.Checks.UpdateCheckRun(ctx, owner, name, run.GetID(), github.UpdateCheckRunOptions{
			Name: Name, Status: github.String("in_progress"),
		})
		if err != nil {
			return 0, fmt.Errorf("restart %s run %d: %w", Name, run.GetID(), err)
		}
		return run.GetID(), nil
	}
	run, _, err := client.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: Name, HeadSHA: headSHA, Status: github.String("in_progress"), StartedAt: &now,
		ExternalID: github.String(headSHA),
	})
	if err != nil {
		return 0, fmt.Errorf("create %s run on %s: %w", Name, headSHA, err)
	}
	return run.GetID(), nil
}

// complete writes the verdict; annotations past GitHub's 50 per request go in further updates, which GitHub
// appends to the run's annotations.
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
		if i == 0 {
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

// lock serialises work on one commit inside this process (two events for one commit would otherwise both
// create a run). Replicas can still race; the next event or /recheck converges on the first run listed.
func (s *Service) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	mu := &s.locks[h.Sum32()%uint32(len(s.locks))]
	mu.Lock()
	return mu.Unlock
}
