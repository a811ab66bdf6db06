// Package repoconfig reads a storage repository's own configuration, .github/storagebot.yml: its channels
// (lowest to highest), per-rule overrides of the policy defaults, command permissions, title handling,
// auto-merge of removal PRs, distributions and the reconcile interval.
//
// The file is always read from the repository's default branch (docs/architecture.md §5). An absent file means Default();
// an invalid one is reported with file, line, column and field, and nothing is evaluated.
package repoconfig

import (
	"time"

	"github.com/storagebot/storagebot/policy"
)

// Path is where the configuration lives in a storage repository.
const Path = ".github/storagebot.yml"

// Config is a storage repository's configuration with every default filled in.
type Config struct {
	// Channels lists the channels from lowest (snapshot) to highest (production).
	Channels []Channel
	// Rules holds every rule's setting by channel name: the defaults for the channel's position with the
	// file's overrides merged in.
	Rules map[string]policy.Rules
	// FixTitles makes the bot prefix PR titles with "[<branch>]" instead of failing title-prefix.
	FixTitles bool
	// AutoMergeRemovals makes the bot merge its removal follow-up PRs once their checks pass.
	AutoMergeRemovals bool
	// Commands holds the minimum repository permission for each slash command.
	Commands Commands
	// Exceptions configures who may grant exceptions with /allow.
	Exceptions ExceptionsConfig
	// Distributions lists what to rebuild and roll out after a channel changes, bases before dependents;
	// empty (the default) disables rollout.
	Distributions []Distribution
	// Reconcile configures the periodic reconciliation.
	Reconcile Reconcile
	// Dashboard keeps the "Storage dashboard" issue up to date (default true; false opts out).
	Dashboard bool
}

// Channel is one channel and the branch that holds it.
type Channel struct {
	Name   string
	Branch string
}

// Commands holds the minimum repository permission each slash command needs.
type Commands struct {
	// Promote holds the permission to promote into each channel, by target channel name. The lowest channel
	// is no promotion target and has no entry.
	Promote map[string]Permission
	Allow   Permission
	Rebuild Permission
	Recheck Permission
}

// ExceptionsConfig configures exceptions granted with /allow.
type ExceptionsConfig struct {
	// Permission is the minimum repository permission needed to grant an exception.
	Permission Permission
}

// Reconcile configures the periodic reconciliation (docs/architecture.md §6).
type Reconcile struct {
	Interval time.Duration
}

// DefaultReconcileInterval is how often the reconciler runs unless configured otherwise.
const DefaultReconcileInterval = 10 * time.Minute

// MinReconcileInterval is the shortest reconcile interval accepted, to protect the API rate limit.
const MinReconcileInterval = time.Minute

// Default returns the built-in configuration: channels snapshot, staging and production on branches of the
// same names, with the built-in defaults for rules and permissions and no distributions.
func Default() *Config {
	return withDefaults([]Channel{
		{Name: "snapshot", Branch: "snapshot"},
		{Name: "staging", Branch: "staging"},
		{Name: "production", Branch: "production"},
	})
}

// withDefaults returns a configuration for channels with every other setting at its default.
func withDefaults(channels []Channel) *Config {
	c := &Config{
		Channels:   channels,
		Rules:      make(map[string]policy.Rules, len(channels)),
		Commands:   Commands{Promote: map[string]Permission{}, Allow: Maintain, Rebuild: Maintain, Recheck: Triage},
		Exceptions: ExceptionsConfig{Permission: Maintain},
		Reconcile:  Reconcile{Interval: DefaultReconcileInterval},
		Dashboard:  true,
	}
	for i, ch := range channels {
		c.Rules[ch.Name] = policy.DefaultRules(i, len(channels))
		switch {
		case i == 0:
			// Nothing is below the lowest channel, so nothing is promoted into it.
		case i == len(channels)-1:
			c.Commands.Promote[ch.Name] = Maintain
		default:
			c.Commands.Promote[ch.Name] = Write
		}
	}
	return c
}

// ChannelNames returns the channel names from lowest to highest, as policy.Input.Channels wants them.
func (c *Config) ChannelNames() []string {
	names := make([]string, len(c.Channels))
	for i, ch := range c.Channels {
		names[i] = ch.Name
	}
	return names
}

// ChannelByBranch returns the channel held by branch.
func (c *Config) ChannelByBranch(branch string) (Channel, bool) {
	for _, ch := range c.Channels {
		if ch.Branch == branch {
			return ch, true
		}
	}
	return Channel{}, false
}

// ChannelByName returns the channel called name.
func (c *Config) ChannelByName(name string) (Channel, bool) {
	for _, ch := range c.Channels {
		if ch.Name == name {
			return ch, true
		}
	}
	return Channel{}, false
}

// Position returns the channel's position, 0 being the lowest; -1 when there is no such channel.
func (c *Config) Position(name string) int {
	for i, ch := range c.Channels {
		if ch.Name == name {
			return i
		}
	}
	return -1
}

// RulesFor returns a copy of the rules of a channel; nil when there is no such channel.
func (c *Config) RulesFor(channel string) policy.Rules {
	r, ok := c.Rules[channel]
	if !ok {
		return nil
	}
	return r.Clone()
}

// Above returns the channel right above channel: the default target of a promotion from it.
func (c *Config) Above(channel string) (Channel, bool) {
	i := c.Position(channel)
	if i < 0 || i+1 >= len(c.Channels) {
		return Channel{}, false
	}
	return c.Channels[i+1], true
}

// Below returns the channels lower than channel, nearest first.
func (c *Config) Below(channel string) []Channel {
	i := c.Position(channel)
	var out []Channel
	for j := i - 1; j >= 0; j-- {
		out = append(out, c.Channels[j])
	}
	return out
}

// Higher returns the channels higher than channel, nearest first.
func (c *Config) Higher(channel string) []Channel {
	i := c.Position(channel)
	if i < 0 {
		return nil
	}
	return append([]Channel(nil), c.Channels[i+1:]...)
}

// PromotePermission returns the permission needed to promote into target; false when target is not a
// promotion target (unknown, or the lowest channel).
func (c *Config) PromotePermission(target string) (Permission, bool) {
	p, ok := c.Commands.Promote[target]
	return p, ok
}
