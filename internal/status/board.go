package status

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

	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoctx"
)

// GitHub is what the board reads on one installation: githubapi.Client in production.
type GitHub interface {
	prcheck.GitHub
	repoctx.ConfigSource
	Repositories(ctx context.Context) ([]*github.Repository, error)
	BranchExists(ctx context.Context, owner, name, branch string) (bool, error)
	// promotion.GitHub is what promotion.Service's Overview reads with.
	promotion.GitHub
}

// Recorder is what handlers, services and the reconciler tell the board: that a repository may have
// changed (so its dashboard is brought up to date), and an error with what was being done.
type Recorder interface {
	Changed(installationID int64, repo *github.Repository)
	Failed(repo, what string, err error)
}

// Defaults of the board's bounds.
const (
	// DefaultMinInterval is how long a repository's state read from GitHub is served before a page load reads
	// it again.
	DefaultMinInterval = time.Minute
	// DefaultWait is how long a page load waits for a read of GitHub before it shows the last state read.
	DefaultWait = 5 * time.Second
	// DefaultReadTimeout bounds one read of a repository (it goes on after the page load stopped waiting).
	DefaultReadTimeout = time.Minute
	// maxErrors is how many recent errors are kept per repository (and for the App as a whole).
	maxErrors = 20
)

// Board keeps the last state read of every repository and reads it again when asked, at most once per
// MinInterval per repository. It is safe for concurrent use; its zero value is not usable: use NewBoard.
type Board struct {
	// Installations lists the App's installations (App JWT calls, not counted against any installation).
	Installations func(ctx context.Context) ([]int64, error)
	// GitHub returns the API of one installation.
	GitHub func(installationID int64) (GitHub, error)
	// Promotions and Checks are the services whose readers the board reuses.
	Promotions *promotion.Service
	Checks     *prcheck.Service
	// MinInterval, Wait and ReadTimeout bound the reads (see the defaults).
	MinInterval, Wait, ReadTimeout time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Log receives the board's own failures.
	Log zerolog.Logger

	mu        sync.Mutex
	repos     map[string]*repoState // lower-case full name → state
	listedAt  time.Time
	listTried time.Time
	listErr   string
	listing   chan struct{} // closed when the listing in flight ends; nil when none
	appErrors []ErrorEntry
}

// repoState is one repository's last state read and the read in flight.
type repoState struct {
	installationID int64
	repo           *github.Repository
	last           Repository // the last successful read (ReadAt set), or only the identity
	readErr        string
	tried          time.Time     // when the last read started
	reading        chan struct{} // closed when the read in flight ends; nil when none
	errors         []ErrorEntry
}

// NewBoard returns a board with the default bounds.
func NewBoard(installations func(context.Context) ([]int64, error), gh func(int64) (GitHub, error), promotions *promotion.Service, checks *prcheck.Service) *Board {
	return &Board{
		Installations: installations, GitHub: gh, Promotions: promotions, Checks: checks,
		MinInterval: DefaultMinInterval, Wait: DefaultWait, ReadTimeout: DefaultReadTimeout,
		Log: zerolog.Nop(), repos: map[string]*repoState{},
	}
}

func (b *Board) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Changed records that a repository exists and may have changed; the next page load past MinInterval reads it.
func (b *Board) Changed(installationID int64, repo *github.Repository) {
	if repo.GetFullName() == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stateLocked(installationID, repo)
}

// Failed records an error for repo ("" for the App as a whole), with what was being done and the cause.
func (b *Board) Failed(repo, what string, err error) {
	if err == nil {
		return
	}
	e := ErrorEntry{At: b.now().UTC(), What: what, Cause: err.Error()}
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := b.repos[strings.ToLower(repo)]; st != nil {
		st.errors = appendBounded(st.errors, e)
		return
	}
	if repo != "" {
		e.What = repo + ": " + e.What
	}
	b.appErrors = appendBounded(b.appErrors, e)
}

func appendBounded(list []ErrorEntry, e ErrorEntry) []ErrorEntry {
	list = append(list, e)
	if len(list) > maxErrors {
		list = append([]ErrorEntry(nil), list[len(list)-maxErrors:]...)
	}
	return list
}

func (b *Board) stateLocked(installationID int64, repo *github.Repository) *repoState {
	key := strings.ToLower(repo.GetFullName())
	st := b.repos[key]
	if st == nil {
		st = &repoState{}
		b.repos[key] = st
	}
	st.installationID, st.repo = installationID, repo
	return st
}

// Report returns every repository's status, reading GitHub again where the last read is older than
// MinInterval. It waits at most Wait for those reads (they go on, bounded by ReadTimeout, and the next
// page load shows them); meanwhile, and when GitHub cannot be read, it shows the last state read.
func (b *Board) Report(ctx context.Context) Report {
	wait, cancel := context.WithTimeout(ctx, b.Wait)
	defer cancel()
	b.awaitListing(wait)
	b.mu.Lock()
	var pending []chan struct{}
	for _, st := range b.repos {
		if ch := b.startReadLocked(st, false); ch != nil {
			pending = append(pending, ch)
		}
	}
	b.mu.Unlock()
	for _, ch := range pending {
		select {
		case <-ch:
		case <-wait.Done():
		}
	}
	return b.snapshot()
}

// Repository reads one repository's status, at once unless a read finished less than minAge ago (a
// read in flight is waited for), and returns it. The dashboard calls it after its debounce.
func (b *Board) Repository(ctx context.Context, installationID int64, repo *github.Repository, minAge time.Duration) (Repository, error) {
	b.mu.Lock()
	st := b.stateLocked(installationID, repo)
	ch := st.reading
	if ch == nil && (st.last.ReadAt.IsZero() || b.now().Sub(st.last.ReadAt) >= minAge) {
		ch = b.startReadLocked(st, true)
	}
	b.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return Repository{}, ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if st.readErr != "" && st.last.ReadAt.IsZero() {
		return Repository{}, errors.New(st.readErr)
	}
	out := b.viewLocked(st)
	if st.readErr != "" {
		return out, errors.New(st.readErr)
	}
	return out, nil
}

// awaitListing lists installations and repositories again when the last listing is older than MinInterval,
// waiting until ctx ends at most.
func (b *Board) awaitListing(ctx context.Context) {
	b.mu.Lock()
	ch := b.listing
	if ch == nil && (b.listTried.IsZero() || b.now().Sub(b.listTried) >= b.MinInterval) {
		ch = make(chan struct{})
		b.listing, b.listTried = ch, b.now()
		go b.list(ch)
	}
	b.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

func (b *Board) list(done chan struct{}) {
	ctx, cancel := context.WithTimeout(b.Log.WithContext(context.Background()), b.ReadTimeout)
	defer cancel()
	type found struct {
		id    int64
		repos []*github.Repository
	}
	var all []found
	ids, err := b.Installations(ctx)
	for _, id := range ids {
		if err != nil {
			break
		}
		var gh GitHub
		if gh, err = b.GitHub(id); err != nil {
			break
		}
		var repos []*github.Repository
		if repos, err = gh.Repositories(ctx); err != nil {
			err = fmt.Errorf("list repositories of installation %d: %w", id, err)
			break
		}
		all = append(all, found{id, repos})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	defer close(done)
	b.listing = nil
	if err != nil {
		b.listErr = "list the App's installations and repositories: " + err.Error()
		b.appErrors = appendBounded(b.appErrors, ErrorEntry{At: b.now().UTC(), What: "list installations and repositories", Cause: err.Error()})
		return
	}
	b.listErr, b.listedAt = "", b.now()
	seen := map[string]bool{}
	for _, f := range all {
		for _, r := range f.repos {
			b.stateLocked(f.id, r)
			seen[strings.ToLower(r.GetFullName())] = true
		}
	}
	for key := range b.repos { // uninstalled since
		if !seen[key] {
			delete(b.repos, key)
		}
	}
}

// startReadLocked starts a read of st unless one is in flight or (force false) the last one started less
// than MinInterval ago; it returns the channel closed when the read in flight ends, nil when none.
func (b *Board) startReadLocked(st *repoState, force bool) chan struct{} {
	if st.reading != nil {
		return st.reading
	}
	if !force && !st.tried.IsZero() && b.now().Sub(st.tried) < b.MinInterval {
		return nil
	}
	ch := make(chan struct{})
	st.reading, st.tried = ch, b.now()
	go b.read(st, st.installationID, st.repo, ch)
	return ch
}

func (b *Board) read(st *repoState, installationID int64, repo *github.Repository, done chan struct{}) {
	log := b.Log.With().Str("repository", repo.GetFullName()).Logger()
	ctx, cancel := context.WithTimeout(log.WithContext(context.Background()), b.ReadTimeout)
	defer cancel()
	got, err := b.collect(ctx, installationID, repo)
	b.mu.Lock()
	defer b.mu.Unlock()
	defer close(done)
	st.reading = nil
	if err != nil {
		st.readErr = err.Error()
		st.errors = appendBounded(st.errors, ErrorEntry{At: b.now().UTC(), What: "read the repository's state for the status page", Cause: err.Error()})
		log.Warn().Err(err).Msg("status: could not read the repository; showing the last state read")
		return
	}
	st.readErr, st.last = "", got
}

// snapshot is the report of the states held now.
func (b *Board) snapshot() Report {
	b.mu.Lock()
	defer b.mu.Unlock()
	rep := Report{GeneratedAt: b.now().UTC(), ListedAt: b.listedAt.UTC(), ListError: b.listErr,
		Errors: append([]ErrorEntry{}, b.appErrors...), Repositories: []Repository{}}
	for _, st := range b.repos {
		rep.Repositories = append(rep.Repositories, b.viewLocked(st))
	}
	sort.Slice(rep.Repositories, func(i, j int) bool {
		return strings.ToLower(rep.Repositories[i].FullName) < strings.ToLower(rep.Repositories[j].FullName)
	})
	return rep
}

func (b *Board) viewLocked(st *repoState) Repository {
	out := st.last
	out.FullName, out.URL, out.InstallationID = st.repo.GetFullName(), st.repo.GetHTMLURL(), st.installationID
	out.ReadError = st.readErr
	out.Errors = append([]ErrorEntry{}, st.errors...)
	if out.Channels == nil {
		out.Channels = []Channel{}
	}
	if out.Pending == nil {
		out.Pending = []Pending{}
	}
	if out.Drift == nil {
		out.Drift = []Drift{}
	}
	if out.InFlight == nil {
		out.InFlight = []InFlight{}
	}
	if out.Verdicts == nil {
		out.Verdicts = []Verdict{}
	}
	return out
}
