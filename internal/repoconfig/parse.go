package repoconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/storagebot/storagebot/policy"
)

// MaxSize is the largest configuration file Parse accepts.
const MaxSize = 256 << 10

// maxNodes bounds the YAML nodes of the file counted with every alias expanded, so an alias bomb is refused.
const maxNodes = 10_000

// Parse reads a configuration file. Empty input gives Default(). Errors are *Error (one problem) or Errors
// (several), each naming the line, column and field.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxSize {
		return nil, &Error{File: Path, Msg: fmt.Sprintf("the file is %d bytes, more than the %d allowed", len(data), MaxSize)}
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Default(), nil
		}
		return nil, syntaxError(err)
	}
	if n, ok := countNodes(&doc, maxNodes); !ok {
		return nil, &Error{File: Path, Line: n.Line, Column: n.Column,
			Msg: fmt.Sprintf("the document expands to more than %d YAML nodes through aliases (or an alias refers to itself)", maxNodes)}
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return Default(), nil
	}
	p := &parser{}
	cfg := p.config(root)
	if len(p.errs) == 0 {
		return cfg, nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i], p.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	if len(p.errs) == 1 {
		return nil, p.errs[0]
	}
	return nil, Errors(p.errs)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML parser error into an *Error with its line.
func syntaxError(err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: Path, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: Path, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// countNodes counts the nodes under n with aliases expanded; it returns false and the offending node when
// the count passes limit or an alias contains itself. Anchored nodes are counted once (memoised).
func countNodes(n *yaml.Node, limit int) (*yaml.Node, bool) {
	memo := map[*yaml.Node]int{}
	var bad *yaml.Node
	var count func(n *yaml.Node) int
	count = func(n *yaml.Node) int {
		if bad != nil || n == nil {
			return 0
		}
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			if c, ok := memo[n.Alias]; ok {
				if c < 0 {
					bad = n
				}
				return c
			}
			return count(n.Alias)
		}
		memo[n] = -1
		total := 1
		for _, child := range n.Content {
			total += count(child)
			if bad == nil && total > limit {
				bad = n
			}
			if bad != nil {
				return 0
			}
		}
		memo[n] = total
		return total
	}
	count(n)
	return bad, bad == nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// parser walks the YAML tree, collecting every problem it finds.
type parser struct {
	errs []*Error
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: Path, Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// join appends a key to a dotted field path.
func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// entry is one key of a mapping.
type entry struct {
	key   string
	field string
	keyNode,
	value *yaml.Node
}

// mapping returns the entries of a mapping node, reporting a node that is not a mapping, duplicate keys,
// merge keys and keys not in known (when known is non-nil).
func (p *parser) mapping(n *yaml.Node, field string, known []string) []entry {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.fail(n, field, "want a mapping of keys to values, got %s", describe(n))
		return nil
	}
	seen := map[string]bool{}
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		kf := join(field, k.Value)
		switch {
		case k.Kind != yaml.ScalarNode:
			p.fail(k, field, "keys must be plain words, got %s", describe(k))
			continue
		case k.Tag == "!!merge":
			p.fail(k, field, "merge keys (<<) are not supported; write the settings out")
			continue
		case seen[k.Value]:
			p.fail(k, kf, "duplicate key %q", k.Value)
			continue
		case known != nil && !contains(known, k.Value):
			p.fail(k, kf, "unknown key %q (want %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		seen[k.Value] = true
		out = append(out, entry{key: k.Value, field: kf, keyNode: k, value: v})
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describe names a node's kind for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// str reads a scalar as a string; null is "".
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, field, "want a string, got %s", describe(n))
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, field string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.fail(n, field, "want true or false, got %s", describe(n))
	}
	return b
}

func (p *parser) permission(n *yaml.Node, field string) (Permission, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return "", false
	}
	perm, err := ParsePermission(s)
	if err != nil {
		p.fail(n, field, "%v", err)
		return "", false
	}
	return perm, true
}

var topKeys = []string{"channels", "rules", "fix_titles", "auto_merge_removals", "commands", "exceptions",
	"distributions", "reconcile", "dashboard"}

// config parses the whole file. Channels come first: every other section refers to them.
func (p *parser) config(root *yaml.Node) *Config {
	entries := p.mapping(root, "", topKeys)
	channels := Default().Channels
	for _, e := range entries {
		if e.key == "channels" {
			channels = p.channels(e.value, e.field)
		}
	}
	cfg := withDefaults(channels)
	for _, e := range entries {
		switch e.key {
		case "rules":
			p.rules(cfg, e.value, e.field)
		case "fix_titles":
			cfg.FixTitles = p.boolean(e.value, e.field)
		case "auto_merge_removals":
			cfg.AutoMergeRemovals = p.boolean(e.value, e.field)
		case "commands":
			p.commands(cfg, e.value, e.field)
		case "exceptions":
			for _, x := range p.mapping(e.value, e.field, []string{"permission"}) {
				if perm, ok := p.permission(x.value, x.field); ok {
					cfg.Exceptions.Permission = perm
				}
			}
		case "distributions":
			cfg.Distributions = p.distributions(cfg, e.value, e.field)
		case "reconcile":
			p.reconcile(cfg, e.value, e.field)
		case "dashboard":
			cfg.Dashboard = p.boolean(e.value, e.field)
		}
	}
	return cfg
}

var channelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (p *parser) channels(n *yaml.Node, field string) []Channel {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "want a list of channels from lowest to highest, got %s", describe(n))
		return Default().Channels
	}
	if len(n.Content) == 0 {
		p.fail(n, field, "at least one channel is needed")
		return Default().Channels
	}
	var out []Channel
	names, branches := map[string]bool{}, map[string]bool{}
	for i, item := range n.Content {
		itemField := fmt.Sprintf("%s[%d]", field, i)
		var ch Channel
		var nameNode, branchNode *yaml.Node
		for _, e := range p.mapping(item, itemField, []string{"name", "branch"}) {
			s, ok := p.str(e.value, e.field)
			if !ok {
				continue
			}
			switch e.key {
			case "name":
				ch.Name, nameNode = s, e.value
			case "branch":
				ch.Branch, branchNode = s, e.value
			}
		}
		switch {
		case nameNode == nil:
			p.fail(resolve(item), itemField, "a channel needs a name")
			continue
		case !channelName.MatchString(ch.Name):
			p.fail(nameNode, itemField+".name", "invalid channel name %q (want letters, digits, '.', '_' or '-')", ch.Name)
		case names[ch.Name]:
			p.fail(nameNode, itemField+".name", "channel %q is listed twice", ch.Name)
		}
		names[ch.Name] = true
		if branchNode == nil || ch.Branch == "" {
			ch.Branch = ch.Name
			branchNode = nameNode
		}
		switch msg := checkBranch(ch.Branch); {
		case msg != "":
			p.fail(branchNode, itemField+".branch", "invalid branch %q: %s", ch.Branch, msg)
		case branches[ch.Branch]:
			p.fail(branchNode, itemField+".branch", "branch %q holds two channels", ch.Branch)
		}
		branches[ch.Branch] = true
		out = append(out, ch)
	}
	if len(out) == 0 {
		return Default().Channels
	}
	return out
}

// checkBranch returns why name is not a valid git branch name, or "".
func checkBranch(name string) string {
	switch {
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return "it must not start with '-' or '/' or end with '/'"
	case strings.HasSuffix(name, ".lock") || strings.HasSuffix(name, "."):
		return "it must not end with '.lock' or '.'"
	case strings.Contains(name, "..") || strings.Contains(name, "//") || strings.Contains(name, "@{"):
		return "it must not contain '..', '//' or '@{'"
	case strings.ContainsAny(name, " ~^:?*[\\\t\n\r"):
		return "it must not contain spaces or any of ~^:?*[\\"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "it must not contain control characters"
		}
	}
	return ""
}

func (p *parser) knownChannel(cfg *Config, n *yaml.Node, field, name string) bool {
	if cfg.Position(name) >= 0 {
		return true
	}
	p.fail(n, field, "unknown channel %q (want %s)", name, strings.Join(cfg.ChannelNames(), ", "))
	return false
}

func (p *parser) rules(cfg *Config, n *yaml.Node, field string) {
	for _, e := range p.mapping(n, field, nil) {
		rule := policy.RuleID(e.key)
		if !policy.KnownRule(rule) {
			p.fail(e.keyNode, e.field, "unknown rule %q (want %s)", e.key, ruleList())
			continue
		}
		if e.value.Kind == yaml.ScalarNode {
			// One severity for every channel.
			sev, ok := p.severity(e.value, e.field)
			if !ok {
				continue
			}
			for _, ch := range cfg.Channels {
				s := cfg.Rules[ch.Name][rule]
				s.Severity = sev
				cfg.Rules[ch.Name][rule] = s
			}
			continue
		}
		for _, c := range p.mapping(e.value, e.field, nil) {
			if !p.knownChannel(cfg, c.keyNode, c.field, c.key) {
				continue
			}
			cfg.Rules[c.key][rule] = p.setting(c.value, c.field, cfg.Rules[c.key][rule])
		}
	}
}

func ruleList() string {
	var names []string
	for _, r := range policy.AllRules() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

// setting parses a severity or {severity, exceptions}, starting from the default setting s.
func (p *parser) setting(n *yaml.Node, field string, s policy.Setting) policy.Setting {
	if n.Kind == yaml.ScalarNode {
		if sev, ok := p.severity(n, field); ok {
			s.Severity = sev
		}
		return s
	}
	for _, e := range p.mapping(n, field, []string{"severity", "exceptions"}) {
		switch e.key {
		case "severity":
			if sev, ok := p.severity(e.value, e.field); ok {
				s.Severity = sev
			}
		case "exceptions":
			s.Exceptions = p.boolean(e.value, e.field)
		}
	}
	return s
}

func (p *parser) severity(n *yaml.Node, field string) (policy.Severity, bool) {
	s, ok := p.str(n, field)
	if !ok {
		return "", false
	}
	sev := policy.Severity(s)
	if !policy.KnownSeverity(sev) {
		p.fail(n, field, "unknown severity %q (want error, warning, notice or off)", s)
		return "", false
	}
	return sev, true
}

func (p *parser) commands(cfg *Config, n *yaml.Node, field string) {
	for _, e := range p.mapping(n, field, []string{"promote", "allow", "rebuild", "recheck"}) {
		switch e.key {
		case "promote":
			p.promote(cfg, e.value, e.field)
		case "allow":
			if perm, ok := p.permission(e.value, e.field); ok {
				cfg.Commands.Allow = perm
			}
		case "rebuild":
			if perm, ok := p.permission(e.value, e.field); ok {
				cfg.Commands.Rebuild = perm
			}
		case "recheck":
			if perm, ok := p.permission(e.value, e.field); ok {
				cfg.Commands.Recheck = perm
			}
		}
	}
}

// promote parses one permission for every target, or a permission per target channel.
func (p *parser) promote(cfg *Config, n *yaml.Node, field string) {
	if n.Kind == yaml.ScalarNode {
		if perm, ok := p.permission(n, field); ok {
			for target := range cfg.Commands.Promote {
				cfg.Commands.Promote[target] = perm
			}
		}
		return
	}
	for _, e := range p.mapping(n, field, nil) {
		if !p.knownChannel(cfg, e.keyNode, e.field, e.key) {
			continue
		}
		if cfg.Position(e.key) == 0 {
			p.fail(e.keyNode, e.field, "%s is the lowest channel: nothing is promoted into it", e.key)
			continue
		}
		if perm, ok := p.permission(e.value, e.field); ok {
			cfg.Commands.Promote[e.key] = perm
		}
	}
}

func (p *parser) reconcile(cfg *Config, n *yaml.Node, field string) {
	for _, e := range p.mapping(n, field, []string{"interval"}) {
		s, ok := p.str(e.value, e.field)
		if !ok {
			continue
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			p.fail(e.value, e.field, "invalid duration %q (want e.g. 10m or 1h)", s)
		case d < MinReconcileInterval:
			p.fail(e.value, e.field, "interval %s is shorter than the minimum of %s", d, MinReconcileInterval)
		default:
			cfg.Reconcile.Interval = d
		}
	}
}

// ParseFile is Parse for a configuration read from the file name rather than from Path in the repository
// (`storagebot check --config FILE`): its errors name that file, so a person fixes the file they gave.
func ParseFile(name string, data []byte) (*Config, error) {
	cfg, err := Parse(data)
	switch e := err.(type) {
	case *Error:
		e.File = name
	case Errors:
		for _, one := range e {
			one.File = name
		}
	}
	return cfg, err
}
