package status

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoctx"
)

// collect reads one repository's state from GitHub: the configuration, the channel branches, what the
// promotion service's Overview finds, and this App's newest storage-policy run on each open PR's head.
func (b *Board) collect(ctx context.Context, installationID int64, ghRepo *github.Repository) (Repository, error) {
	out := Repository{FullName: ghRepo.GetFullName(), URL: ghRepo.GetHTMLURL(), InstallationID: installationID}
	gh, err := b.GitHub(installationID)
	if err != nil {
		return out, err
	}
	repo, err := repoctx.Load(ctx, gh, ghRepo)
	if err != nil {
		return out, err
	}
	if repo.ConfigErr != nil {
		out.ConfigError = repo.ConfigErr.Error()
		out.ReadAt = b.now().UTC()
		return out, nil
	}
	cfg := repo.Config
	for _, ch := range cfg.Channels {
		exists, err := gh.BranchExists(ctx, repo.Owner, repo.Name, ch.Branch)
		if err != nil {
			return out, err
		}
		if !exists { // not a storage repository: nothing else to show
			out.ReadAt = b.now().UTC()
			return out, nil
		}
	}
	out.Storage, out.Dashboard = true, cfg.Dashboard
	ov, err := b.Promotions.Overview(ctx, promotion.Repo{Client: gh, Owner: repo.Owner, Name: repo.Name, Config: cfg})
	if err != nil {
		return out, err
	}
	web := strings.TrimSuffix(ghRepo.GetHTMLURL(), "/")
	for _, h := range ov.Heads {
		out.Channels = append(out.Channels, Channel{Name: h.Channel, Branch: h.Branch, Commit: h.Commit, CommitURL: web + "/commit/" + h.Commit})
	}
	for _, d := range ov.Duplicates {
		p := Pending{Package: d.Version.Package, Version: d.Version.Version, Lower: d.Lower, Higher: d.Higher}
		if d.RemovalPR != nil {
			p.RemovalPR = &Link{Number: d.RemovalPR.Number, URL: d.RemovalPR.URL}
		}
		out.Pending = append(out.Pending, p)
	}
	for _, c := range ov.Conflicts {
		out.Drift = append(out.Drift, Drift{Package: c.Version.Package, Version: c.Version.Version, Lower: c.Lower, Higher: c.Higher,
			LowerTree: c.LowerTree, HigherTree: c.HigherTree})
	}
	for _, f := range ov.InFlight {
		in := InFlight{Kind: f.Kind, PR: Link{Number: f.PR.Number, URL: f.PR.URL}, Title: f.Title, Target: f.Target, OpenedAt: f.Opened.UTC()}
		for _, v := range f.Versions {
			in.Versions = append(in.Versions, v.String())
		}
		out.InFlight = append(out.InFlight, in)
	}
	for _, pr := range ov.Open {
		v := Verdict{PR: Link{Number: pr.GetNumber(), URL: pr.GetHTMLURL()}, Title: pr.GetTitle(), Base: pr.GetBase().GetRef(),
			HeadSHA: pr.GetHead().GetSHA(), Status: "none"}
		run, err := b.Checks.LatestRun(ctx, gh, repo.Owner, repo.Name, v.HeadSHA)
		if err != nil {
			return out, fmt.Errorf("verdict of #%d: %w", pr.GetNumber(), err)
		}
		if run != nil {
			v.Status, v.Conclusion, v.Summary, v.RunURL = run.GetStatus(), run.GetConclusion(), run.GetOutput().GetTitle(), run.GetHTMLURL()
			v.CompletedAt = run.GetCompletedAt().Time.UTC()
		}
		out.Verdicts = append(out.Verdicts, v)
	}
	out.ReadAt = b.now().UTC()
	return out, nil
}
