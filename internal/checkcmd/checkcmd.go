// Package checkcmd implements `storagebot check`: the storage policy of the App run on a local git
// repository, for package authors and CI.
//
//	storagebot check --repo PATH --channel NAME --base REV --head REV [--ref CHANNEL=REV ...]
//	                 [--config FILE] [--title TEXT] [--format text|json]
//
// The changes are the package versions whose tree differs between merge-base(base, head) and head, judged
// against base; the other channels' state comes from their branches (refs/heads/<branch>, else
// refs/remotes/origin/<branch>) unless pinned with --ref. The repository configuration is --config, else
// .github/storagebot.yml at the repository's HEAD, else the built-in defaults.
//
// Exit status: 0 when the check passes, 1 when it fails, 2 on a usage or I/O error (with a message on stderr
// naming the bad flag, channel or revision). Scripts depend on the flags, the exit status and the JSON shape.
package checkcmd

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
	config                    string
	title                     *string
	format                    string
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
	title := &titleFlag{}
	fs.Var(title, "title", "PR title to check against the title-prefix rule")
	fs.StringVar(&o.format, "format", FormatText, "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: storagebot check --repo PATH --channel NAME --base REV --head REV [--ref CHANNEL=REV ...] [--config FILE] [--title TEXT] [--format text|json]")
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
	for _, f := range []struct{ name, v string }{{"repo", o.repo}, {"channel", o.channel}, {"base", o.base}, {"head", o.head}} {
		if f.v == "" {
			return o, usagef("missing --%s", f.name)
		}
	}
	if o.format != FormatText && o.format != FormatJSON {
		return o, usagef("--format %q: want text or json", o.format)
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
	rep, err := check(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "storagebot check:", err)
		return ExitUsage
	}
	if o.format == FormatJSON {
		err = writeJSON(stdout, rep)
	} else {
		err = writeText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "storagebot check: write report:", err)
		return ExitUsage
	}
	if rep.Conclusion == conclusionSuccess {
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
	cfg, err := loadConfig(ctx, r, o.config)
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
	base, err := r.ResolveRevision(ctx, o.base)
	if err != nil {
		return nil, usagef("--base %q: unknown revision (%v)", o.base, err)
	}
	head, err := r.ResolveRevision(ctx, o.head)
	if err != nil {
		return nil, usagef("--head %q: unknown revision (%v)", o.head, err)
	}
	others := map[string]string{}
	for _, ch := range cfg.Channels {
		if ch.Name == target.Name {
			continue
		}
		if rev, pinned := o.refs[ch.Name]; pinned {
			c, err := r.ResolveRevision(ctx, rev)
			if err != nil {
				return nil, usagef("--ref %s=%s: unknown revision (%v)", ch.Name, rev, err)
			}
			others[ch.Name] = c.SHA
			continue
		}
		c, err := r.ResolveRevision(ctx, ch.Branch)
		if err != nil {
			return nil, usagef("channel %s: branch %q not found (neither refs/heads/%[2]s nor refs/remotes/origin/%[2]s); fetch it or pin the channel with --ref %[1]s=REV",
				ch.Name, ch.Branch)
		}
		others[ch.Name] = c.SHA
	}
	res, err := storage.Gather(ctx, r, storage.Request{
		Channel:   target.Name,
		Channels:  cfg.ChannelNames(),
		Branch:    target.Branch,
		Base:      base.SHA,
		Head:      head.SHA,
		Others:    others,
		Title:     o.title,
		FixTitles: cfg.FixTitles,
	})
	if err != nil {
		return nil, fmt.Errorf("read the change %s..%s: %w", o.base, o.head, err)
	}
	findings := policy.Evaluate(res.Input, cfg.RulesFor(target.Name))
	return newReport(target.Name, res, findings), nil
}

// loadConfig reads --config, else the configuration file at HEAD, else the defaults.
func loadConfig(ctx context.Context, r storage.Reader, file string) (*repoconfig.Config, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("--config: %v", err)
		}
		cfg, err := repoconfig.Parse(data)
		if err != nil {
			return nil, usagef("--config %s: invalid configuration:\n%v", file, err)
		}
		return cfg, nil
	}
	head, err := r.ResolveRevision(ctx, "HEAD")
	if errors.Is(err, storage.ErrNotFound) {
		// An unborn HEAD (e.g. a bare mirror whose default branch was not fetched): no file to read.
		return repoconfig.Default(), nil
	}
	if err != nil {
		return nil, usagef("read %s at HEAD: %v", repoconfig.Path, err)
	}
	data, found, err := storage.ReadFile(ctx, r, head.TreeSHA, repoconfig.Path)
	if err != nil {
		return nil, usagef("read %s at HEAD: %v", repoconfig.Path, err)
	}
	if !found {
		return repoconfig.Default(), nil
	}
	cfg, err := repoconfig.Parse(data)
	if err != nil {
		return nil, usagef("invalid configuration at HEAD (pass --config FILE to use another):\n%v", err)
	}
	return cfg, nil
}
