package promotion

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/overlap"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// ErrNoVersions is returned by Promote when the request names no version.
var ErrNoVersions = errors.New("no versions to promote")

// PromoteRequest asks for versions to be promoted.
type PromoteRequest struct {
	Versions []commandparse.VersionRef
	// Target is the channel to promote to; "" means the channel above the lowest channel holding the versions.
	Target string
	// RequestedBy is the login of whoever asked, for the PR body.
	RequestedBy string
	// FromPR is the PR or issue the command was commented on (0 when none).
	FromPR int
	// Authorize, when set, is asked once the target channel is known (it may be implied by where the
	// versions live) and before anything is read or written for it; an error refuses the whole request with
	// a *NotAuthorizedError carrying the error's text.
	Authorize func(target string) error
}

// NotAuthorizedError is returned when PromoteRequest.Authorize refused the target channel.
type NotAuthorizedError struct {
	Target string
	Reason string
}

func (e *NotAuthorizedError) Error() string {
	return fmt.Sprintf("not authorized to promote to %s: %s", e.Target, e.Reason)
}

// Planned is one version a promotion copies: from which channel, and the tree it points at.
type Planned struct {
	Version commandparse.VersionRef
	Source  string
	Tree    string
}

// PromoteResult is what Promote did. When Refusals is non-empty nothing was written and PR is zero.
type PromoteResult struct {
	PR PRRef
	// Reused is true when the PR already existed (a repeated command, or a retry after a crash).
	Reused bool
	Target string
	// Source is the channel the versions come from ("snapshot and staging" when they come from several).
	Source   string
	Versions []Planned
	Refusals []Refusal
}

// Promote opens (or finds) the promotion PR for the requested versions. It refuses before any write when a
// version is in no channel below the target, is already in the target, would break version-order where that
// rule is an error, or when the target is unknown or the lowest channel; one refused version refuses the
// whole request. The copy is by reference (see the package documentation). A repeated or retried request
// returns the same PR with Reused set.
func (s *Service) Promote(ctx context.Context, repo Repo, req PromoteRequest) (PromoteResult, error) {
	cfg := repo.config()
	versions := sortRefs(req.Versions)
	if len(versions) == 0 {
		return PromoteResult{}, ErrNoVersions
	}
	loc := s.newLocator(repo)
	res := PromoteResult{Target: req.Target}
	target, refusals, err := s.resolveTarget(ctx, cfg, loc, versions, req.Target)
	if err != nil || len(refusals) > 0 {
		res.Refusals = refusals
		return res, err
	}
	res.Target = target.Name
	if req.Authorize != nil {
		if err := req.Authorize(target.Name); err != nil {
			return res, &NotAuthorizedError{Target: target.Name, Reason: err.Error()}
		}
	}
	branch := PromoteBranchPrefix + target.Name + "/" + branchKey(versions)
	log := zerolog.Ctx(ctx).With().Str("repo", repo.fullName()).Str("branch", branch).Logger()

	if pr, err := findPR(ctx, repo, branch, "open"); err != nil {
		return res, fmt.Errorf("promote %s: %w", listRefs(versions), err)
	} else if pr != nil {
		res.PR, res.Reused = prRef(pr), true
		if m, ok := ParseMarker(ctx, pr, s.markerKey(repo)); ok {
			res.Versions, res.Source = plannedFromMarker(m)
		}
		log.Debug().Int("pr", pr.GetNumber()).Msg("promotion PR exists already")
		return res, nil
	}

	th, err := loc.head(ctx, target)
	if err != nil {
		return res, fmt.Errorf("promote %s: %w", listRefs(versions), err)
	}
	plan, refusals, err := s.plan(ctx, repo, cfg, loc, th, versions)
	if err != nil || len(refusals) > 0 {
		res.Refusals = refusals
		return res, err
	}
	res.Versions, res.Source = plan, sourceNames(plan)

	entries := make([]*github.TreeEntry, 0, len(plan))
	for _, p := range plan {
		entries = append(entries, &github.TreeEntry{
			Path: github.String(storage.VersionPath(p.Version.Package, p.Version.Version)),
			Mode: github.String("040000"), Type: github.String("tree"), SHA: github.String(p.Tree),
		})
	}
	title := promoteTitle(target.Name, res.Source, versions)
	if title != fmt.Sprintf("[%s] Promote %s from %s", target.Name, listRefs(versions), res.Source) {
		log.Info().Int("versions", len(versions)).Str("title", title).Msg("promotion title summarised to fit GitHub's 256 characters; the body lists every version")
	}
	newMarker := func(commit string) string {
		m := Marker{Kind: "promotion", Target: target.Name, Commit: commit, By: req.RequestedBy, FromPR: req.FromPR}
		for _, p := range plan {
			m.Versions = append(m.Versions, MarkedVersion{Package: p.Version.Package, Version: p.Version.Version, Channel: p.Source, Tree: p.Tree})
		}
		return m.String(s.markerKey(repo))
	}
	// Measured before anything is written: a body GitHub would refuse must not leave a branch behind.
	if body := promoteBody(target.Name, res.Source, plan, req, newMarker(placeholderCommit)); !fitsBody(body) {
		most := mostThatFit(len(plan), func(n int) bool {
			return fitsBody(promoteBody(target.Name, res.Source, plan[:n], req, newMarker(placeholderCommit)))
		})
		log.Info().Int("versions", len(plan)).Int("fit", most).Msg("promotion refused: its PR body would pass GitHub's limit")
		res.Refusals = refuseAll(versions, fmt.Sprintf("%d versions are too many for one promotion PR: even with the list collapsed its body would pass "+
			"GitHub's limit of %d characters. Promote them in several commands of at most %d versions each", len(plan), MaxBodyLength, most))
		res.Versions, res.Source = nil, ""
		return res, nil
	}
	commit, err := commitTree(ctx, repo, th.Tree, th.Commit, promoteMessage(title, plan), entries)
	if err != nil {
		return res, fmt.Errorf("promote %s: %w", listRefs(versions), err)
	}
	commit, createdBranch, err := s.claimBranchCreated(ctx, repo, branch, commit, func(tree string) (bool, error) {
		return holdsVersions(ctx, s.reader(repo), tree, plan)
	})
	if err != nil {
		return res, fmt.Errorf("promote %s: %w", listRefs(versions), err)
	}
	pr, created, err := openPR(ctx, repo, branch, target.Branch, title, promoteBody(target.Name, res.Source, plan, req, newMarker(commit)))
	if err != nil {
		if createdBranch && refused(err) {
			// Nothing is left half done: the branch this call created goes with the PR GitHub refused. Not
			// after a 5xx or a lost answer: the PR may exist, and deleting its head branch would close it.
			if derr := repo.Client.DeleteBranch(ctx, repo.Owner, repo.Name, branch); derr != nil {
				log.Warn().Err(derr).Msg("could not delete the promotion branch after failing to open its PR; a retry reuses it")
			}
		}
		return res, fmt.Errorf("promote %s: %w", listRefs(versions), err)
	}
	res.PR, res.Reused = prRef(pr), !created
	log.Info().Int("pr", pr.GetNumber()).Str("target", target.Name).Str("versions", listRefs(versions)).Msg("promotion PR opened")
	return res, nil
}

// claimBranch points branch at commit. When the branch exists already (an earlier attempt crashed before
// opening its PR, or a replica raced us) and ready says its tree already holds the change, the existing
// commit is kept; otherwise the branch is reset to commit. It returns the commit the branch ends up at.
func (s *Service) claimBranch(ctx context.Context, repo Repo, branch, commit string, ready func(tree string) (bool, error)) (string, error) {
	commit, _, err := s.claimBranchCreated(ctx, repo, branch, commit, ready)
	return commit, err
}

// claimBranchCreated is claimBranch, also saying whether this call created the branch (so that it may
// delete it again when what the branch was for cannot be done).
func (s *Service) claimBranchCreated(ctx context.Context, repo Repo, branch, commit string, ready func(tree string) (bool, error)) (string, bool, error) {
	created, err := createBranch(ctx, repo, branch, commit)
	if err != nil || created {
		return commit, created, err
	}
	existing, err := branchCommit(ctx, repo, branch)
	if err != nil {
		return "", false, err
	}
	if existing == "" {
		// Deleted between our create and our read: create it again.
		created, err := createBranch(ctx, repo, branch, commit)
		return commit, created, err
	}
	c, err := s.reader(repo).ResolveRevision(ctx, existing)
	if err != nil {
		return "", false, fmt.Errorf("read existing branch %s: %w", branch, err)
	}
	ok, err := ready(c.TreeSHA)
	if err != nil {
		return "", false, fmt.Errorf("check existing branch %s: %w", branch, err)
	}
	if ok {
		return existing, false, nil
	}
	if err := resetBranch(ctx, repo, branch, commit); err != nil {
		return "", false, err
	}
	return commit, false, nil
}

// locator lists package versions per channel branch, each (channel, package) at most once per request, and
// reads each channel's head once. load reads what a request needs up front, overlapped; versions then reads
// only what load did not.
type locator struct {
	repo   Repo
	r      storage.Reader
	mu     sync.Mutex      // guards heads and listed while load's reads run
	heads  map[string]head // channel → its head
	listed map[string]map[string]string
}

func (s *Service) newLocator(repo Repo) *locator {
	return &locator{repo: repo, r: s.reader(repo), heads: map[string]head{}, listed: map[string]map[string]string{}}
}

// head reads a channel's head, once per request.
func (l *locator) head(ctx context.Context, ch repoconfig.Channel) (head, error) {
	l.mu.Lock()
	h, ok := l.heads[ch.Name]
	l.mu.Unlock()
	if ok {
		return h, nil
	}
	h, err := branchHead(ctx, l.repo, ch)
	if err != nil {
		return head{}, err
	}
	l.mu.Lock()
	l.heads[ch.Name] = h
	l.mu.Unlock()
	return h, nil
}

func (l *locator) versions(ctx context.Context, ch repoconfig.Channel, pkg string) (map[string]string, error) {
	key := ch.Name + "\x00" + pkg
	l.mu.Lock()
	v, ok := l.listed[key]
	l.mu.Unlock()
	if ok {
		return v, nil
	}
	h, err := l.head(ctx, ch)
	if err != nil {
		return nil, err
	}
	v, err = packageVersionsAt(ctx, l.r, h.Tree, pkg)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", ch.Name, err)
	}
	l.mu.Lock()
	l.listed[key] = v
	l.mu.Unlock()
	return v, nil
}

// load reads the heads of chans, then the version lists of pkgs in each, overlapped within the reader's
// bound (the heads first: the lists are read from them). Each read is one that the request's checks make
// anyway, one after another otherwise; the first that fails cancels the others and is returned.
func (l *locator) load(ctx context.Context, chans []repoconfig.Channel, pkgs []string) error {
	bound := storage.ReadConcurrency(l.r)
	heads := overlap.NewGroup(ctx, bound)
	for _, ch := range chans {
		heads.Go(func(ctx context.Context) error {
			_, err := l.head(ctx, ch)
			return err
		})
	}
	if err := heads.Wait(); err != nil {
		return err
	}
	lists := overlap.NewGroup(ctx, bound)
	for _, ch := range chans {
		for _, pkg := range pkgs {
			lists.Go(func(ctx context.Context) error {
				_, err := l.versions(ctx, ch, pkg)
				return err
			})
		}
	}
	return lists.Wait()
}

// packagesOf lists the distinct packages of versions, in order.
func packagesOf(versions []commandparse.VersionRef) []string {
	return distinct(versions, func(v commandparse.VersionRef) string { return v.Package })
}

// distinct lists the distinct keys of items, in the order they first appear.
func distinct[T any](items []T, key func(T) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		if k := key(it); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// resolveTarget validates an explicit target, or finds the default one: the channel above the lowest channel
// holding each version, the same for all of them.
func (s *Service) resolveTarget(ctx context.Context, cfg *repoconfig.Config, loc *locator, versions []commandparse.VersionRef, name string) (repoconfig.Channel, []Refusal, error) {
	if name != "" {
		ch, ok := cfg.ChannelByName(name)
		switch {
		case !ok:
			return ch, refuseAll(versions, fmt.Sprintf("unknown channel %q: promote to one of %s", name, strings.Join(cfg.ChannelNames()[1:], ", "))), nil
		case cfg.Position(name) == 0:
			return ch, refuseAll(versions, fmt.Sprintf("%s is the lowest channel: versions arrive there by pull request, nothing is promoted into it; "+
				"promote to one of %s", name, strings.Join(cfg.ChannelNames()[1:], ", "))), nil
		}
		return ch, nil, nil
	}
	// Every version's lowest channel is looked for from the bottom up: the channels below the highest are
	// read for every package at once (the highest one is read only for versions in none of them).
	if err := loc.load(ctx, cfg.Channels[:len(cfg.Channels)-1], packagesOf(versions)); err != nil {
		return repoconfig.Channel{}, nil, fmt.Errorf("find %s: %w", listRefs(versions), err)
	}
	var refusals []Refusal
	targets := map[commandparse.VersionRef]string{}
	for _, v := range versions {
		lowest := -1
		for i, ch := range cfg.Channels {
			listed, err := loc.versions(ctx, ch, v.Package)
			if err != nil {
				return repoconfig.Channel{}, nil, fmt.Errorf("find %s: %w", v, err)
			}
			if _, ok := listed[v.Version]; ok {
				lowest = i
				break
			}
		}
		switch {
		case lowest < 0:
			refusals = append(refusals, Refusal{Version: v, Reason: fmt.Sprintf("%s is in no channel (looked in %s): check the name and version, "+
				"or merge it into %s first", v, strings.Join(cfg.ChannelNames(), ", "), cfg.Channels[0].Name)})
		case lowest == len(cfg.Channels)-1:
			refusals = append(refusals, Refusal{Version: v, Reason: fmt.Sprintf("%s is already in %s, the highest channel: there is nothing to promote it to",
				v, cfg.Channels[lowest].Name)})
		default:
			targets[v] = cfg.Channels[lowest+1].Name
		}
	}
	if len(refusals) > 0 {
		return repoconfig.Channel{}, refusals, nil
	}
	distinct := map[string]bool{}
	for _, t := range targets {
		distinct[t] = true
	}
	if len(distinct) > 1 {
		var pairs []string
		for _, v := range versions {
			pairs = append(pairs, fmt.Sprintf("%s → %s", v, targets[v]))
		}
		reason := fmt.Sprintf("the versions go to different channels (%s): promote them in separate commands, or name the target with `to <channel>`",
			strings.Join(pairs, ", "))
		return repoconfig.Channel{}, refuseAll(versions, reason), nil
	}
	ch, _ := cfg.ChannelByName(targets[versions[0]])
	return ch, nil, nil
}

// plan finds each version's source (the nearest channel below the target holding it) and applies the
// refusal rules against the target's head.
func (s *Service) plan(ctx context.Context, repo Repo, cfg *repoconfig.Config, loc *locator, th head, versions []commandparse.VersionRef) ([]Planned, []Refusal, error) {
	target := th.Channel
	below := cfg.Below(target.Name)
	orderIsError := cfg.RulesFor(target.Name)[policy.RuleVersionOrder].Severity == policy.SeverityError
	// The target and the nearest channel below it, where versions are promoted from, are read for every
	// package at once (resolveTarget may have read them already); a channel further below only for a version
	// not found nearer, as before.
	first := []repoconfig.Channel{target}
	if len(below) > 0 { // resolveTarget refused the lowest channel; kept for the types
		first = append(first, below[0])
	}
	if err := loc.load(ctx, first, packagesOf(versions)); err != nil {
		return nil, nil, err
	}
	var plan []Planned
	var refusals []Refusal
	refuse := func(v commandparse.VersionRef, format string, args ...any) {
		refusals = append(refusals, Refusal{Version: v, Reason: fmt.Sprintf(format, args...)})
	}
	for _, v := range versions {
		tv, err := loc.versions(ctx, target, v.Package)
		if err != nil {
			return nil, nil, err
		}
		var src Planned
		for _, ch := range below {
			listed, err := loc.versions(ctx, ch, v.Package)
			if err != nil {
				return nil, nil, err
			}
			if tree, ok := listed[v.Version]; ok {
				src = Planned{Version: v, Source: ch.Name, Tree: tree}
				break
			}
		}
		existing, already := tv[v.Version]
		switch {
		case src.Tree == "" && already:
			refuse(v, "%s is already in %s and in no channel below it: there is nothing to promote", v, target.Name)
			continue
		case src.Tree == "":
			refuse(v, "promotion-source: %s is in no channel below %s (looked in %s): check the name and version, or merge it into %s first",
				v, target.Name, channelList(below), below[len(below)-1].Name)
			continue
		case already:
			same, err := identical(ctx, s.reader(repo), existing, src.Tree)
			if err != nil {
				return nil, nil, fmt.Errorf("compare %s in %s and %s: %w", v, target.Name, src.Source, err)
			}
			if same {
				refuse(v, "already promoted: %s (branch `%s`) holds an identical copy of %s; nothing to do", target.Name, target.Branch, v)
			} else {
				refuse(v, "overwrite: %s already holds a different %s (tree %s) than %s (tree %s); a promotion never overwrites a version: "+
					"publish the change as a new version (for example %s)", target.Name, v, policy.ShortSHA(existing), src.Source, policy.ShortSHA(src.Tree), nextPatch(v.Version))
			}
			continue
		}
		if orderIsError {
			if top := lineMax(tv, v.Version); top != "" {
				refuse(v, "version-order: %s has %s@%s on the same major.minor line, and versions on a line only go up in %s: "+
					"publish it as a version above %s (for example %s)", target.Name, v.Package, top, target.Name, top, nextPatch(top))
				continue
			}
		}
		plan = append(plan, src)
	}
	if len(refusals) > 0 {
		return nil, refusals, nil
	}
	return plan, nil, nil
}

// lineMax returns the greatest version in existing on version's major.minor line that is not below version;
// "" when version is greater than all of them (or is not strict semver: the manifest rule reports that).
func lineMax(existing map[string]string, version string) string {
	v, err := policy.ParseVersion(version)
	if err != nil {
		return ""
	}
	top := ""
	for raw := range existing {
		o, err := policy.ParseVersion(raw)
		if err != nil || o.Major != v.Major || o.Minor != v.Minor || o.Compare(v) < 0 {
			continue
		}
		if top == "" {
			top = raw
			continue
		}
		if c, _ := policy.CompareVersions(raw, top); c > 0 {
			top = raw
		}
	}
	return top
}

// nextPatch suggests the next patch version after a strict semver version.
func nextPatch(version string) string {
	v, err := policy.ParseVersion(version)
	if err != nil {
		return "a higher version"
	}
	return v.NextPatch().String()
}

// holdsVersions reports whether the root tree has each planned version pointing at its planned tree.
func holdsVersions(ctx context.Context, r storage.Reader, root string, plan []Planned) (bool, error) {
	for _, p := range plan {
		tree, err := versionTree(ctx, r, root, p.Version)
		if err != nil || tree != p.Tree {
			return false, err
		}
	}
	return true, nil
}

// versionTree returns the tree SHA of packages/<n>/<v> in a root tree, "" when absent.
func versionTree(ctx context.Context, r storage.Reader, root string, v commandparse.VersionRef) (string, error) {
	sha, err := storage.Subtree(ctx, r, root, storage.PackagesDir, v.Package, v.Version)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", v, err)
	}
	return sha, nil
}

func refuseAll(versions []commandparse.VersionRef, reason string) []Refusal {
	out := make([]Refusal, len(versions))
	for i, v := range versions {
		out[i] = Refusal{Version: v, Reason: reason}
	}
	return out
}

func sourceNames(plan []Planned) string {
	names := distinct(plan, func(p Planned) string { return p.Source })
	sort.Strings(names)
	return strings.Join(names, " and ")
}

func plannedFromMarker(m Marker) ([]Planned, string) {
	var plan []Planned
	for _, v := range m.Versions {
		plan = append(plan, Planned{Version: commandparse.VersionRef{Package: v.Package, Version: v.Version}, Source: v.Channel, Tree: v.Tree})
	}
	return plan, sourceNames(plan)
}

func channelList(chs []repoconfig.Channel) string {
	names := make([]string, len(chs))
	for i, c := range chs {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func promoteMessage(title string, plan []Planned) string {
	var b strings.Builder
	b.WriteString(title)
	b.WriteString("\n\nCopied by reference (tree SHAs of the source channel):\n")
	for _, p := range plan {
		fmt.Fprintf(&b, "- %s from %s: %s\n", p.Version, p.Source, p.Tree)
	}
	return b.String()
}
