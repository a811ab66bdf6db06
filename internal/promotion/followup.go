package promotion

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/commands"
	"github.com/storagebot/storagebot/internal/storage"
)

// ErrNotMerged is returned by AddedBy for a PR that has not merged.
var ErrNotMerged = errors.New("pull request is not merged")

// FollowUpResult is the removal PR for one lower channel. Created is false when it existed already (in any
// state); PR is zero when nothing in that channel was to be removed (Skipped then says why).
type FollowUpResult struct {
	Channel string
	PR      PRRef
	Created bool
	Removed []commands.VersionRef
	Skipped []Refusal
}

// added is a version a merge added, with its tree.
type added struct {
	Version commands.VersionRef
	Tree    string
}

// AddedBy lists the versions a merged PR added to its base channel: the difference between the merge base
// of the PR's base and head and its head. That is what the PR changed whatever the merge method; the merge
// commit's first parent is not: on a rebase merge, merge_commit_sha is only the last rebased commit, and
// its parent diff holds that commit's changes alone.
func (s *Service) AddedBy(ctx context.Context, repo Repo, pr *github.PullRequest) ([]commands.VersionRef, error) {
	list, err := s.addedBy(ctx, repo, pr)
	if err != nil {
		return nil, err
	}
	out := make([]commands.VersionRef, len(list))
	for i, a := range list {
		out[i] = a.Version
	}
	return out, nil
}

func (s *Service) addedBy(ctx context.Context, repo Repo, pr *github.PullRequest) ([]added, error) {
	if !pr.GetMerged() || pr.GetMergeCommitSHA() == "" {
		return nil, fmt.Errorf("versions added by #%d: %w", pr.GetNumber(), ErrNotMerged)
	}
	baseSHA, headSHA := pr.GetBase().GetSHA(), pr.GetHead().GetSHA()
	if baseSHA == "" || headSHA == "" {
		return nil, fmt.Errorf("versions added by #%d: the PR answer lacks its base or head SHA", pr.GetNumber())
	}
	r := s.reader(repo)
	mb, err := r.MergeBase(ctx, baseSHA, headSHA)
	if err != nil {
		return nil, fmt.Errorf("versions added by #%d: %w", pr.GetNumber(), err)
	}
	from, err := r.ResolveRevision(ctx, mb)
	if err != nil {
		return nil, fmt.Errorf("versions added by #%d: %w", pr.GetNumber(), err)
	}
	to, err := r.ResolveRevision(ctx, headSHA)
	if err != nil {
		return nil, fmt.Errorf("versions added by #%d: %w", pr.GetNumber(), err)
	}
	delta, err := storage.DiffVersions(ctx, r, from.TreeSHA, to.TreeSHA)
	if err != nil {
		return nil, fmt.Errorf("versions added by #%d: %w", pr.GetNumber(), err)
	}
	var out []added
	for _, d := range delta.Versions {
		if d.OldSHA == "" && d.NewSHA != "" && d.NewType == storage.TypeTree {
			out = append(out, added{Version: commands.VersionRef{Package: d.Package, Version: d.Version}, Tree: d.NewSHA})
		}
	}
	return out, nil
}

// FollowUp is called when a PR merged into a channel branch. For each lower channel holding copies identical
// (file modes ignored) to versions the PR added, it opens exactly one removal PR, branch
// storagebot/remove/<channel>/pr-<N>, labelled storage/removal. Lower copies that differ are left in place
// and returned as Skipped. It is safe to call any number of times, from any replica: a removal PR that
// exists in any state (open, closed or merged) is never opened again.
func (s *Service) FollowUp(ctx context.Context, repo Repo, merged *github.PullRequest) ([]FollowUpResult, error) {
	cfg := repo.config()
	ch, ok := cfg.ChannelByBranch(merged.GetBase().GetRef())
	if !ok {
		return nil, nil
	}
	versions, err := s.addedBy(ctx, repo, merged)
	if err != nil || len(versions) == 0 {
		return nil, err
	}
	r := s.reader(repo)
	n := merged.GetNumber()
	var results []FollowUpResult
	for _, lower := range cfg.Below(ch.Name) {
		branch := fmt.Sprintf("%s%s/pr-%d", RemoveBranchPrefix, lower.Name, n)
		if pr, err := findPR(ctx, repo, branch, "all"); err != nil {
			return results, fmt.Errorf("follow up #%d: %w", n, err)
		} else if pr != nil {
			res := FollowUpResult{Channel: lower.Name, PR: prRef(pr)}
			if m, ok := ParseMarker(ctx, pr, s.markerKey(repo)); ok {
				for _, v := range m.Versions {
					res.Removed = append(res.Removed, commands.VersionRef{Package: v.Package, Version: v.Version})
				}
			}
			results = append(results, res)
			continue
		}
		lh, err := branchHead(ctx, repo, lower)
		if err != nil {
			return results, fmt.Errorf("follow up #%d: %w", n, err)
		}
		var remove []removal
		res := FollowUpResult{Channel: lower.Name}
		for _, a := range versions {
			tree, err := versionTree(ctx, r, lh.Tree, a.Version)
			if err != nil {
				return results, fmt.Errorf("follow up #%d: %s: %w", n, lower.Name, err)
			}
			if tree == "" {
				continue
			}
			same, err := storage.Identical(ctx, r, tree, a.Tree)
			if err != nil {
				return results, fmt.Errorf("follow up #%d: compare %s: %w", n, a.Version, err)
			}
			if !same {
				res.Skipped = append(res.Skipped, Refusal{Version: a.Version, Reason: fmt.Sprintf(
					"shadowed: the %s copy of %s (tree %s) differs from the one #%d merged into %s (tree %s), so it is not removed "+
						"automatically; it is invisible while %s holds the version: remove it by hand, or publish the change as a new version",
					lower.Name, a.Version, short(tree), n, ch.Name, short(a.Tree), ch.Name)})
				continue
			}
			remove = append(remove, removal{Version: a.Version, Tree: tree, Higher: ch.Name})
		}
		if len(remove) > 0 {
			// The reconciler may have got there first (it runs at start and on a timer): never open a second PR
			// removing the same copy.
			covered, err := coveredByOpenRemovals(ctx, repo, lower.Branch, s.markerKey(repo))
			if err != nil {
				return results, fmt.Errorf("follow up #%d: %w", n, err)
			}
			kept := remove[:0]
			for _, rm := range remove {
				if covered[rm.Version] {
					res.Skipped = append(res.Skipped, Refusal{Version: rm.Version, Reason: fmt.Sprintf(
						"an open removal PR into %s already removes it", lower.Branch)})
					continue
				}
				kept = append(kept, rm)
			}
			remove = kept
		}
		if len(remove) == 0 {
			if len(res.Skipped) > 0 {
				results = append(results, res)
			}
			continue
		}
		intro := fmt.Sprintf("#%d merged these versions into %s, which shadows %s: the copies below are identical (file modes aside) "+
			"and no longer served from %s, so they are removed.", n, ch.Name, lower.Name, lower.Name)
		title := func(part []removal) string { return followUpTitle(lower.Name, ch.Name, n, refsOf(part)) }
		opened, err := s.openRemovalParts(ctx, repo, lh, branch, title, intro, remove, res.Skipped, n)
		if err != nil {
			return results, fmt.Errorf("follow up #%d: %w", n, err)
		}
		results = append(results, opened...)
	}
	return results, nil
}

// removal is a version to delete from a lower channel, present identically in Higher.
type removal struct {
	Version commands.VersionRef
	Tree    string
	Higher  string
}

func refsOf(rs []removal) []commands.VersionRef {
	out := make([]commands.VersionRef, len(rs))
	for i, r := range rs {
		out[i] = r.Version
	}
	return out
}

// openRemoval writes the commit deleting the versions from the lower channel's head, points branch at it
// (or keeps an existing branch that already removes them), opens the PR and labels it.
func (s *Service) openRemoval(ctx context.Context, repo Repo, lh head, branch, title, intro string, remove []removal, skipped []Refusal, promotedIn int) (FollowUpResult, error) {
	res := FollowUpResult{Channel: lh.Channel.Name, Removed: refsOf(remove)}
	commit, err := s.commitRemoval(ctx, repo, lh, title, refsOf(remove))
	if err != nil {
		return res, err
	}
	r := s.reader(repo)
	commit, err = s.claimBranch(ctx, repo, branch, commit, func(tree string) (bool, error) {
		for _, rm := range remove {
			t, err := versionTree(ctx, r, tree, rm.Version)
			if err != nil || t != "" {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return res, err
	}
	marker := removalMarker(lh.Channel.Name, commit, remove, promotedIn).String(s.markerKey(repo))
	pr, created, err := openPR(ctx, repo, branch, lh.Channel.Branch, title, removalBody(intro, lh.Channel.Name, remove, skipped, marker))
	if err != nil {
		return res, err
	}
	if _, _, err := repo.Client.Issues.AddLabelsToIssue(ctx, repo.Owner, repo.Name, pr.GetNumber(), []string{RemovalLabel}); err != nil {
		return res, fmt.Errorf("label #%d %s: %w", pr.GetNumber(), RemovalLabel, err)
	}
	res.PR, res.Created = prRef(pr), created
	zerolog.Ctx(ctx).Info().Str("repo", repo.fullName()).Str("channel", lh.Channel.Name).Int("pr", pr.GetNumber()).
		Str("versions", listRefs(res.Removed)).Bool("created", created).Msg("removal PR")
	return res, nil
}
