// Package localcheck implements `storagebot check`: the storage policy of the App run on a local git
// repository, for package authors and CI.
//
//	storagebot check --repo PATH --channel NAME --base REV --head REV [--ref CHANNEL=REV ...]
//	                 [--config FILE | --config-rev REV] [--title TEXT] [--format text|json|markdown]
//	storagebot check --repo PATH [--config FILE | --config-rev REV] --list-channels
//
// The changes are the package versions whose tree differs between merge-base(base, head) and head, judged
// against base; the other channels' state comes from their branches (refs/heads/<branch>, else
// refs/remotes/origin/<branch>) unless pinned with --ref. Revisions resolve exactly as `git rev-parse`
// resolves them, and the report says which reference and commit each one resolved to. The repository
// configuration is --config, else .github/storagebot.yml at --config-rev (as the App reads it from the
// default branch), else at the repository's HEAD, else the built-in defaults. --list-channels prints the
// configuration's channels and their branches, lowest first, so a CI script fetches exactly those branches.
//
// Exit status: 0 when the check passes, 1 when it fails, 2 on a usage or I/O error (with a message on stderr
// naming the bad flag, channel or revision). Scripts depend on the flags, the exit status and the JSON shape.
package localcheck

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/storagebot/storagebot/internal/repoconfig"
	checkreport "github.com/storagebot/storagebot/internal/report"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// Exit statuses of Run.
const (
	ExitSuccess = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Output formats of --format.
const (
	FormatText = "text"
	FormatJSON = "json"
	// FormatMarkdown is the check run's summary with the revisions checked, for an Actions job summary.
	FormatMarkdown = "markdown"
)

// usageError is a problem with the command line or the repository, reported with exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// options are the parsed command-line flags.
type options struct {
	repo, channel, base, head string
	refs                      map[string]string
	config, configRev         string
	title                     *string
	format                    string
	listChannels              bool
}

// refFlags collects repeated --ref CHANNEL=REV flags.
type refFlags map[string]string

func (r refFlags) String() string {
	pairs := make([]string, 0, len(r))
	for k, v := range r {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

func (r refFlags) Set(s string) error {
	name, rev, ok := strings.Cut(s, "=")
	if !ok || name == "" || rev == "" {
		return fmt.Errorf("want CHANNEL=REV, got %q", s)
	}
	if _, dup := r[name]; dup {
		return fmt.Errorf("channel %q pinned twice", name)
	}
	r[name] = rev
	return nil
}

// titleFlag records whether --title was given at all: an empty title still fails title-prefix.
type titleFlag struct{ v *string }

func (t *titleFlag) String() string {
	if t.v == nil {
		return ""
	}
	return *t.v
}

func (t *titleFlag) Set(s string) error { t.v = &s; return nil }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{refs: map[string]string{}}
	fs := flag.NewFlagSet("storagebot check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.repo, "repo", "", "path to the storage repository (bare or with a work tree)")
	fs.StringVar(&o.channel, "channel", "", "channel the change targets (e.g. snapshot, staging, production)")
	fs.StringVar(&o.base, "base", "", "revision of the target channel the change applies to (branch, ref or SHA)")
	fs.StringVar(&o.head, "head", "", "revision holding the change (branch, ref or SHA)")
	fs.Var(refFlags(o.refs), "ref", "pin another channel's state: CHANNEL=REV (repeatable)")
	fs.StringVar(&o.config, "config", "", "repository configuration file (default: "+repoconfig.Path+" at HEAD, else built-in defaults)")
	fs.StringVar(&o.configRev, "config-rev", "", "read "+repoconfig.Path+" at this revision (e.g. origin/main, the default branch, as the App does); absent there: built-in defaults")
	fs.BoolVar(&o.listChannels, "list-channels", false, "print each channel and its branch, lowest first, and exit")
	title := &titleFlag{}
	fs.Var(title, "title", "PR title to check against the title-prefix rule")
	fs.StringVar(&o.format, "format", FormatText, "output format: text, json or markdown")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: storagebot check --repo PATH --channel NAME --base REV --head REV [--ref CHANNEL=REV ...] [--config FILE | --config-rev REV] [--title TEXT] [--format text|json|markdown]")
		fmt.Fprintln(fs.Output(), "       storagebot check --repo PATH [--config FILE | --config-rev REV] --list-channels")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, &usageError{msg: err.Error()}
	}
	o.title = title.v
	if fs.NArg() > 0 {
		return o, usagef("unexpected argument %q: every input is a flag", fs.Arg(0))
	}
	if o.config != "" && o.configRev != "" {
		return o, usagef("--config and --config-rev both given: pass one")
	}
	required := []struct{ name, v string }{{"repo", o.repo}, {"channel", o.channel}, {"base", o.base}, {"head", o.head}}
	if o.listChannels {
		required = required[:1]
	}
	for _, f := range required {
		if f.v == "" {
			return o, usagef("missing --%s", f.name)
		}
	}
	if o.format != FormatText && o.format != FormatJSON && o.format != FormatMarkdown {
		return o, usagef("--format %q: want text, json or markdown", o.format)
	}
	return o, nil
}

// Run runs `storagebot check` with args (the arguments after "check") and returns the exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitSuccess
	}
	if err != nil {
		fmt.Fprintln(stderr, "storagebot check:", err)
		return ExitUsage
	}
	if o.listChannels {
		if err := listChannels(ctx, o, stdout); err != nil {
			fmt.Fprintln(stderr, "storagebot check:", err)
			return ExitUsage
		}
		return ExitSuccess
	}
	rep, err := check(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "storagebot check:", err)
		return ExitUsage
	}
	switch o.format {
	case FormatJSON:
		err = writeJSON(stdout, rep)
	case FormatMarkdown:
		err = writeMarkdown(stdout, rep)
	default:
		err = writeText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "storagebot check: write report:", err)
		return ExitUsage
	}
	if rep.Conclusion == policy.ConclusionSuccess {
		return ExitSuccess
	}
	return ExitFailure
}

// check gathers the change and evaluates the policy on it.
func check(ctx context.Context, o options) (*report, error) {
	r, err := storage.OpenLocal(o.repo)
	if err != nil {
		return nil, usagef("--repo %s: %v", o.repo, err)
	}
	defer r.Close()
	cfg, cfgSource, err := loadConfig(ctx, r, o.config, o.configRev)
	if err != nil {
		return nil, err
	}
	target, ok := cfg.ChannelByName(o.channel)
	if !ok {
		return nil, usagef("--channel %q: unknown channel; the channels are %s", o.channel, strings.Join(cfg.ChannelNames(), ", "))
	}
	for name := range o.refs {
		if _, ok := cfg.ChannelByName(name); !ok {
			return nil, usagef("--ref %s: unknown channel %q; the channels are %s", name, name, strings.Join(cfg.ChannelNames(), ", "))
		}
		if name == target.Name {
			return nil, usagef("--ref %s: %q is the target channel, whose state is --base", name, name)
		}
	}
	base, err := resolve(ctx, r, "--base", o.base)
	if err != nil {
		return nil, err
	}
	head, err := resolve(ctx, r, "--head", o.head)
	if err != nil {
		return nil, err
	}
	others := map[string]string{}
	resolvedOthers := map[string]revisionReport{}
	for _, ch := range cfg.Channels {
		if ch.Name == target.Name {
			continue
		}
		var rev storage.Revision
		if pinned, ok := o.refs[ch.Name]; ok {
			if rev, err = resolve(ctx, r, "--ref "+ch.Name+"=", pinned); err != nil {
				return nil, err
			}
		} else if rev, err = channelBranch(ctx, r, ch.Name, ch.Branch); err != nil {
			return nil, err
		}
		others[ch.Name] = rev.Commit.SHA
		resolvedOthers[ch.Name] = newRevisionReport(rev)
	}
	res, err := storage.Gather(ctx, r, storage.Request{
		Channel:   target.Name,
		Channels:  cfg.ChannelNames(),
		Branch:    target.Branch,
		Base:      base.Commit.SHA,
		Head:      head.Commit.SHA,
		Others:    others,
		Title:     o.title,
		FixTitles: cfg.FixTitles,
	})
	if errors.Is(err, storage.ErrShallow) {
		return nil, usagef("%v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("read the change %s..%s: %w", o.base, o.head, err)
	}
	findings := policy.Evaluate(res.Input, cfg.RulesFor(target.Name))
	rep := newReport(target.Name, res, findings)
	rep.markdown = checkreport.Summary(res.Input, findings, markdownFooter)
	rep.title = checkreport.Render(res.Input, findings).Title
	rep.Resolved = resolvedReport{
		Base:      newRevisionReport(base),
		Head:      newRevisionReport(head),
		MergeBase: res.MergeBase,
		Channels:  resolvedOthers,
		Config:    cfgSource,
	}
	return rep, nil
}

// resolve resolves a revision given on the command line exactly as `git rev-parse` does. A name that only
// exists as origin's remote-tracking branch gets a hint: git does not try refs/remotes/origin/<name>.
func resolve(ctx context.Context, r *storage.LocalReader, flagName, rev string) (storage.Revision, error) {
	res, err := r.Resolve(ctx, rev)
	if err == nil {
		return res, nil
	}
	what := fmt.Sprintf("%s %q", flagName, rev)
	if strings.HasSuffix(flagName, "=") {
		what = flagName + rev
	}
	if errors.Is(err, storage.ErrShallow) {
		return res, usagef("%s: %v", what, err)
	}
	if _, found, ferr := r.Ref(ctx, "refs/remotes/origin/"+rev); ferr == nil && found {
		return res, usagef("%s: unknown revision (%v); did you mean origin/%s?", what, err, rev)
	}
	return res, usagef("%s: unknown revision (%v)", what, err)
}

// channelBranch reads another channel's state from its branch: refs/heads/<branch>, else origin's
// remote-tracking branch, which is all a CI clone has.
func channelBranch(ctx context.Context, r *storage.LocalReader, channel, branch string) (storage.Revision, error) {
	for _, name := range []string{"refs/heads/" + branch, "refs/remotes/origin/" + branch} {
		rev, found, err := r.Ref(ctx, name)
		if err != nil {
			return rev, usagef("channel %s: read %s: %v", channel, name, err)
		}
		if found {
			return rev, nil
		}
	}
	return storage.Revision{}, usagef("channel %s: branch %q not found (neither refs/heads/%[2]s nor refs/remotes/origin/%[2]s); fetch it or pin the channel with --ref %[1]s=REV",
		channel, branch)
}

// listChannels prints the configuration's channels, lowest first, one "NAME BRANCH" line each.
func listChannels(ctx context.Context, o options, stdout io.Writer) error {
	r, err := storage.OpenLocal(o.repo)
	if err != nil {
		return usagef("--repo %s: %v", o.repo, err)
	}
	defer r.Close()
	cfg, _, err := loadConfig(ctx, r, o.config, o.configRev)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, ch := range cfg.Channels {
		fmt.Fprintf(&b, "%s %s\n", ch.Name, ch.Branch)
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// loadConfig reads --config, else the configuration file at --config-rev, else at HEAD, else the defaults,
// and says which.
func loadConfig(ctx context.Context, r *storage.LocalReader, file, rev string) (*repoconfig.Config, configReport, error) {
	if file != "" {
		src := configReport{Source: "file", Path: file}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, src, usagef("--config: %v", err)
		}
		cfg, err := repoconfig.ParseFile(file, data)
		if err != nil {
			return nil, src, usagef("--config %s: invalid configuration:\n%v", file, err)
		}
		return cfg, src, nil
	}
	defaults := configReport{Source: "defaults"}
	if rev != "" {
		at, err := resolve(ctx, r, "--config-rev", rev)
		if err != nil {
			return nil, defaults, err
		}
		data, found, err := storage.ReadFile(ctx, r, at.Commit.TreeSHA, repoconfig.Path)
		if err != nil {
			return nil, defaults, usagef("read %s at %s: %v", repoconfig.Path, rev, err)
		}
		if !found {
			return repoconfig.Default(), defaults, nil
		}
		src := configReport{Source: "revision", Path: repoconfig.Path, Revision: ptr(newRevisionReport(at))}
		cfg, err := repoconfig.Parse(data)
		if err != nil {
			return nil, src, usagef("invalid configuration at --config-rev %s (commit %s):\n%v", rev, at.Commit.SHA, err)
		}
		return cfg, src, nil
	}
	head, err := r.Resolve(ctx, "HEAD")
	if errors.Is(err, storage.ErrNotFound) {
		// An unborn HEAD (e.g. a bare mirror whose default branch was not fetched): no file to read.
		return repoconfig.Default(), defaults, nil
	}
	if err != nil {
		return nil, defaults, usagef("read %s at HEAD: %v", repoconfig.Path, err)
	}
	data, found, err := storage.ReadFile(ctx, r, head.Commit.TreeSHA, repoconfig.Path)
	if err != nil {
		return nil, defaults, usagef("read %s at HEAD: %v", repoconfig.Path, err)
	}
	if !found {
		return repoconfig.Default(), defaults, nil
	}
	src := configReport{Source: "HEAD", Path: repoconfig.Path, Revision: ptr(newRevisionReport(head))}
	cfg, err := repoconfig.Parse(data)
	if err != nil {
		return nil, src, usagef("invalid configuration at HEAD (%s, commit %s; pass --config FILE to use another):\n%v", head.Ref, head.Commit.SHA, err)
	}
	return cfg, src, nil
}

func ptr[T any](v T) *T { return &v }
