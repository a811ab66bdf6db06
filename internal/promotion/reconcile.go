package promotion

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/overlap"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
)

// Conflict is a version present in two channels with different contents: the lower copy is shadowed and
// invisible, and is never removed automatically.
type Conflict struct {
	Version    commandparse.VersionRef
	Lower      string
	Higher     string
	LowerTree  string
	HigherTree string
}

// ReconcileResult is what ReconcileRemovals found and did.
type ReconcileResult struct {
	// Removals lists the removal PRs opened (or found, for a version set reconciled before), those of the
	// merged PRs' follow-ups included.
	Removals []FollowUpResult
	// FollowedUp lists the merged PRs whose follow-up ReconcileRemovals ran, oldest first.
	FollowedUp []int
	Conflicts  []Conflict
}

// ReconcileRemovals finds versions held identically by a channel and any higher one, and has them removed exactly
// once, whoever else is at work (a merge event being handled, another replica's reconciler):
//
//   - A duplicate that a merged PR brought into a higher channel belongs to that PR's follow-up: ReconcileRemovals
//     runs the very same follow-up (FollowUpMerged), which writes branch storagebot/remove/<channel>/pr-<N>.
//     The merge event's handler writes that same branch, and GitHub creates a ref only once, so whichever
//     comes second finds the first one's branch and PR instead of opening another.
//   - Only duplicates no recently merged PR explains (pushed directly, or history older than the last 100
//     closed PRs into the higher channel) get a PR of their own, branch
//     storagebot/remove/<channel>/reconcile-<key>, unless an open removal PR covers them already.
//
// Versions held by two channels with different contents are reported as Conflicts and never removed. It
// reads the packages/ tree of each channel and only the package trees whose SHAs differ between two channels
// (an equal package tree SHA means every version is identical); merged PRs are read only while a duplicate
// is left to explain, and what they added is read by SHA (cached).
func (s *Service) ReconcileRemovals(ctx context.Context, repo Repo) (ReconcileResult, error) {
	cfg := repo.config()
	r := s.reader(repo)
	bound := storage.ReadConcurrency(r)
	heads := make([]head, len(cfg.Channels))
	pkgs := make([]map[string]storage.TreeEntry, len(cfg.Channels))
	channels := overlap.NewGroup(ctx, bound)
	for i, ch := range cfg.Channels {
		channels.Go(func(ctx context.Context) error {
			h, err := branchHead(ctx, repo, ch)
			if err != nil {
				return err
			}
			heads[i] = h
			sha, err := storage.Subtree(ctx, r, h.Tree, storage.PackagesDir)
			if err != nil {
				return fmt.Errorf("channel %s: %w", ch.Name, err)
			}
			if pkgs[i], err = storage.TreeByName(ctx, r, sha); err != nil {
				return fmt.Errorf("channel %s: %w", ch.Name, err)
			}
			return nil
		})
	}
	if err := channels.Wait(); err != nil {
		return ReconcileResult{}, fmt.Errorf("reconcile: %w", err)
	}
	var res ReconcileResult
	dups, conflicts, err := compareChannels(ctx, r, bound, cfg.Channels, pkgs)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	res.Conflicts = conflicts

	// Attribute each duplicate to the merged PR that brought it into a higher channel.
	origins := &mergeOrigins{svc: s, repo: repo, cfg: cfg, listed: map[string][]*mergedPR{}}
	followUps := map[int]*github.PullRequest{}
	unexplained := make([][]removal, len(cfg.Channels))
	var explained [][2]int // (channel index, index in dups)
	for i, list := range dups {
		for j, d := range list {
			pr, err := origins.of(ctx, i, d)
			if err != nil {
				return res, fmt.Errorf("reconcile: %w", err)
			}
			if pr == nil {
				unexplained[i] = append(unexplained[i], d)
				continue
			}
			followUps[pr.GetNumber()] = pr
			explained = append(explained, [2]int{i, j})
		}
	}
	numbers := make([]int, 0, len(followUps))
	for n := range followUps {
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	for _, n := range numbers {
		results, err := s.FollowUpMerged(ctx, repo, followUps[n])
		if err != nil {
			return res, fmt.Errorf("reconcile: %w", err)
		}
		res.FollowedUp = append(res.FollowedUp, n)
		for _, fr := range results {
			if fr.PR.Number != 0 {
				res.Removals = append(res.Removals, fr)
			}
		}
	}
	// A duplicate whose follow-up PR is not open any more (merged, and the copy came back since; or closed
	// by a person) is past that follow-up, which will never write again: it is handled like one no merge
	// explains, so it can neither be lost nor collide with the follow-up.
	removing := map[string]bool{}
	for _, fr := range res.Removals {
		if fr.Open {
			for _, v := range fr.Removed {
				removing[fr.Channel+"\x00"+v.String()] = true
			}
		}
	}
	for _, at := range explained {
		i, d := at[0], dups[at[0]][at[1]]
		if !removing[cfg.Channels[i].Name+"\x00"+d.Version.String()] {
			unexplained[i] = append(unexplained[i], d)
		}
	}

	for i, list := range unexplained {
		if len(list) == 0 {
			continue
		}
		covered, err := coveredByOpenRemovals(ctx, repo, cfg.Channels[i].Branch, s.markerKey(repo))
		if err != nil {
			return res, fmt.Errorf("reconcile: %w", err)
		}
		var remove []removal
		for _, d := range list {
			if _, ok := covered[d.Version]; !ok {
				remove = append(remove, d)
			}
		}
		if len(remove) == 0 {
			continue
		}
		// A large backlog is split into PRs whose bodies fit GitHub's limit, each keyed by its own versions.
		intro := reconcileIntro(heads[i].Channel.Name, highersOf(remove))
		parts, err := splitRemovals(remove, func(part []removal) string {
			return removalBody(intro, heads[i].Channel.Name, part, nil, removalMarker(heads[i].Channel.Name, placeholderCommit, part, 0).String(s.markerKey(repo)))
		})
		if err != nil {
			return res, fmt.Errorf("reconcile: %w", err)
		}
		for p, part := range parts {
			opened, err := s.reconcileChannel(ctx, repo, heads[i], part, p+1, len(parts))
			if err != nil {
				return res, fmt.Errorf("reconcile: %w", err)
			}
			res.Removals = append(res.Removals, opened)
		}
	}
	return res, nil
}

// recentMerges is how many recently updated closed PRs into a channel ReconcileRemovals reads (one page) to explain
// duplicates. A merge whose follow-up is still in flight is among the newest; older ones are done or missed.
const recentMerges = 100

// mergedPR is a PR merged into a channel and, once read, the versions it added there.
type mergedPR struct {
	pr     *github.PullRequest
	added  []added
	loaded bool
}

// mergeOrigins finds which merged PR brought a version into a higher channel, listing each channel's recent
// merges at most once per ReconcileRemovals call.
type mergeOrigins struct {
	svc    *Service
	repo   Repo
	cfg    *repoconfig.Config
	listed map[string][]*mergedPR // channel branch → merged PRs into it
}

// of returns the merged PR whose follow-up removes d from channel index lower: among the PRs merged into any
// channel above it, the most recently merged one that added d's version with contents identical to the lower
// copy (as FollowUp compares them). nil when none did.
func (o *mergeOrigins) of(ctx context.Context, lower int, d removal) (*github.PullRequest, error) {
	var candidates []*mergedPR
	for _, ch := range o.cfg.Channels[lower+1:] {
		list, err := o.merges(ctx, ch)
		if err != nil {
			return nil, err
		}
		candidates = append(candidates, list...)
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		ti, tj := candidates[i].pr.GetMergedAt().Time, candidates[j].pr.GetMergedAt().Time
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return candidates[i].pr.GetNumber() > candidates[j].pr.GetNumber()
	})
	r := o.svc.reader(o.repo)
	for _, c := range candidates {
		if !c.loaded {
			added, err := o.svc.addedBy(ctx, o.repo, c.pr)
			if err != nil {
				return nil, fmt.Errorf("what merged #%d added: %w", c.pr.GetNumber(), err)
			}
			c.added, c.loaded = added, true
		}
		for _, a := range c.added {
			if a.Version != d.Version {
				continue
			}
			same, err := storage.Identical(ctx, r, a.Tree, d.Tree)
			if err != nil {
				return nil, fmt.Errorf("compare %s with what #%d merged: %w", d.Version, c.pr.GetNumber(), err)
			}
			if same {
				return c.pr, nil
			}
		}
	}
	return nil, nil
}

// merges lists the PRs merged into a channel among the most recently updated closed ones.
func (o *mergeOrigins) merges(ctx context.Context, ch repoconfig.Channel) ([]*mergedPR, error) {
	if list, ok := o.listed[ch.Branch]; ok {
		return list, nil
	}
	prs, err := o.repo.Client.RecentlyClosedPullRequests(ctx, o.repo.Owner, o.repo.Name, ch.Branch, recentMerges)
	if err != nil {
		return nil, fmt.Errorf("list PRs merged into %s: %w", ch.Branch, err)
	}
	list := []*mergedPR{}
	for _, pr := range prs {
		// GitHub's list answer has merged_at and merge_commit_sha but no "merged" field (only a single PR's
		// answer has it); merged_at is set exactly when the PR merged.
		if pr.MergedAt == nil || pr.GetMergeCommitSHA() == "" {
			continue
		}
		pr.Merged = github.Bool(true)
		list = append(list, &mergedPR{pr: pr})
	}
	o.listed[ch.Branch] = list
	return list, nil
}

func (s *Service) reconcileChannel(ctx context.Context, repo Repo, lh head, remove []removal, part, parts int) (FollowUpResult, error) {
	branch := fmt.Sprintf("%s%s/reconcile-%s", RemoveBranchPrefix, lh.Channel.Name, branchKey(refsOf(remove)))
	if pr, err := findPR(ctx, repo, branch, "all"); err != nil || pr != nil {
		if pr == nil {
			return FollowUpResult{}, err
		}
		// The same set was reconciled before; a closed PR means a person decided against it.
		return FollowUpResult{Channel: lh.Channel.Name, PR: prRef(pr), Removed: refsOf(remove)}, labelRemoval(ctx, repo, pr)
	}
	highers := highersOf(remove)
	title := partTitle(reconcileTitle(lh.Channel.Name, highers, refsOf(remove)), part, parts)
	return s.openRemoval(ctx, repo, lh, branch, title, reconcileIntro(lh.Channel.Name, highers), remove, nil, 0)
}

// highersOf names the higher channels holding the removed versions ("staging and production").
func highersOf(remove []removal) string {
	return strings.Join(distinct(remove, func(rm removal) string { return rm.Higher }), " and ")
}

func reconcileIntro(lower, highers string) string {
	return fmt.Sprintf("These versions are in %s and, identically (file modes aside), in %s, which shadows it: the %s copies "+
		"are no longer served and no open removal PR covers them (a missed follow-up), so they are removed.",
		lower, highers, lower)
}

// packageDuplicates is what duplicatesOf found in one package of a lower channel.
// compareChannels compares every package of every channel but the highest with the higher channels' copies
// (pkgs: each channel's packages/ entries), all at once within bound: dups[i] are channel i's versions
// identical to a higher copy, conflicts the versions held by two channels with different contents, both in
// channel and package order. The reconciler and the status overview share it, so they agree.
func compareChannels(ctx context.Context, r storage.Reader, bound int, channels []repoconfig.Channel, pkgs []map[string]storage.TreeEntry) (dups [][]removal, conflicts []Conflict, err error) {
	lowers := channels[:len(channels)-1]
	found := make([][]packageDuplicates, len(lowers))
	compare := overlap.NewGroup(ctx, bound)
	for i, ch := range lowers {
		names := sortedNames(pkgs[i])
		found[i] = make([]packageDuplicates, len(names))
		for j, pkg := range names {
			compare.Go(func(ctx context.Context) error {
				var err error
				found[i][j], err = duplicatesOf(ctx, r, ch.Name, pkg, pkgs[i][pkg], channels[i+1:], pkgs[i+1:])
				return err
			})
		}
	}
	if err := compare.Wait(); err != nil {
		return nil, nil, err
	}
	dups = make([][]removal, len(channels))
	for i, list := range found {
		for _, f := range list {
			dups[i] = append(dups[i], f.dups...)
			conflicts = append(conflicts, f.conflicts...)
		}
	}
	return dups, conflicts, nil
}

type packageDuplicates struct {
	dups      []removal
	conflicts []Conflict
}

// duplicatesOf compares one package of a lower channel with its copies in every higher channel: versions
// identical to a higher copy (named by the nearest higher channel holding one) and versions that differ.
func duplicatesOf(ctx context.Context, r storage.Reader, lowerName, name string, le storage.TreeEntry,
	highers []repoconfig.Channel, higherPkgs []map[string]storage.TreeEntry) (packageDuplicates, error) {
	var out packageDuplicates
	if le.Type != storage.TypeTree {
		return out, nil
	}
	done := map[commandparse.VersionRef]bool{}
	var lowerVersions map[string]storage.TreeEntry
	for j, hc := range highers {
		he, ok := higherPkgs[j][name]
		if !ok || he.Type != storage.TypeTree {
			continue
		}
		if lowerVersions == nil {
			var err error
			if lowerVersions, err = storage.TreeByName(ctx, r, le.SHA); err != nil {
				return out, fmt.Errorf("channel %s package %s: %w", lowerName, name, err)
			}
		}
		higherVersions := lowerVersions
		if he.SHA != le.SHA {
			var err error
			if higherVersions, err = storage.TreeByName(ctx, r, he.SHA); err != nil {
				return out, fmt.Errorf("channel %s package %s: %w", hc.Name, name, err)
			}
		}
		// The versions both hold (and no nearer higher channel did) are compared at once.
		var both []string
		for _, v := range sortedNames(lowerVersions) {
			lv, hv := lowerVersions[v], higherVersions[v]
			if !done[commandparse.VersionRef{Package: name, Version: v}] && hv.SHA != "" && lv.Type == storage.TypeTree && hv.Type == storage.TypeTree {
				both = append(both, v)
			}
		}
		same := make([]bool, len(both))
		compare := overlap.NewGroup(ctx, storage.ReadConcurrency(r))
		for i, v := range both {
			compare.Go(func(ctx context.Context) error {
				var err error
				if same[i], err = identical(ctx, r, lowerVersions[v].SHA, higherVersions[v].SHA); err != nil {
					return fmt.Errorf("compare %s@%s in %s and %s: %w", name, v, lowerName, hc.Name, err)
				}
				return nil
			})
		}
		if err := compare.Wait(); err != nil {
			return out, err
		}
		for i, v := range both {
			lv, hv := lowerVersions[v], higherVersions[v]
			ref := commandparse.VersionRef{Package: name, Version: v}
			done[ref] = true
			if same[i] {
				out.dups = append(out.dups, removal{Version: ref, Tree: lv.SHA, Higher: hc.Name})
			} else {
				out.conflicts = append(out.conflicts, Conflict{Version: ref, Lower: lowerName, Higher: hc.Name, LowerTree: lv.SHA, HigherTree: hv.SHA})
			}
		}
	}
	return out, nil
}

// coveredByOpenRemovals lists the versions that open storagebot removal PRs into branch delete, each with
// the head branch of the PR that removes it, as their markers (verified under key) say.
func coveredByOpenRemovals(ctx context.Context, repo Repo, branch string, key seal.Key) (map[commandparse.VersionRef]string, error) {
	open, err := openRemovals(ctx, repo, branch, key)
	if err != nil {
		return nil, err
	}
	covered := map[commandparse.VersionRef]string{}
	for _, o := range open {
		for _, v := range o.Versions {
			covered[v] = o.PR.GetHead().GetRef()
		}
	}
	return covered, nil
}

// openRemoval is an open storagebot removal PR and the versions its marker says it removes.
type openRemoval struct {
	PR       *github.PullRequest
	Versions []commandparse.VersionRef
}

// openRemovals lists the open storagebot removal PRs into branch whose markers verify under key, oldest first.
func openRemovals(ctx context.Context, repo Repo, branch string, key seal.Key) ([]openRemoval, error) {
	prs, err := repo.Client.OpenPullRequests(ctx, repo.Owner, repo.Name, branch)
	if err != nil {
		return nil, fmt.Errorf("list open PRs into %s: %w", branch, err)
	}
	var out []openRemoval
	for _, pr := range prs {
		m, ok := ParseMarker(ctx, pr, key)
		if !ok || m.Kind != "removal" || !strings.HasPrefix(pr.GetHead().GetRef(), RemoveBranchPrefix) {
			continue
		}
		o := openRemoval{PR: pr}
		for _, v := range m.Versions {
			o.Versions = append(o.Versions, commandparse.VersionRef{Package: v.Package, Version: v.Version})
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PR.GetNumber() < out[j].PR.GetNumber() })
	return out, nil
}

// yieldToOlderRemoval is the last line of defence against two removal PRs for one copy, when two actors
// wrote different branches (a reconcile-<key> PR while the follow-up of a merge older than the reconciler's
// look-back was in flight, or the follow-ups of two merges into different higher channels). Every actor that
// has just opened a removal PR calls it: if an older open removal PR into the same branch removes one of the
// same versions, the new PR is closed with a comment saying which one remains, and that one is returned.
// The oldest PR is never closed, and whichever of two PRs was opened second sees the first one, so no two
// overlapping removal PRs stay open, whatever the order. It returns that PR and the versions both remove, or
// nil when ours stays.
func (s *Service) yieldToOlderRemoval(ctx context.Context, repo Repo, branch string, ours *github.PullRequest, versions []commandparse.VersionRef) (*github.PullRequest, []commandparse.VersionRef, error) {
	open, err := openRemovals(ctx, repo, branch, s.markerKey(repo))
	if err != nil {
		return nil, nil, fmt.Errorf("look for older removal PRs than #%d: %w", ours.GetNumber(), err)
	}
	mine := map[commandparse.VersionRef]bool{}
	for _, v := range versions {
		mine[v] = true
	}
	for _, o := range open {
		if o.PR.GetNumber() >= ours.GetNumber() {
			break
		}
		var shared []commandparse.VersionRef
		for _, v := range o.Versions {
			if mine[v] {
				shared = append(shared, v)
			}
		}
		if len(shared) == 0 {
			continue
		}
		n := ours.GetNumber()
		body := fmt.Sprintf("Closed as a duplicate: #%d, opened first, already removes %s from %s. Nothing to do here; "+
			"review and merge #%d instead.", o.PR.GetNumber(), listRefs(shared), branch, o.PR.GetNumber())
		if err := repo.Client.CreateComment(ctx, repo.Owner, repo.Name, n, body); err != nil {
			return nil, nil, fmt.Errorf("explain closing duplicate removal #%d: %w", n, err)
		}
		if err := repo.Client.ClosePullRequest(ctx, repo.Owner, repo.Name, n); err != nil {
			return nil, nil, fmt.Errorf("close duplicate removal #%d (#%d removes %s): %w", n, o.PR.GetNumber(), listRefs(shared), err)
		}
		zerolog.Ctx(ctx).Warn().Str("repo", repo.fullName()).Int("closed", n).Int("kept", o.PR.GetNumber()).
			Str("versions", listRefs(shared)).Msg("two removal PRs for the same copies: closed the newer one")
		return o.PR, shared, nil
	}
	return nil, nil, nil
}

func sortedNames(m map[string]storage.TreeEntry) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
