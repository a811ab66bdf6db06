package promotion

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/commands"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
)

// Conflict is a version present in two channels with different contents: the lower copy is shadowed and
// invisible, and is never removed automatically.
type Conflict struct {
	Version    commands.VersionRef
	Lower      string
	Higher     string
	LowerTree  string
	HigherTree string
}

// ReconcileResult is what Reconcile found and did.
type ReconcileResult struct {
	// Removals lists the removal PRs opened (or found, for a version set reconciled before).
	Removals  []FollowUpResult
	Conflicts []Conflict
}

// Reconcile finds versions held identically by a channel and any higher one that no open removal PR covers,
// and opens one removal PR per lower channel for them (branch storagebot/remove/<channel>/reconcile-<key>,
// labelled storage/removal). Versions held by two channels with different contents are reported as
// Conflicts and never removed. It reads the packages/ tree of each channel and only the package trees whose
// SHAs differ between two channels (an equal package tree SHA means every version is identical).
func (s *Service) Reconcile(ctx context.Context, repo Repo) (ReconcileResult, error) {
	cfg := repo.config()
	r := s.reader(repo)
	heads := make([]head, len(cfg.Channels))
	pkgs := make([]map[string]storage.TreeEntry, len(cfg.Channels))
	for i, ch := range cfg.Channels {
		h, err := branchHead(ctx, repo, ch)
		if err != nil {
			return ReconcileResult{}, fmt.Errorf("reconcile: %w", err)
		}
		heads[i] = h
		if pkgs[i], err = childEntries(ctx, r, h.Tree, storage.PackagesDir); err != nil {
			return ReconcileResult{}, fmt.Errorf("reconcile: channel %s: %w", ch.Name, err)
		}
	}
	var res ReconcileResult
	for i := range cfg.Channels[:len(cfg.Channels)-1] {
		dups, conflicts, err := s.duplicates(ctx, r, cfg.Channels[i].Name, pkgs[i], cfg.Channels[i+1:], pkgs[i+1:])
		if err != nil {
			return res, fmt.Errorf("reconcile: %w", err)
		}
		res.Conflicts = append(res.Conflicts, conflicts...)
		if len(dups) == 0 {
			continue
		}
		covered, err := coveredByOpenRemovals(ctx, repo, cfg.Channels[i].Branch, s.markerKey(repo))
		if err != nil {
			return res, fmt.Errorf("reconcile: %w", err)
		}
		var remove []removal
		for _, d := range dups {
			if !covered[d.Version] {
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

func (s *Service) reconcileChannel(ctx context.Context, repo Repo, lh head, remove []removal, part, parts int) (FollowUpResult, error) {
	branch := fmt.Sprintf("%s%s/reconcile-%s", RemoveBranchPrefix, lh.Channel.Name, branchKey(refsOf(remove)))
	if pr, err := findPR(ctx, repo, branch, "all"); err != nil || pr != nil {
		if pr == nil {
			return FollowUpResult{}, err
		}
		// The same set was reconciled before; a closed PR means a person decided against it.
		return FollowUpResult{Channel: lh.Channel.Name, PR: prRef(pr), Removed: refsOf(remove)}, nil
	}
	highers := highersOf(remove)
	title := partTitle(reconcileTitle(lh.Channel.Name, highers, refsOf(remove)), part, parts)
	return s.openRemoval(ctx, repo, lh, branch, title, reconcileIntro(lh.Channel.Name, highers), remove, nil, 0)
}

// highersOf names the higher channels holding the removed versions ("staging and production").
func highersOf(remove []removal) string {
	var highers []string
	seen := map[string]bool{}
	for _, rm := range remove {
		if !seen[rm.Higher] {
			seen[rm.Higher] = true
			highers = append(highers, rm.Higher)
		}
	}
	return strings.Join(highers, " and ")
}

func reconcileIntro(lower, highers string) string {
	return fmt.Sprintf("These versions are in %s and, identically (file modes aside), in %s, which shadows it: the %s copies "+
		"are no longer served and no open removal PR covers them (a missed follow-up), so they are removed.",
		lower, highers, lower)
}

// duplicates compares one channel's packages with every higher channel's: versions identical to a higher
// copy (named by the nearest higher channel holding one) and versions that differ.
func (s *Service) duplicates(ctx context.Context, r storage.Reader, lowerName string, lower map[string]storage.TreeEntry,
	highers []repoconfig.Channel, higherPkgs []map[string]storage.TreeEntry) ([]removal, []Conflict, error) {
	var dups []removal
	var conflicts []Conflict
	done := map[commands.VersionRef]bool{}
	for _, name := range sortedNames(lower) {
		le := lower[name]
		if le.Type != storage.TypeTree {
			continue
		}
		var lowerVersions map[string]storage.TreeEntry
		for j, hc := range highers {
			he, ok := higherPkgs[j][name]
			if !ok || he.Type != storage.TypeTree {
				continue
			}
			if lowerVersions == nil {
				var err error
				if lowerVersions, err = treeEntries(ctx, r, le.SHA); err != nil {
					return nil, nil, fmt.Errorf("channel %s package %s: %w", lowerName, name, err)
				}
			}
			higherVersions := lowerVersions
			if he.SHA != le.SHA {
				var err error
				if higherVersions, err = treeEntries(ctx, r, he.SHA); err != nil {
					return nil, nil, fmt.Errorf("channel %s package %s: %w", hc.Name, name, err)
				}
			}
			for _, v := range sortedNames(lowerVersions) {
				lv, hv := lowerVersions[v], higherVersions[v]
				ref := commands.VersionRef{Package: name, Version: v}
				if done[ref] || hv.SHA == "" || lv.Type != storage.TypeTree || hv.Type != storage.TypeTree {
					continue
				}
				same, err := storage.Identical(ctx, r, lv.SHA, hv.SHA)
				if err != nil {
					return nil, nil, fmt.Errorf("compare %s in %s and %s: %w", ref, lowerName, hc.Name, err)
				}
				done[ref] = true
				if same {
					dups = append(dups, removal{Version: ref, Tree: lv.SHA, Higher: hc.Name})
				} else {
					conflicts = append(conflicts, Conflict{Version: ref, Lower: lowerName, Higher: hc.Name, LowerTree: lv.SHA, HigherTree: hv.SHA})
				}
			}
		}
	}
	return dups, conflicts, nil
}

// coveredByOpenRemovals lists the versions that open storagebot removal PRs into branch delete, as their
// markers (verified under key) say.
func coveredByOpenRemovals(ctx context.Context, repo Repo, branch string, key seal.Key) (map[commands.VersionRef]bool, error) {
	covered := map[commands.VersionRef]bool{}
	opts := &github.PullRequestListOptions{State: "open", Base: branch, ListOptions: github.ListOptions{PerPage: 100}}
	for {
		prs, resp, err := repo.Client.PullRequests.List(ctx, repo.Owner, repo.Name, opts)
		if err != nil {
			return nil, fmt.Errorf("list open PRs into %s: %w", branch, err)
		}
		for _, pr := range prs {
			m, ok := ParseMarker(ctx, pr, key)
			if !ok || m.Kind != "removal" || !strings.HasPrefix(pr.GetHead().GetRef(), RemoveBranchPrefix) {
				continue
			}
			for _, v := range m.Versions {
				covered[commands.VersionRef{Package: v.Package, Version: v.Version}] = true
			}
		}
		if resp.NextPage == 0 {
			return covered, nil
		}
		opts.Page = resp.NextPage
	}
}

// childEntries lists the entries of the subtree called name under root; none when it is absent.
func childEntries(ctx context.Context, r storage.Reader, root, name string) (map[string]storage.TreeEntry, error) {
	entries, err := r.Tree(ctx, root, false)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Path == name && e.Type == storage.TypeTree {
			return treeEntries(ctx, r, e.SHA)
		}
	}
	return map[string]storage.TreeEntry{}, nil
}

func treeEntries(ctx context.Context, r storage.Reader, sha string) (map[string]storage.TreeEntry, error) {
	entries, err := r.Tree(ctx, sha, false)
	if err != nil {
		return nil, err
	}
	out := make(map[string]storage.TreeEntry, len(entries))
	for _, e := range entries {
		out[e.Path] = e
	}
	return out, nil
}

func sortedNames(m map[string]storage.TreeEntry) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
