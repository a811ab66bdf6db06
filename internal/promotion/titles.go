package promotion

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/commandparse"
)

// GitHub refuses (422) an issue or PR title over 256 characters, and a PR body or comment over 65,536.
// Everything the bot writes is built to fit, before anything is written.
const (
	MaxTitleLength = 256
	MaxBodyLength  = 65536
)

// bodyBudget is what a PR body may use: GitHub's limit less a margin for what is added to it after it is
// measured (the marker is measured with a placeholder commit, and may carry a signature).
const bodyBudget = MaxBodyLength - 1024

// ErrTooLong is returned when a request cannot be written within GitHub's limits even summarised.
var ErrTooLong = errors.New("too long for GitHub")

// summarise writes prefix + the versions + suffix: all of them when that fits in MaxTitleLength
// characters, else the first one and how many more ("[staging] Promote apm@8.1.0 and 13 more from
// snapshot"); the PR body lists them all. When even that does not fit (very long channel or package names)
// it says only how many versions there are, and cuts that at the limit as a last resort.
func summarise(prefix string, refs []commandparse.VersionRef, suffix string) string {
	fits := func(s string) bool { return utf8.RuneCountInString(s) <= MaxTitleLength }
	if full := prefix + listRefs(refs) + suffix; fits(full) {
		return full
	}
	if len(refs) > 1 {
		if s := prefix + fmt.Sprintf("%s and %d more", refs[0], len(refs)-1) + suffix; fits(s) {
			return s
		}
	}
	s := prefix + countVersions(len(refs)) + suffix
	if fits(s) {
		return s
	}
	return truncateRunes(s, MaxTitleLength)
}

// truncateRunes cuts s to at most n characters, ending with "…" when it cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func promoteTitle(target, source string, refs []commandparse.VersionRef) string {
	return summarise(fmt.Sprintf("[%s] Promote ", target), refs, " from "+source)
}

func followUpTitle(lower, higher string, merged int, refs []commandparse.VersionRef) string {
	return summarise(fmt.Sprintf("[%s] Remove packages promoted to %s in #%d (", lower, higher, merged), refs, ")")
}

func reconcileTitle(lower, highers string, refs []commandparse.VersionRef) string {
	return summarise(fmt.Sprintf("[%s] Remove packages already in %s (", lower, highers), refs, ")")
}

// partTitle marks one of several removal PRs a list too long for one PR body was split into.
func partTitle(title string, part, parts int) string {
	if parts <= 1 {
		return title
	}
	tag := fmt.Sprintf(" [part %d of %d]", part, parts)
	return truncateRunes(title, MaxTitleLength-utf8.RuneCountInString(tag)) + tag
}

// fitsBody reports whether a PR body is within bodyBudget characters.
func fitsBody(body string) bool { return utf8.RuneCountInString(body) <= bodyBudget }

// placeholderCommit stands for the commit SHA a marker records when a body is measured before the commit
// exists: a SHA always has 40 characters.
var placeholderCommit = strings.Repeat("0", 40)

func promoteBody(target, source string, plan []Planned, req PromoteRequest, marker string) string {
	intro := fmt.Sprintf("Promotes %d version(s) from %s to %s, copied by reference: each new tree entry points at the source "+
		"channel's tree, so the contents are exactly what %s holds.\n\n", len(plan), source, target, source)
	var tail strings.Builder
	switch {
	case req.RequestedBy != "" && req.FromPR != 0:
		fmt.Fprintf(&tail, "\nRequested by @%s in #%d.\n", req.RequestedBy, req.FromPR)
	case req.RequestedBy != "":
		fmt.Fprintf(&tail, "\nRequested by @%s.\n", req.RequestedBy)
	}
	fmt.Fprintf(&tail, "\nOnce this merges, storagebot opens a PR removing the now shadowed copies from %s.\n\n%s\n", source, marker)

	return withVersions(len(plan), "versions", "| Version | From | Source tree |\n|---|---|---|\n",
		func(i int) string {
			return fmt.Sprintf("| `%s` | %s | `%s` |\n", plan[i].Version, plan[i].Source, plan[i].Tree)
		},
		func(i int) string { return fmt.Sprintf("- `%s` from %s\n", plan[i].Version, plan[i].Source) },
		func(versions string) string { return intro + versions + tail.String() })
}

// withVersions writes a PR body, body(versions), around the list of its n versions: a table (header, then
// row(i) for each) when the whole body fits GitHub's limit, else a collapsed list of item(i) (the marker keeps
// each version's tree). what names the versions in the collapsed list's summary.
func withVersions(n int, what, header string, row, item func(i int) string, body func(versions string) string) string {
	var table strings.Builder
	table.WriteString(header)
	for i := 0; i < n; i++ {
		table.WriteString(row(i))
	}
	if full := body(table.String()); fitsBody(full) {
		return full
	}
	var list strings.Builder
	fmt.Fprintf(&list, "<details><summary>%d %s (collapsed: the full table would pass GitHub's %d-character limit)</summary>\n\n",
		n, what, MaxBodyLength)
	for i := 0; i < n; i++ {
		list.WriteString(item(i))
	}
	list.WriteString("\n</details>\n")
	return body(list.String())
}

func removalBody(intro, channel string, remove []removal, skipped []Refusal, marker string) string {
	var tail strings.Builder
	if len(skipped) > 0 {
		fmt.Fprintf(&tail, "\nNot removed from %s:\n", channel)
		for _, sk := range skipped {
			fmt.Fprintf(&tail, "- `%s`: %s\n", sk.Version, sk.Reason)
		}
	}
	fmt.Fprintf(&tail, "\n%s\n", marker)

	return withVersions(len(remove), "versions removed", "| Version | Also in | Tree removed here |\n|---|---|---|\n",
		func(i int) string {
			return fmt.Sprintf("| `%s` | %s | `%s` |\n", remove[i].Version, remove[i].Higher, remove[i].Tree)
		},
		func(i int) string { return fmt.Sprintf("- `%s` (also in %s)\n", remove[i].Version, remove[i].Higher) },
		func(versions string) string { return intro + "\n\n" + versions + tail.String() })
}

// splitRemovals cuts a removal list, in order, into the fewest consecutive parts whose PR body (as body
// builds it) fits GitHub's limit; a list that fits is one part. The split is deterministic, so a retry
// finds the same parts. An error means one version alone does not fit.
func splitRemovals(remove []removal, body func(part []removal) string) ([][]removal, error) {
	var parts [][]removal
	for rest := remove; len(rest) > 0; {
		lo := mostThatFit(len(rest), func(k int) bool { return fitsBody(body(rest[:k])) })
		if lo == 0 {
			return nil, fmt.Errorf("the removal PR body for %s alone passes GitHub's %d-character limit: %w", rest[0].Version, MaxBodyLength, ErrTooLong)
		}
		parts = append(parts, rest[:lo])
		rest = rest[lo:]
	}
	return parts, nil
}

// FitComment shortens a comment to GitHub's limit of 65,536 characters by leaving out whole lines before
// its trailing machine-readable markers (HTML comments at the end, kept intact), and says how many lines
// were left out. An error means the markers alone do not fit.
func FitComment(body string) (string, error) {
	if utf8.RuneCountInString(body) <= MaxBodyLength {
		return body, nil
	}
	lines := strings.Split(body, "\n")
	cut := len(lines)
	for cut > 0 {
		l := strings.TrimSpace(lines[cut-1])
		if l != "" && !(strings.HasPrefix(l, "<!--") && strings.HasSuffix(l, "-->")) {
			break
		}
		cut--
	}
	head, markers := lines[:cut], strings.Join(lines[cut:], "\n")
	budget := MaxBodyLength - utf8.RuneCountInString(markers) - 200
	if budget < 0 {
		return "", fmt.Errorf("the comment's records alone have %d characters, over GitHub's limit of %d: %w",
			utf8.RuneCountInString(markers), MaxBodyLength, ErrTooLong)
	}
	var b strings.Builder
	used, kept := 0, 0
	for _, l := range head {
		n := utf8.RuneCountInString(l) + 1
		if used+n > budget {
			break
		}
		b.WriteString(l)
		b.WriteString("\n")
		used += n
		kept++
	}
	fmt.Fprintf(&b, "\n… %d more lines left out: the full reply would pass GitHub's limit of %d characters.\n", len(head)-kept, MaxBodyLength)
	b.WriteString(markers)
	return b.String(), nil
}

// mostThatFit returns the largest k ≤ n with fits(k), fits being monotonic (0 when even 1 does not fit).
func mostThatFit(n int, fits func(k int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// removalMarker is the marker of a removal PR deleting remove from channel.
func removalMarker(channel, commit string, remove []removal, promotedIn int) Marker {
	m := Marker{Kind: "removal", Target: channel, Commit: commit, PromotedIn: promotedIn}
	for _, rm := range remove {
		m.Versions = append(m.Versions, MarkedVersion{Package: rm.Version.Package, Version: rm.Version.Version, Channel: channel, Tree: rm.Tree})
	}
	return m
}

// openRemovalParts opens the removal PRs for remove from the channel head lh: one on branch when its body
// fits GitHub's limit, else consecutive parts on branch, branch-part-2, … (deterministic, so a retry finds
// them). Parts after the first are looked up before anything is written for them, like the first one is by
// the caller. The skipped versions are listed on the first part only.
func (s *Service) openRemovalParts(ctx context.Context, repo Repo, lh head, branch string, title func([]removal) string,
	intro string, remove []removal, skipped []Refusal, promotedIn int) ([]FollowUpResult, error) {
	parts, err := splitRemovals(remove, func(part []removal) string {
		return removalBody(intro, lh.Channel.Name, part, skipped, removalMarker(lh.Channel.Name, placeholderCommit, part, promotedIn).String(s.markerKey(repo)))
	})
	if err != nil {
		return nil, err
	}
	if len(parts) > 1 {
		zerolog.Ctx(ctx).Info().Str("repo", repo.fullName()).Str("channel", lh.Channel.Name).Int("versions", len(remove)).
			Int("parts", len(parts)).Msg("removal split into several PRs to keep each body under GitHub's limit")
	}
	var out []FollowUpResult
	for i, part := range parts {
		b, sk := branch, skipped
		if i > 0 {
			b, sk = fmt.Sprintf("%s-part-%d", branch, i+1), nil
			pr, err := findPR(ctx, repo, b, "all")
			if err != nil {
				return out, err
			}
			if pr != nil {
				out = append(out, FollowUpResult{Channel: lh.Channel.Name, PR: prRef(pr), Removed: refsOf(part)})
				continue
			}
		}
		opened, err := s.openRemoval(ctx, repo, lh, b, partTitle(title(part), i+1, len(parts)), intro, part, sk, promotedIn)
		if err != nil {
			return out, err
		}
		opened.Skipped = sk
		out = append(out, opened)
	}
	return out, nil
}

func countVersions(n int) string {
	if n == 1 {
		return "1 version"
	}
	return fmt.Sprintf("%d versions", n)
}
