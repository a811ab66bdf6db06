// Package commandrun runs the slash commands of one issue or PR comment: it reacts 👀 on receipt, checks the
// commenter's repository permission per command and target channel, performs each command, and answers
// with one reply that quotes every command and gives its result or a precise refusal.
package commandrun

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/botcomment"
	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/exceptions"
	"github.com/storagebot/storagebot/internal/prcheck"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/policy"
)

// GitHub is what the executor calls on GitHub: githubapi.Client in production, a fake in unit tests. It
// includes the check service's calls, since /recheck and /allow run the check with it.
type GitHub interface {
	prcheck.GitHub
	promotion.GitHub
	repoctx.ConfigSource
	ReactToComment(ctx context.Context, owner, name string, commentID int64, content string) error
	CreateComment(ctx context.Context, owner, name string, number int, body string) error
	// DeleteComment deletes a comment; one already gone is no error.
	DeleteComment(ctx context.Context, owner, name string, id int64) error
	PullRequest(ctx context.Context, owner, name string, number int) (*github.PullRequest, error)
	Permission(ctx context.Context, owner, name, user string) (repoconfig.Permission, error)
	// GoGitHub is the client the rollout service writes with (/rebuild); nil in unit tests.
	GoGitHub() *github.Client
}

// Checks is what the executor asks of the check service (prcheck.Service).
type Checks interface {
	CheckPR(ctx context.Context, gh prcheck.GitHub, repo repoctx.Repo, pr *github.PullRequest) (prcheck.Outcome, error)
	ChangeOf(ctx context.Context, gh prcheck.GitHub, repo repoctx.Repo, pr *github.PullRequest) (prcheck.Change, bool, error)
}

// Promotions is what the executor asks of the promotion service (promotion.Service).
type Promotions interface {
	Promote(ctx context.Context, repo promotion.Repo, req promotion.PromoteRequest) (promotion.PromoteResult, error)
	AddedBy(ctx context.Context, repo promotion.Repo, pr *github.PullRequest) ([]commandparse.VersionRef, error)
}

// Executor runs commandparse. Safe for concurrent use.
type Executor struct {
	Checks     Checks
	Promotions Promotions
	// Seal signs the exceptions marker of each /allow reply and the reply marker naming the comment answered;
	// the check trusts only markers it verifies.
	Seal seal.Key
	// BotLogin returns the App's bot login: only its comments are replies. nil: a redelivered comment cannot
	// be recognised and may be answered twice.
	BotLogin func(context.Context) (string, error)
	// Rollouts starts distribution rebuilds; nil when rollout is not wired (then /rebuild says so).
	Rollouts Rebuilder
	// Replies posts each reply once, also when GitHub applies a post whose answer was lost late.
	Replies botcomment.Writer
}

// Rebuilder starts a distribution rebuild and returns the reply for /rebuild.
type Rebuilder interface {
	Rebuild(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config, distribution, fallbackBranch string) string
}

// comment is what one comment's commands share: who wrote it where, and what was looked up once.
type comment struct {
	gh         GitHub
	repo       repoctx.Repo
	number     int
	isPR       bool
	user       string
	permission repoconfig.Permission
	cfg        *repoconfig.Config
	pr         *github.PullRequest // fetched on first use
	granted    []policy.Exception  // recorded in the reply's marker
	recheck    bool                // re-run the check after replying (exceptions changed)
	showHelp   bool
	// commentID is the comment whose commands run; the reply carries it in a sealed marker so a redelivery,
	// or the same delivery handled by two replicas, is answered once.
	commentID int64
	bot       string   // the App's bot login: only its comments are replies
	replyKey  seal.Key // seals the reply marker to this repository and issue
	writer    botcomment.Writer
}

// Handle runs the commands in a newly created comment. Edited comments, and comments by bots (this one
// included), never run anything. The repository context (its configuration) is loaded here, once, and only
// when the comment holds a command: most comments hold none.
func (e *Executor) Handle(ctx context.Context, gh GitHub, ev *github.IssueCommentEvent) error {
	if ev.GetAction() != "created" {
		return nil
	}
	author := ev.GetComment().GetUser()
	if author.GetType() == "Bot" || strings.HasSuffix(author.GetLogin(), "[bot]") {
		return nil
	}
	cmds, parseErr := commandparse.Parse(ev.GetComment().GetBody())
	if parseErr == nil && len(cmds) == 0 {
		return nil
	}
	c := &comment{
		gh:     gh,
		repo:   repoctx.Repo{Owner: ev.GetRepo().GetOwner().GetLogin(), Name: ev.GetRepo().GetName(), DefaultBranch: ev.GetRepo().GetDefaultBranch()},
		number: ev.GetIssue().GetNumber(), isPR: ev.GetIssue().IsPullRequest(),
		user: author.GetLogin(), commentID: ev.GetComment().GetID(), writer: e.Replies,
	}
	log := zerolog.Ctx(ctx).With().Str("user", c.user).Int("issue", c.number).Int("commands", len(cmds)).Logger()
	ctx = log.WithContext(ctx)
	c.replyKey = e.Seal.For("reply", c.repo.FullName(), fmt.Sprintf("#%d", c.number))
	// Without the bot login no earlier reply can be recognised: the commands still run and are answered (a
	// failure to learn it is reported by the commands that need it), only a redelivery may be answered twice.
	if e.BotLogin != nil {
		bot, err := e.BotLogin(ctx)
		if err != nil {
			log.Warn().Err(err).Msg("bot login unknown: a repeated delivery of this comment cannot be recognised")
		}
		c.bot = bot
	}
	// A redelivery (GitHub's button, or one delivery handled by both replicas) finds the reply already there.
	if id, err := c.earliestReply(ctx); err != nil {
		return err
	} else if id != 0 {
		log.Info().Int64("reply", id).Msg("comment already answered; commands not run again")
		// A replica stopped between its reply and its look for duplicates may have left one.
		return c.dropLaterReplies(ctx)
	}
	if err := gh.ReactToComment(ctx, c.repo.Owner, c.repo.Name, ev.GetComment().GetID(), "eyes"); err != nil {
		log.Warn().Err(err).Msg("could not react to the comment; running its commands anyway")
	}
	if errors.Is(parseErr, commandparse.ErrTooMany) {
		return c.reply(ctx, fmt.Sprintf("❌ This comment has more than %d commands, so none of them ran. Split them over several comments.", commandparse.MaxCommands))
	}
	if parseErr != nil {
		return c.reply(ctx, "❌ "+parseErr.Error()+"\n\n"+commandparse.HelpText())
	}

	var err error
	if c.repo, err = repoctx.Load(ctx, gh, ev.GetRepo()); err != nil {
		return c.replyNothingRan(ctx, "read the repository configuration", err)
	}
	if c.repo.ConfigErr != nil {
		return c.reply(ctx, fmt.Sprintf("❌ No command ran: the repository configuration is invalid.\n\n```\n%s\n```\n\nFix `%s` on the default branch, then comment again.", c.repo.ConfigErr, repoconfig.Path))
	}
	c.cfg = c.repo.Config
	if c.permission, err = gh.Permission(ctx, c.repo.Owner, c.repo.Name, c.user); err != nil {
		return c.replyNothingRan(ctx, "read @"+c.user+"'s repository permission", err)
	}

	sections := make([]string, 0, len(cmds))
	for _, cmd := range cmds {
		result := e.run(ctx, c, cmd)
		log.Info().Str("command", string(cmd.Name)).Str("raw", cmd.Raw).Str("result", firstLine(result)).Msg("command handled")
		sections = append(sections, "> "+cmd.Raw+"\n\n"+result)
	}
	body := strings.Join(sections, "\n\n")
	if c.showHelp {
		body += "\n\n---\n" + commandparse.HelpText()
	}
	if m := exceptions.Marker(c.granted, exceptions.Key(e.Seal, c.repo.FullName(), c.number)); m != "" {
		body += "\n\n" + m
	}
	if err := c.reply(ctx, body); err != nil {
		return err
	}
	if c.recheck {
		pr, err := c.pullRequest(ctx)
		if err != nil {
			return err
		}
		if _, err := e.Checks.CheckPR(ctx, c.gh, c.repo, pr); err != nil {
			return fmt.Errorf("re-run the check after /allow: %w", err)
		}
	}
	return nil
}

// replyNothingRan answers a comment whose commands could not start because GitHub failed to tell what they
// need: neither GitHub nor the reconciler would ever run them again, so without a reply the author would wait
// for nothing. The reply is best effort (GitHub may still be failing); the original error is returned either
// way so the delivery is logged as failed.
func (c *comment) replyNothingRan(ctx context.Context, what string, cause error) error {
	body := fmt.Sprintf("❌ No command ran: storagebot could not %s from GitHub (%s). Nothing was changed: "+
		"comment the command again to retry.", what, firstLine(cause.Error()))
	if err := c.reply(ctx, body); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// run performs one command and returns the markdown result.
func (e *Executor) run(ctx context.Context, c *comment, cmd commandparse.Command) string {
	if spec, ok := commandparse.SpecFor(cmd.Name); ok && spec.Unavailable {
		// Whatever its arguments: saying it is malformed would suggest a well-formed one does something.
		return fmt.Sprintf("❌ `/%s` is not available yet in this storagebot version, so nothing was done. "+
			"Comment `/help` for the commands you can use.", cmd.Name)
	}
	if cmd.Err != nil {
		c.showHelp = true
		return "❌ " + cmd.Err.Error() + " — see the commands below."
	}
	var result string
	var err error
	switch cmd.Name {
	case commandparse.Help:
		c.showHelp = true
		return "ℹ️ The commands are listed below."
	case commandparse.Recheck:
		result, err = e.recheck(ctx, c)
	case commandparse.Promote:
		result, err = e.promote(ctx, c, cmd)
	case commandparse.Allow:
		result, err = e.allow(ctx, c, cmd)
	case commandparse.Rebuild:
		result = e.rebuild(ctx, c, cmd)
	default:
		result = fmt.Sprintf("❌ `/%s` is not handled by this storagebot.", cmd.Name)
	}
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Str("command", cmd.Raw).Msg("command failed")
		return fmt.Sprintf("❌ Failed: %s. Nothing is left half done: comment the command again to retry.", err)
	}
	return result
}

// refuse formats a permission refusal naming what was needed and what the user has.
func (c *comment) refuse(what string, need repoconfig.Permission) string {
	return fmt.Sprintf("❌ Not permitted: %s needs the `%s` repository permission; @%s has `%s`.", what, need, c.user, c.permission)
}

func (e *Executor) recheck(ctx context.Context, c *comment) (string, error) {
	if need := c.cfg.Commands.Recheck; !c.permission.Meets(need) {
		return c.refuse("`/recheck`", need), nil
	}
	if !c.isPR {
		return "❌ `/recheck` works on pull requests only.", nil
	}
	pr, err := c.pullRequest(ctx)
	if err != nil {
		return "", err
	}
	out, err := e.Checks.CheckPR(ctx, c.gh, c.repo, pr)
	if err != nil {
		return "", err
	}
	if out.Skipped {
		return fmt.Sprintf("ℹ️ `%s` is no channel branch, so `%s` does not run here.", pr.GetBase().GetRef(), policy.CheckName), nil
	}
	return fmt.Sprintf("✅ `%s` ran again on %s: **%s** (%d findings).", policy.CheckName, policy.ShortSHA(pr.GetHead().GetSHA()), out.Conclusion, len(out.Findings)), nil
}

func (e *Executor) rebuild(ctx context.Context, c *comment, cmd commandparse.Command) string {
	if need := c.cfg.Commands.Rebuild; !c.permission.Meets(need) {
		return c.refuse("`/rebuild`", need)
	}
	if e.Rollouts == nil {
		return "❌ Not done: this storagebot runs without rollout, so nothing was rebuilt. Rebuild the distribution with its workflow by hand."
	}
	var base string
	if c.isPR {
		pr, err := c.pullRequest(ctx)
		if err != nil {
			return fmt.Sprintf("❌ Could not read this pull request to find its distribution: %v. Name it: `/rebuild <distribution>`.", err)
		}
		base = pr.GetBase().GetRef()
	}
	repo := &github.Repository{
		Owner: &github.User{Login: github.String(c.repo.Owner)}, Name: github.String(c.repo.Name),
		FullName: github.String(c.repo.FullName()), DefaultBranch: github.String(c.repo.DefaultBranch),
	}
	return e.Rollouts.Rebuild(ctx, c.gh.GoGitHub(), repo, c.cfg, cmd.Target, base)
}

func (e *Executor) promote(ctx context.Context, c *comment, cmd commandparse.Command) (string, error) {
	versions := cmd.Versions
	if len(versions) == 0 {
		if !c.isPR {
			return "❌ `/promote` without versions promotes what a merged pull request added; on an issue, name the versions: `/promote <name>@<version>`.", nil
		}
		pr, err := c.pullRequest(ctx)
		if err != nil {
			return "", err
		}
		if !pr.GetMerged() {
			return "❌ `/promote` without versions works on a merged pull request; this one is not merged. Name the versions, or comment again once it is merged.", nil
		}
		if versions, err = e.Promotions.AddedBy(ctx, c.promotionRepo(), pr); err != nil {
			return "", err
		}
		if len(versions) == 0 {
			return "❌ This pull request added no package version, so there is nothing to promote.", nil
		}
	}
	res, err := e.Promotions.Promote(ctx, c.promotionRepo(), promotion.PromoteRequest{
		Versions: versions, Target: cmd.Target, RequestedBy: c.user, FromPR: c.number,
		Authorize: func(target string) error {
			need, ok := c.cfg.PromotePermission(target)
			if !ok {
				return fmt.Errorf("`%s` is no promotion target", target)
			}
			if !c.permission.Meets(need) {
				return fmt.Errorf("promoting to `%s` needs the `%s` repository permission; @%s has `%s`", target, need, c.user, c.permission)
			}
			return nil
		},
	})
	if err != nil {
		var denied *promotion.NotAuthorizedError
		if errors.As(err, &denied) {
			return "❌ Not permitted: " + denied.Reason + ".", nil
		}
		return "", err
	}
	if len(res.Refusals) > 0 {
		var b strings.Builder
		b.WriteString("❌ Nothing was promoted:\n")
		for _, r := range res.Refusals {
			fmt.Fprintf(&b, "- `%s`: %s\n", r.Version, r.Reason)
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
	verb := "Opened"
	if res.Reused {
		verb = "Found the existing"
	}
	return fmt.Sprintf("✅ %s promotion PR #%d to `%s`: %s (from `%s`, branch `%s`).", verb, res.PR.Number, res.Target,
		versionList(versions), res.Source, res.PR.Branch), nil
}

func (e *Executor) allow(ctx context.Context, c *comment, cmd commandparse.Command) (string, error) {
	need := c.cfg.Commands.Allow
	if c.cfg.Exceptions.Permission.Meets(need) {
		need = c.cfg.Exceptions.Permission // the stricter of the two settings
	}
	if !c.permission.Meets(need) {
		return c.refuse("`/allow`", need), nil
	}
	if !c.isPR {
		return "❌ `/allow` works on pull requests only: an exception binds to the versions a PR changes.", nil
	}
	rule := policy.RuleID(cmd.Rule)
	if !policy.KnownRule(rule) {
		return fmt.Sprintf("❌ `%s` is no rule. Rules: %s.", cmd.Rule, ruleList()), nil
	}
	pr, err := c.pullRequest(ctx)
	if err != nil {
		return "", err
	}
	cfg := c.cfg
	change, ok, err := e.Checks.ChangeOf(ctx, c.gh, c.repo, pr)
	channel, input := change.Channel, change.Input
	if err != nil {
		return "", err
	}
	if !ok {
		return fmt.Sprintf("❌ `%s` is no channel branch: nothing to allow.", pr.GetBase().GetRef()), nil
	}
	if setting := cfg.RulesFor(channel.Name)[rule]; !setting.Exceptions {
		return fmt.Sprintf("❌ `%s` takes no exceptions in `%s`: the channel's rules (`%s` on the default branch, else the built-in defaults) allow none, and no comment can change that.", rule, channel.Name, repoconfig.Path), nil
	}
	var granted []policy.Exception
	for _, ref := range cmd.Versions {
		matched := 0
		for _, ch := range input.Changes {
			if (ref.Package == commandparse.Wildcard || ref.Package == ch.Package) && (ref.Version == commandparse.Wildcard || ref.Version == ch.Version) {
				granted = append(granted, policy.Exception{Rule: rule, Package: ch.Package, Version: ch.Version, TreeSHA: ch.Tree, By: c.user, Reason: cmd.Reason})
				matched++
			}
		}
		if matched == 0 {
			return fmt.Sprintf("❌ `%s` matches no version this pull request changes; nothing was allowed.", ref), nil
		}
	}
	c.granted = append(c.granted, granted...)
	c.recheck = true
	var names []string
	for _, g := range granted {
		names = append(names, fmt.Sprintf("`%s@%s` (tree %s)", g.Package, g.Version, policy.ShortSHA(g.TreeSHA)))
	}
	return fmt.Sprintf("✅ Allowed `%s` for %s, by @%s: %s\nThe exception lapses if the content changes. `%s` runs again now.",
		rule, strings.Join(names, ", "), c.user, cmd.Reason, policy.CheckName), nil
}

func (c *comment) pullRequest(ctx context.Context) (*github.PullRequest, error) {
	if c.pr != nil {
		return c.pr, nil
	}
	pr, err := c.gh.PullRequest(ctx, c.repo.Owner, c.repo.Name, c.number)
	if err != nil {
		return nil, fmt.Errorf("read PR #%d: %w", c.number, err)
	}
	c.pr = pr
	return pr, nil
}

func (c *comment) promotionRepo() promotion.Repo {
	return promotion.Repo{Client: c.gh, Owner: c.repo.Owner, Name: c.repo.Name, Config: c.cfg}
}

func (c *comment) reply(ctx context.Context, body string) error {
	// GitHub refuses a comment over 65,536 characters: a long reply is shortened, its records kept whole.
	fitted, err := promotion.FitComment(body + "\n\n" + c.replyMarker())
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Int("characters", len(body)).Msg("reply too long for GitHub even shortened; its records are not posted")
		c.granted, c.recheck = nil, false
		fitted = "❌ Nothing was recorded: this reply's records (the exceptions granted) would pass GitHub's limit of " +
			fmt.Sprint(promotion.MaxBodyLength) + " characters for one comment. Nothing was allowed: allow fewer versions per comment.\n\n" + c.replyMarker()
	}
	// Two replicas handling the same comment at once both found no reply and both post one; a post whose
	// answer was lost may land late. The writer keeps the earliest reply and deletes any later one it sees,
	// and watches an unanswered post until it lands or cannot any more.
	if c.bot == "" {
		// No reply can be recognised, so none can be watched for or told from a duplicate: post once.
		if err := c.gh.CreateComment(ctx, c.repo.Owner, c.repo.Name, c.number, fitted); err != nil {
			return fmt.Errorf("reply on #%d: %w", c.number, err)
		}
		return nil
	}
	w := c.writer
	w.Fit = promotion.FitComment
	if err := w.Post(ctx, replyThread{c}, fitted); err != nil {
		return fmt.Errorf("reply on #%d: %w", c.number, err)
	}
	return nil
}

// dropLaterReplies deletes every reply to this comment but the earliest.
func (c *comment) dropLaterReplies(ctx context.Context) error {
	replies, err := c.replies(ctx)
	if err != nil {
		return err
	}
	return botcomment.DropLater(ctx, replyThread{c}, replies)
}

// replyThread is the comment's issue as the reply writer sees it: the replies to this comment only.
type replyThread struct{ c *comment }

func (t replyThread) Marked(ctx context.Context) ([]botcomment.Comment, error) {
	return t.c.replies(ctx)
}

func (t replyThread) Create(ctx context.Context, body string) error {
	return t.c.gh.CreateComment(ctx, t.c.repo.Owner, t.c.repo.Name, t.c.number, body)
}

func (t replyThread) Delete(ctx context.Context, id int64) error {
	return t.c.gh.DeleteComment(ctx, t.c.repo.Owner, t.c.repo.Name, id)
}

// replyMarker is the sealed record, hidden in the reply, of the comment it answers. Anyone with write access
// can edit the bot's comments, so an unsealed marker could silence a command; a copy of this one names only
// its own comment.
func (c *comment) replyMarker() string {
	id := fmt.Sprint(c.commentID)
	return "<!-- storagebot:reply " + id + " " + c.replyKey.Sign([]byte(id)) + " -->"
}

// earliestReply returns the ID of the bot's oldest reply to this comment, 0 when there is none.
func (c *comment) earliestReply(ctx context.Context) (int64, error) {
	replies, err := c.replies(ctx)
	if err != nil || len(replies) == 0 {
		return 0, err
	}
	return replies[0].ID, nil
}

// replies lists the bot's comments on the issue carrying this comment's reply marker, oldest first. Without
// the bot login none can be told apart from a forgery, so none are listed.
func (c *comment) replies(ctx context.Context) ([]botcomment.Comment, error) {
	if c.bot == "" {
		return nil, nil
	}
	marker := c.replyMarker()
	all, err := c.gh.IssueComments(ctx, c.repo.Owner, c.repo.Name, c.number)
	if err != nil {
		return nil, fmt.Errorf("look for replies to comment %d on #%d: %w", c.commentID, c.number, err)
	}
	var out []botcomment.Comment
	for _, cm := range all {
		if cm.GetUser().GetLogin() == c.bot && strings.Contains(cm.GetBody(), marker) {
			out = append(out, botcomment.Comment{ID: cm.GetID(), Body: cm.GetBody()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func versionList(vs []commandparse.VersionRef) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = "`" + v.String() + "`"
	}
	return strings.Join(parts, ", ")
}

func ruleList() string {
	var parts []string
	for _, r := range policy.AllRules() {
		parts = append(parts, "`"+string(r)+"`")
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
