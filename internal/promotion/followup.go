package promotion

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/botcomment"
	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/overlap"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// ErrNotMerged is returned by AddedBy for a PR that has not merged.
var ErrNotMerged = errors.New("pull request is not merged")

// FollowUpResult is the removal PR for one lower channel. Created is false when it existed already (in any
// state); PR is zero when nothing in that channel was to be removed (Skipped then says why).
type FollowUpResult struct {
	Channel string
	PR      PRRef
	Created bool
	// Open is true while PR is open; a removal PR found merged or closed removes nothing any more.
	Open    bool
	Removed []commandparse.VersionRef
	Skipped []Refusal
}

// added is a version a merge added, with its tree.
type added struct {
	Version commandparse.VersionRef
	Tree    string
}

// AddedBy lists the versions a merged PR added to its base channel: the difference between the merge base
// of the PR's base and head and its head. That is what the PR changed whatever the merge method; the merge
// commit's first parent is not: on a rebase merge, merge_commit_sha is only the last rebased commit, and
// its parent diff holds that commit's changes alone.
func (s *Service) AddedBy(ctx context.Context, repo Repo, pr *github.PullRequest) ([]commandparse.VersionRef, error) {
	list, err := s.addedBy(ctx, repo, pr)
	if err != nil {
		return nil, err
	}
	out := make([]commandparse.VersionRef, len(list))
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
	var from, to storage.Commit
	both := overlap.NewGroup(ctx, storage.ReadConcurrency(r))
	both.Go(func(ctx context.Context) (err error) { from, err = r.ResolveRevision(ctx, mb); return err })
	both.Go(func(ctx context.Context) (err error) { to, err = r.ResolveRevision(ctx, headSHA); return err })
	if err := both.Wait(); err != nil {
		return nil, fmt.Errorf("versions added by #%d: %w", pr.GetNumber(), err)
	}
	delta, err := storage.DiffVersions(ctx, r, from.TreeSHA, to.TreeSHA)
	if err != nil {
		return nil, fmt.Errorf("versions added by #%d: %w", pr.GetNumber(), err)
	}
	var out []added
	for _, d := range delta.Versions {
		if d.OldSHA == "" && d.NewSHA != "" && d.NewType == storage.TypeTree {
			out = append(out, added{Version: commandparse.VersionRef{Package: d.Package, Version: d.Version}, Tree: d.NewSHA})
		}
	}
	return out, nil
}

// FollowUp is called when a PR merged into a channel branch. For each lower channel holding copies identical
// (file modes ignored) to versions the PR added, it opens exactly one removal PR, branch
// storagebot/remove/<channel>/pr-<N>, labelled storage/removal. Lower copies that differ are left in place
// and returned as Skipped. It is safe to call any number of times, from any replica, and the reconciler calls
// it too for the merges that explain the duplicates it finds: a removal PR that exists in any state (open,
// closed or merged) is never opened again; two concurrent calls race on creating the same branch, which
// GitHub does once, and the loser adopts the winner's branch and PR. Versions another open removal PR already
// removes are Skipped; should such a PR appear while this one is being opened, the newer of the two closes
// itself (yieldToOlderRemoval).
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
	lowers := cfg.Below(ch.Name)
	// Every lower channel is read first, all at once; the PRs are then written one channel after another.
	reads := make([]lowerCopies, len(lowers))
	all := overlap.NewGroup(ctx, storage.ReadConcurrency(r))
	for i, lower := range lowers {
		all.Go(func(ctx context.Context) error {
			var err error
			reads[i], err = s.lowerCopies(ctx, repo, r, n, ch.Name, lower, versions)
			return err
		})
	}
	if err := all.Wait(); err != nil {
		return nil, fmt.Errorf("follow up #%d: %w", n, err)
	}
	var results []FollowUpResult
	for i, lower := range lowers {
		branch := removalBranch(lower.Name, n)
		if pr := reads[i].existing; pr != nil {
			if err := labelRemoval(ctx, repo, pr); err != nil {
				return results, fmt.Errorf("follow up #%d: %w", n, err)
			}
			results = append(results, existingRemoval(ctx, lower.Name, pr, s.markerKey(repo)))
			continue
		}
		lh, remove := reads[i].head, reads[i].remove
		res := FollowUpResult{Channel: lower.Name, Skipped: reads[i].skipped}
		if len(remove) > 0 {
			// The reconciler may have got there first (it runs at start and on a timer): never open a second PR
			// removing the same copy.
			covered, err := coveredByOpenRemovals(ctx, repo, lower.Branch, s.markerKey(repo))
			if err != nil {
				return results, fmt.Errorf("follow up #%d: %w", n, err)
			}
			if coversAny(covered, remove, branch) {
				// This very follow-up, run by another replica (or by the reconciler on behalf of this merge),
				// opened its PR since we looked: that PR is ours.
				pr, err := findPR(ctx, repo, branch, "all")
				if err != nil {
					return results, fmt.Errorf("follow up #%d: %w", n, err)
				}
				if pr != nil {
					if err := labelRemoval(ctx, repo, pr); err != nil {
						return results, fmt.Errorf("follow up #%d: %w", n, err)
					}
					results = append(results, existingRemoval(ctx, lower.Name, pr, s.markerKey(repo)))
					continue
				}
			}
			kept := remove[:0]
			for _, rm := range remove {
				if _, ok := covered[rm.Version]; ok {
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

// removalBranch is the deterministic branch of the removal PR from channel lower that merged PR n calls for.
func removalBranch(lower string, n int) string {
	return fmt.Sprintf("%s%s/pr-%d", RemoveBranchPrefix, lower, n)
}

// lowerCopies is what a follow-up reads of one lower channel before writing anything: the removal PR that
// exists already, or else the channel's head, the copies to remove and those left in place.
type lowerCopies struct {
	existing *github.PullRequest
	head     head
	remove   []removal
	skipped  []Refusal
}

// lowerCopies reads the lower channel's copies of the versions merged PR n added to channel higher: each
// version's lookup and comparison overlapped with the others'. Nothing is read beyond the PR lookup when the
// removal PR exists (in any state): its follow-up is done.
func (s *Service) lowerCopies(ctx context.Context, repo Repo, r storage.Reader, n int, higher string, lower repoconfig.Channel, versions []added) (lowerCopies, error) {
	var out lowerCopies
	pr, err := findPR(ctx, repo, removalBranch(lower.Name, n), "all")
	if err != nil || pr != nil {
		out.existing = pr
		return out, err
	}
	if out.head, err = branchHead(ctx, repo, lower); err != nil {
		return out, err
	}
	trees := make([]string, len(versions))
	same := make([]bool, len(versions))
	each := overlap.NewGroup(ctx, storage.ReadConcurrency(r))
	for i, a := range versions {
		each.Go(func(ctx context.Context) error {
			tree, err := versionTree(ctx, r, out.head.Tree, a.Version)
			if err != nil {
				return fmt.Errorf("%s: %w", lower.Name, err)
			}
			if tree == "" {
				return nil
			}
			if same[i], err = identical(ctx, r, tree, a.Tree); err != nil {
				return fmt.Errorf("compare %s: %w", a.Version, err)
			}
			trees[i] = tree
			return nil
		})
	}
	if err := each.Wait(); err != nil {
		return out, err
	}
	for i, a := range versions {
		tree := trees[i]
		switch {
		case tree == "":
		case !same[i]:
			out.skipped = append(out.skipped, Refusal{Version: a.Version, Reason: fmt.Sprintf(
				"shadowed: the %s copy of %s (tree %s) differs from the one #%d merged into %s (tree %s), so it is not removed "+
					"automatically; it is invisible while %s holds the version: remove it by hand, or publish the change as a new version",
				lower.Name, a.Version, policy.ShortSHA(tree), n, higher, policy.ShortSHA(a.Tree), higher)})
		default:
			out.remove = append(out.remove, removal{Version: a.Version, Tree: tree, Higher: higher})
		}
	}
	return out, nil
}

// existingRemoval describes a removal PR found on the deterministic branch: what its marker says it removes.
func existingRemoval(ctx context.Context, channel string, pr *github.PullRequest, key seal.Key) FollowUpResult {
	res := FollowUpResult{Channel: channel, PR: prRef(pr), Open: pr.GetState() == "open"}
	if m, ok := ParseMarker(ctx, pr, key); ok {
		for _, v := range m.Versions {
			res.Removed = append(res.Removed, commandparse.VersionRef{Package: v.Package, Version: v.Version})
		}
	}
	return res
}

// coversAny reports whether the open removal PR from branch covers one of the versions.
func coversAny(covered map[commandparse.VersionRef]string, remove []removal, branch string) bool {
	for _, rm := range remove {
		if covered[rm.Version] == branch {
			return true
		}
	}
	return false
}

// HandleMerged is the removal follow-up of a PR that just merged into base: nothing when base is no channel
// branch, else FollowUpMerged. Exactly once does not rest on this process: the removal branch name is
// deterministic (GitHub creates a ref once, so another replica or the reconciler, which runs this same
// follow-up for the merge, finds it instead of opening a second PR) and a duplicate note is deleted by whoever
// posted it second. The per-PR lock only spares the API calls of two workers of this process handling the
// same merge at once (GitHub's "Redeliver" while the first runs).
func (s *Service) HandleMerged(ctx context.Context, repo Repo, merged *github.PullRequest) error {
	unlock := s.followUpLocks.Lock(fmt.Sprintf("%s#%d", repo.fullName(), merged.GetNumber()))
	defer unlock()
	if _, ok := repo.config().ChannelByBranch(merged.GetBase().GetRef()); !ok {
		return nil
	}
	results, err := s.FollowUpMerged(ctx, repo, merged)
	log := zerolog.Ctx(ctx)
	for _, r := range results {
		log.Info().Str("channel", r.Channel).Int("removal_pr", r.PR.Number).Bool("created", r.Created).
			Int("removed", len(r.Removed)).Int("skipped", len(r.Skipped)).Msg("removal follow-up")
	}
	if err != nil {
		return fmt.Errorf("removal follow-up of #%d: %w", merged.GetNumber(), err)
	}
	return nil
}

// FollowUpMerged runs the removal follow-up of a merged PR (FollowUp) and then tells the PR what became of
// the lower copies (NoteFollowUp). The merge event and the reconciler both call it, so that they converge on
// the same removal branch and the same note whichever runs first, on whichever replica.
func (s *Service) FollowUpMerged(ctx context.Context, repo Repo, merged *github.PullRequest) ([]FollowUpResult, error) {
	results, err := s.FollowUp(ctx, repo, merged)
	if err != nil {
		return results, err
	}
	return results, s.NoteFollowUp(ctx, repo, merged.GetNumber(), FollowUpNote(results, merged.GetNumber(), s.markerKey(repo)))
}

// NoteFollowUp posts note (FollowUpNote) on merged PR number once, recognised by its marker among the bot's
// comments: a redelivery, a restart or the reconciler finds it and posts nothing. Two replicas may both find
// none and both post, and a post whose answer was lost may land late; the writer (botcomment) keeps the
// earliest note (lowest ID, GitHub's IDs only grow) and deletes the later ones it sees, so exactly one stays
// whatever the order.
func (s *Service) NoteFollowUp(ctx context.Context, repo Repo, number int, note string) error {
	if note == "" || s.BotLogin == nil {
		return nil
	}
	bot, err := s.BotLogin(ctx)
	if err != nil || bot == "" {
		return fmt.Errorf("follow-up note on #%d: the App's bot login is unknown, so an existing note cannot be told "+
			"from a forged one; nothing posted, the next event or reconcile run tries again: %w", number, err)
	}
	thread := noteThread{repo: repo, number: number, bot: bot, key: s.markerKey(repo)}
	notes, err := thread.Marked(ctx)
	if err != nil {
		return err
	}
	if len(notes) > 0 {
		// Posted already; a replica stopped between its post and its look for duplicates may have left one.
		return botcomment.DropLater(ctx, thread, notes)
	}
	w := s.Notes
	w.Fit = FitComment
	if err := w.Post(ctx, thread, note); err != nil {
		return fmt.Errorf("post the follow-up note on #%d: %w", number, err)
	}
	return nil
}

// noteThread is merged PR number's follow-up notes: the bot's comments holding the note marker sealed under key.
type noteThread struct {
	repo   Repo
	number int
	bot    string
	key    seal.Key
}

func (t noteThread) Marked(ctx context.Context) ([]botcomment.Comment, error) {
	comments, err := t.repo.Client.IssueComments(ctx, t.repo.Owner, t.repo.Name, t.number)
	if err != nil {
		return nil, fmt.Errorf("look for the follow-up note on #%d: %w", t.number, err)
	}
	var out []botcomment.Comment
	for _, c := range comments {
		if IsFollowUpNote(ctx, c, t.bot, t.number, t.key) {
			out = append(out, botcomment.Comment{ID: c.GetID(), Body: c.GetBody()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (t noteThread) Create(ctx context.Context, body string) error {
	return t.repo.Client.CreateComment(ctx, t.repo.Owner, t.repo.Name, t.number, body)
}

func (t noteThread) Delete(ctx context.Context, id int64) error {
	// GitHub interface: a comment already gone (another replica deleted it) is no error.
	if err := t.repo.Client.DeleteComment(ctx, t.repo.Owner, t.repo.Name, id); err != nil {
		return fmt.Errorf("delete follow-up note %d on #%d: %w", id, t.number, err)
	}
	return nil
}

// removal is a version to delete from a lower channel, present identically in Higher.
type removal struct {
	Version commandparse.VersionRef
	Tree    string
	Higher  string
}

func refsOf(rs []removal) []commandparse.VersionRef {
	out := make([]commandparse.VersionRef, len(rs))
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
	if err := labelRemoval(ctx, repo, pr); err != nil {
		return res, err
	}
	if created {
		older, shared, err := s.yieldToOlderRemoval(ctx, repo, lh.Channel.Branch, pr, res.Removed)
		if err != nil {
			return res, err
		}
		if older != nil {
			// What ours removed beyond the shared versions is left to the next reconcile run.
			pr, created, res.Removed = older, false, shared
		}
	}
	res.PR, res.Created, res.Open = prRef(pr), created, true
	zerolog.Ctx(ctx).Info().Str("repo", repo.fullName()).Str("channel", lh.Channel.Name).Int("pr", pr.GetNumber()).
		Str("versions", listRefs(res.Removed)).Bool("created", created).Msg("removal PR")
	return res, nil
}

// labelRemoval makes sure an open removal PR carries RemovalLabel. A PR found rather than opened needs it
// too: the call that opened it may have lost GitHub's answer, or failed to label it, before this one came.
func labelRemoval(ctx context.Context, repo Repo, pr *github.PullRequest) error {
	if pr.GetState() != "open" {
		return nil
	}
	for _, l := range pr.Labels {
		if l.GetName() == RemovalLabel {
			return nil
		}
	}
	if err := repo.Client.AddLabels(ctx, repo.Owner, repo.Name, pr.GetNumber(), RemovalLabel); err != nil {
		return fmt.Errorf("label #%d %s: %w", pr.GetNumber(), RemovalLabel, err)
	}
	return nil
}
