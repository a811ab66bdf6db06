// Package dashboard keeps one issue titled "Storage dashboard" per storage repository up to date with what
// the status board knows (docs/architecture.md §6): channels and heads, versions pending removal and drift,
// PRs in flight, verdicts and recent errors, with links.
//
// The issue is found again after a restart, on any replica, by a sealed marker at the top of its body
// (internal/seal, scoped to the repository) on a plain issue written by the App's bot and labelled Label; an
// issue whose marker does not verify, or written by anyone else, counts for nothing. The marker also records
// a digest of the body, so an edit by someone else is logged as tampering and overwritten. Updates are
// debounced per repository and the issue is edited only when its body changes. Two replicas creating it at
// the same moment both look again after creating: the lowest-numbered dashboard stays and the others are
// closed, so one remains whatever the order.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/status"
)

// GitHub is what the dashboard calls on one installation.
type GitHub interface {
	// LabelledIssues lists the issues and PRs carrying label, in any state, every page.
	LabelledIssues(ctx context.Context, owner, name, label string) ([]*github.Issue, error)
	CreateIssue(ctx context.Context, owner, name string, req *github.IssueRequest) (*github.Issue, error)
	EditIssue(ctx context.Context, owner, name string, number int, req *github.IssueRequest) error
}

// Client is the go-github implementation of GitHub.
type Client struct{ GH *github.Client }

// LabelledIssues lists the issues carrying label (state all), every page.
func (c Client) LabelledIssues(ctx context.Context, owner, name, label string) ([]*github.Issue, error) {
	return githubapi.AllPages(ctx, func(ctx context.Context, page int) ([]*github.Issue, *github.Response, error) {
		return c.GH.Issues.ListByRepo(ctx, owner, name, &github.IssueListByRepoOptions{
			State: "all", Labels: []string{label}, Sort: "created", Direction: "asc",
			ListOptions: github.ListOptions{Page: page, PerPage: githubapi.PerPage},
		})
	})
}

// CreateIssue opens an issue.
func (c Client) CreateIssue(ctx context.Context, owner, name string, req *github.IssueRequest) (*github.Issue, error) {
	is, _, err := c.GH.Issues.Create(ctx, owner, name, req)
	return is, err
}

// EditIssue edits an issue.
func (c Client) EditIssue(ctx context.Context, owner, name string, number int, req *github.IssueRequest) error {
	_, _, err := c.GH.Issues.Edit(ctx, owner, name, number, req)
	return err
}

// DefaultDebounce is how long after the last change of a repository its dashboard is brought up to date:
// a burst of events (a promotion merging, its removal PR opening, their checks) makes one update.
const DefaultDebounce = 30 * time.Second

// Updater brings dashboards up to date after changes. It is the status.Recorder the handlers and the
// reconciler are given: changes go to the board and schedule an update, errors go to the board.
type Updater struct {
	Board *status.Board
	// GitHub returns the API of one installation.
	GitHub func(installationID int64) (GitHub, error)
	// Seal is the server's marker key; the zero Key trusts no dashboard and so would create one per update:
	// serve always sets it.
	Seal seal.Key
	// BotLogin returns the App's bot login: only its issues can be the dashboard.
	BotLogin func(ctx context.Context) (string, error)
	// StatusURL, when set, is linked from every dashboard (the server's public /status).
	StatusURL string
	// Debounce is the wait after a repository's last change (DefaultDebounce when 0).
	Debounce time.Duration
	// Timeout bounds one update (default one minute).
	Timeout time.Duration
	Log     zerolog.Logger

	mu      sync.Mutex
	ctx     context.Context
	stop    context.CancelFunc
	closed  bool
	pending map[string]*pendingSync
	wg      sync.WaitGroup
}

type pendingSync struct {
	installationID int64
	repo           *github.Repository
	timer          *time.Timer
	running        bool
	again          bool // a change arrived while running
}

var _ status.Recorder = (*Updater)(nil)

// Start makes the updater act on changes until Close.
func (u *Updater) Start(ctx context.Context) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ctx, u.stop = context.WithCancel(ctx)
	u.pending = map[string]*pendingSync{}
}

// Close stops scheduled updates and waits for the running ones.
func (u *Updater) Close() {
	u.mu.Lock()
	u.closed = true
	for _, p := range u.pending {
		if p.timer != nil {
			p.timer.Stop()
		}
	}
	if u.stop != nil {
		u.stop()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// Failed records an error on the board.
func (u *Updater) Failed(repo, what string, err error) { u.Board.Failed(repo, what, err) }

// Changed records the change on the board and schedules the repository's dashboard update after Debounce
// (one update for a burst of changes).
func (u *Updater) Changed(installationID int64, repo *github.Repository) {
	u.Board.Changed(installationID, repo)
	if repo.GetFullName() == "" || repo.GetOwner().GetLogin() == "" || repo.GetName() == "" {
		return
	}
	key := strings.ToLower(repo.GetFullName())
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || u.pending == nil {
		return
	}
	p := u.pending[key]
	if p == nil {
		p = &pendingSync{}
		u.pending[key] = p
	}
	p.installationID, p.repo = installationID, repo
	switch {
	case p.running:
		p.again = true
	case p.timer == nil:
		p.timer = time.AfterFunc(u.debounce(), func() { u.fire(key) })
	}
}

func (u *Updater) debounce() time.Duration {
	if u.Debounce > 0 {
		return u.Debounce
	}
	return DefaultDebounce
}

func (u *Updater) fire(key string) {
	u.mu.Lock()
	p := u.pending[key]
	if u.closed || p == nil {
		u.mu.Unlock()
		return
	}
	p.timer, p.running = nil, true
	inst, repo := p.installationID, p.repo
	u.wg.Add(1)
	ctx := u.ctx
	u.mu.Unlock()
	defer u.wg.Done()

	timeout := u.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	log := u.Log.With().Str("repository", repo.GetFullName()).Logger()
	sctx, cancel := context.WithTimeout(log.WithContext(ctx), timeout)
	err := u.Sync(sctx, inst, repo)
	cancel()
	if err != nil && ctx.Err() == nil {
		log.Warn().Err(err).Msg("dashboard: update failed; the next change retries")
		u.Board.Failed(repo.GetFullName(), "update the dashboard issue", err)
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	p.running = false
	if p.again && !u.closed {
		p.again = false
		p.timer = time.AfterFunc(u.debounce(), func() { u.fire(key) })
		return
	}
	delete(u.pending, key)
}

// Sync brings repo's dashboard up to date now: reads the repository's state, renders it, and creates the
// issue or edits it when its body differs. Repositories that are not storage repositories, or opted out,
// get none (an existing one is left as it is).
func (u *Updater) Sync(ctx context.Context, installationID int64, repo *github.Repository) error {
	st, err := u.Board.Repository(ctx, installationID, repo, 0)
	if err != nil {
		return fmt.Errorf("read the repository's state: %w", err)
	}
	if !st.Storage || !st.Dashboard {
		return nil
	}
	gh, err := u.GitHub(installationID)
	if err != nil {
		return err
	}
	bot, err := u.BotLogin(ctx)
	if err != nil {
		return err
	}
	owner, name, full := repo.GetOwner().GetLogin(), repo.GetName(), repo.GetFullName()
	body := Render(u.Seal, st, u.StatusURL)
	found, err := u.find(ctx, gh, owner, name, full, bot)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		created, err := gh.CreateIssue(ctx, owner, name, &github.IssueRequest{
			Title: github.String(Title), Body: github.String(body), Labels: &[]string{Label},
		})
		if err != nil {
			return fmt.Errorf("create the dashboard issue: %w", err)
		}
		zerolog.Ctx(ctx).Info().Int("issue", created.GetNumber()).Msg("dashboard: created")
		// Another replica may have created one at the same moment: look again, and keep the oldest.
		if found, err = u.find(ctx, gh, owner, name, full, bot); err != nil {
			return err
		}
		if !containsNumber(found, created.GetNumber()) { // not listed yet: it is ours all the same
			found = append(found, created)
			sort.Slice(found, func(i, j int) bool { return found[i].GetNumber() < found[j].GetNumber() })
		}
	}
	keep := found[0]
	var errs []error
	for _, dup := range found[1:] {
		note := fmt.Sprintf("Closed as a duplicate: #%d is this repository's storage dashboard.", keep.GetNumber())
		if err := gh.EditIssue(ctx, owner, name, dup.GetNumber(), &github.IssueRequest{
			Body: github.String(note), State: github.String("closed"), StateReason: github.String("not_planned"),
		}); err != nil {
			errs = append(errs, fmt.Errorf("close duplicate dashboard #%d: %w", dup.GetNumber(), err))
			continue
		}
		zerolog.Ctx(ctx).Warn().Int("closed", dup.GetNumber()).Int("kept", keep.GetNumber()).Msg("dashboard: two issues (replicas created them at once); closed the newer")
	}
	if keep.GetBody() != body || keep.GetTitle() != Title {
		if err := gh.EditIssue(ctx, owner, name, keep.GetNumber(), &github.IssueRequest{Title: github.String(Title), Body: github.String(body)}); err != nil {
			errs = append(errs, fmt.Errorf("update dashboard #%d: %w", keep.GetNumber(), err))
		}
	}
	return errors.Join(errs...)
}

// find lists the repository's dashboards, oldest first: plain issues written by the bot, labelled Label,
// whose marker verifies for this repository. A body edited after the bot wrote it is logged as tampering
// (the update overwrites it); an issue whose marker does not verify counts for nothing.
func (u *Updater) find(ctx context.Context, gh GitHub, owner, name, full, bot string) ([]*github.Issue, error) {
	list, err := gh.LabelledIssues(ctx, owner, name, Label)
	if err != nil {
		return nil, fmt.Errorf("list %s issues: %w", Label, err)
	}
	log := zerolog.Ctx(ctx)
	var out []*github.Issue
	for _, is := range list {
		if is.IsPullRequest() || !strings.EqualFold(is.GetUser().GetLogin(), bot) {
			continue
		}
		p := parseBody(u.Seal, full, is.GetBody())
		if !p.ok {
			if strings.Contains(is.GetBody(), "storagebot:dashboard") {
				log.Warn().Int("issue", is.GetNumber()).Msg("tampered: the dashboard marker does not verify (edited or copied), so the issue counts for nothing")
			}
			continue
		}
		if p.edited {
			log.Warn().Int("issue", is.GetNumber()).Time("issue_updated_at", is.GetUpdatedAt().Time).
				Msg("tampered: someone edited the dashboard issue's body; it is rewritten")
		}
		out = append(out, is)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetNumber() < out[j].GetNumber() })
	return out, nil
}

func containsNumber(list []*github.Issue, n int) bool {
	for _, is := range list {
		if is.GetNumber() == n {
			return true
		}
	}
	return false
}
