package promotion

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/storage"
)

// Overview is what a storage repository holds across its channels and what the bot has in flight there, read
// without writing anything: the facts of the status page and the dashboard issue (docs/architecture.md §6).
type Overview struct {
	// Heads are the channels' branch heads, lowest channel first.
	Heads []ChannelHead
	// Duplicates are versions held identically by a channel and a higher one: their removal is pending.
	Duplicates []Duplicate
	// Conflicts are versions held by two channels with different contents (drift), never removed by the bot.
	Conflicts []Conflict
	// InFlight are the open promotion and removal PRs the bot opened (sealed markers that verify), oldest first.
	InFlight []InFlightPR
	// Open are every open PR into a channel branch, oldest first.
	Open []*github.PullRequest
}

// ChannelHead is a channel's branch and its head commit.
type ChannelHead struct {
	Channel, Branch, Commit string
}

// Duplicate is a version held identically by channel Lower and channel Higher. RemovalPR is the open removal
// PR that removes the lower copy, nil when none does yet.
type Duplicate struct {
	Version   commandparse.VersionRef
	Lower     string
	Higher    string
	RemovalPR *PRRef
}

// InFlightPR is an open PR the bot opened to promote or remove versions.
type InFlightPR struct {
	// Kind is "promotion" or "removal".
	Kind     string
	PR       PRRef
	Title    string
	Target   string
	Versions []commandparse.VersionRef
	Opened   time.Time
}

// Overview reads the channels' heads, the versions held by two channels and the bot's open PRs. It costs one
// branch read and one open-PR listing per channel (both revalidated by ETag, so unchanged answers cost no
// rate limit) plus trees read by SHA, which are cached; it shares ReconcileRemovals' comparison, so both
// agree on what is a duplicate and what is drift.
func (s *Service) Overview(ctx context.Context, repo Repo) (Overview, error) {
	cfg := repo.config()
	r := s.reader(repo)
	var ov Overview
	pkgs := make([]map[string]storage.TreeEntry, len(cfg.Channels))
	for i, ch := range cfg.Channels {
		h, err := branchHead(ctx, repo, ch)
		if err != nil {
			return ov, fmt.Errorf("overview: %w", err)
		}
		ov.Heads = append(ov.Heads, ChannelHead{Channel: ch.Name, Branch: ch.Branch, Commit: h.Commit})
		sha, err := storage.Subtree(ctx, r, h.Tree, storage.PackagesDir)
		if err == nil {
			pkgs[i], err = storage.TreeByName(ctx, r, sha)
		}
		if err != nil {
			return ov, fmt.Errorf("overview: channel %s: %w", ch.Name, err)
		}
	}
	removing := map[string]*PRRef{} // lower channel + version → open removal PR
	key := s.markerKey(repo)
	for _, ch := range cfg.Channels {
		prs, err := repo.Client.OpenPullRequests(ctx, repo.Owner, repo.Name, ch.Branch)
		if err != nil {
			return ov, fmt.Errorf("overview: list open PRs into %s: %w", ch.Branch, err)
		}
		for _, pr := range prs {
			ov.Open = append(ov.Open, pr)
			m, ok := ParseMarker(ctx, pr, key)
			if !ok || (m.Kind == "removal") != strings.HasPrefix(pr.GetHead().GetRef(), RemoveBranchPrefix) {
				continue
			}
			ref := prRef(pr)
			f := InFlightPR{Kind: m.Kind, PR: ref, Title: pr.GetTitle(), Target: m.Target, Opened: pr.GetCreatedAt().Time}
			for _, v := range m.Versions {
				f.Versions = append(f.Versions, commandparse.VersionRef{Package: v.Package, Version: v.Version})
				if m.Kind == "removal" {
					removing[ch.Name+"\x00"+v.Package+"@"+v.Version] = &ref
				}
			}
			ov.InFlight = append(ov.InFlight, f)
		}
	}
	sort.Slice(ov.Open, func(i, j int) bool { return ov.Open[i].GetNumber() < ov.Open[j].GetNumber() })
	sort.Slice(ov.InFlight, func(i, j int) bool { return ov.InFlight[i].PR.Number < ov.InFlight[j].PR.Number })
	dups, conflicts, err := compareChannels(ctx, r, storage.ReadConcurrency(r), cfg.Channels, pkgs)
	if err != nil {
		return ov, fmt.Errorf("overview: %w", err)
	}
	ov.Conflicts = conflicts
	for i, list := range dups {
		lower := cfg.Channels[i].Name
		for _, d := range list {
			ov.Duplicates = append(ov.Duplicates, Duplicate{Version: d.Version, Lower: lower, Higher: d.Higher,
				RemovalPR: removing[lower+"\x00"+d.Version.String()]})
		}
	}
	return ov, nil
}
