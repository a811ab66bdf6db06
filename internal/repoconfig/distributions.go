package repoconfig

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Distribution is a registry distribution: an image built from one channel's branch on top of its base
// distribution's image, rolled out and verified after every change (docs/architecture.md §6).
type Distribution struct {
	// Name identifies the distribution; it is also the GitHub deployment environment and what /rebuild takes.
	Name string
	// Branch is the channel branch the distribution is built from.
	Branch string
	// Base is the name of the distribution whose image this one is built FROM; "" for the registry image.
	Base string
	// Image is the image repository the build pushes to (tags <branch> and <sha>), e.g.
	// docker.elastic.co/package-registry/distribution.
	Image string
	Build Build
	// Deploy says how a built image goes live: exactly one of Kubernetes and Workflow is set.
	Deploy Deploy
	Verify Verify
}

// Build is the GitHub Actions workflow that builds a distribution's image.
type Build struct {
	// Workflow is the workflow file name under .github/workflows (e.g. distribution.yml).
	Workflow string
	// Inputs are extra workflow_dispatch inputs, passed as given besides distribution, ref, base_image and
	// build_key.
	Inputs map[string]string
	// Timeout is how long a dispatched build may take before it counts as failed.
	Timeout time.Duration
}

// Deploy is where a distribution runs.
type Deploy struct {
	// Kubernetes restarts a Deployment and waits for it, like `kubectl rollout restart` and `rollout status`.
	Kubernetes *KubernetesTarget
	// Workflow is a deploy workflow file whose run decides the deployment's status.
	Workflow string
	// Timeout bounds the rollout (the Kubernetes wait, or the deploy run).
	Timeout time.Duration
}

// KubernetesTarget is a Deployment in a namespace.
type KubernetesTarget struct {
	Namespace  string
	Deployment string
}

// Verify checks that the registry serves what a rollout brought.
type Verify struct {
	// Registry is the registry's base URL; "" skips verification. New versions are polled at
	// <registry>/package/<name>/<version>/.
	Registry string
	// Timeout bounds the polling for one rollout.
	Timeout time.Duration
}

// Defaults for the distribution timeouts: every wait has a deadline, so nothing stays "in progress" forever.
const (
	DefaultBuildTimeout  = time.Hour
	DefaultDeployTimeout = 10 * time.Minute
	DefaultVerifyTimeout = 10 * time.Minute
)

// DistributionByName returns the distribution called name.
func (c *Config) DistributionByName(name string) (Distribution, bool) {
	for _, d := range c.Distributions {
		if d.Name == name {
			return d, true
		}
	}
	return Distribution{}, false
}

// DistributionsOnBranch returns the distributions built from branch.
func (c *Config) DistributionsOnBranch(branch string) []Distribution {
	var out []Distribution
	for _, d := range c.Distributions {
		if d.Branch == branch {
			out = append(out, d)
		}
	}
	return out
}

// Dependents returns the distributions built on name, directly or not, in dependency order.
func (c *Config) Dependents(name string) []Distribution {
	var out []Distribution
	affected := map[string]bool{name: true}
	for _, d := range c.Distributions { // Distributions is in dependency order: bases come first.
		if affected[d.Base] && d.Name != name {
			affected[d.Name] = true
			out = append(out, d)
		}
	}
	return out
}

var distributionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// distributionDraft is a distribution being parsed, with the nodes its errors point at.
type distributionDraft struct {
	d         Distribution
	field     string
	node      *yaml.Node // the list item
	baseNode  *yaml.Node // nil when base is not set
	baseSet   bool
	nameNode  *yaml.Node
	channel   int // position of the branch's channel
	branchSet bool
}

func (p *parser) distributions(cfg *Config, n *yaml.Node, field string) []Distribution {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "want a list of distributions, got %s", describe(n))
		return nil
	}
	var drafts []*distributionDraft
	for i, item := range n.Content {
		if dr := p.distribution(cfg, resolve(item), fmt.Sprintf("%s[%d]", field, i)); dr != nil {
			for _, other := range drafts {
				if other.d.Name == dr.d.Name {
					p.fail(dr.nameNode, dr.field+".name", "distribution %q is listed twice", dr.d.Name)
					dr = nil
					break
				}
			}
			if dr != nil {
				drafts = append(drafts, dr)
			}
		}
	}
	p.defaultBases(cfg, drafts)
	if !p.checkBases(drafts) {
		return nil
	}
	return dependencyOrder(drafts)
}

var distributionKeys = []string{"name", "branch", "base", "image", "build", "deploy", "verify"}

// distribution parses one list item; nil when it is unusable (errors reported).
func (p *parser) distribution(cfg *Config, item *yaml.Node, field string) *distributionDraft {
	dr := &distributionDraft{field: field, node: item, channel: -1}
	entries := p.mapping(item, field, distributionKeys)
	if item.Kind != yaml.MappingNode {
		return nil
	}
	for _, e := range entries {
		switch e.key {
		case "name", "branch", "base", "image":
			s, ok := p.str(e.value, e.field)
			if !ok {
				continue
			}
			switch e.key {
			case "name":
				dr.d.Name, dr.nameNode = s, e.value
				if !distributionName.MatchString(s) {
					p.fail(e.value, e.field, "invalid name %q (want letters, digits, '.', '_' or '-')", s)
				}
			case "branch":
				dr.d.Branch, dr.branchSet = s, true
				if ch, ok := cfg.ChannelByBranch(s); ok {
					dr.channel = cfg.Position(ch.Name)
				} else {
					p.fail(e.value, e.field, "branch %q is not a channel branch (want one of %s)", s, strings.Join(branchNames(cfg), ", "))
				}
			case "base":
				dr.d.Base, dr.baseNode, dr.baseSet = s, e.value, true
			case "image":
				dr.d.Image = s
				if s == "" || strings.ContainsAny(s, " \t@") || strings.HasSuffix(s, ":") {
					p.fail(e.value, e.field, "invalid image %q (want a repository without tag, e.g. ghcr.io/org/distribution)", s)
				}
			}
		case "build":
			p.build(&dr.d.Build, e.value, e.field)
		case "deploy":
			p.deploy(&dr.d.Deploy, e.value, e.field)
		case "verify":
			p.verify(&dr.d.Verify, e.value, e.field)
		}
	}
	if dr.nameNode == nil {
		p.fail(item, field, "a distribution needs a name (e.g. production)")
		return nil
	}
	if !dr.branchSet {
		ch, ok := cfg.ChannelByName(dr.d.Name)
		if !ok {
			p.fail(item, field+".branch", "distribution %q is not named after a channel, so it needs a branch (one of %s)",
				dr.d.Name, strings.Join(branchNames(cfg), ", "))
			return nil
		}
		dr.d.Branch, dr.channel = ch.Branch, cfg.Position(ch.Name)
	}
	if dr.d.Image == "" {
		p.fail(item, field+".image", "a distribution needs the image its build pushes (e.g. ghcr.io/org/distribution)")
	}
	if dr.d.Build.Workflow == "" {
		p.fail(item, field+".build.workflow", "a distribution needs the workflow that builds it (e.g. distribution.yml)")
	}
	if dr.d.Deploy.Kubernetes == nil && dr.d.Deploy.Workflow == "" {
		p.fail(item, field+".deploy", "a distribution needs deploy.kubernetes {namespace, deployment} or deploy.workflow")
	}
	if dr.d.Build.Timeout == 0 {
		dr.d.Build.Timeout = DefaultBuildTimeout
	}
	if dr.d.Deploy.Timeout == 0 {
		dr.d.Deploy.Timeout = DefaultDeployTimeout
	}
	if dr.d.Verify.Timeout == 0 {
		dr.d.Verify.Timeout = DefaultVerifyTimeout
	}
	return dr
}

func branchNames(cfg *Config) []string {
	out := make([]string, len(cfg.Channels))
	for i, ch := range cfg.Channels {
		out[i] = ch.Branch
	}
	return out
}

var workflowFile = regexp.MustCompile(`^[A-Za-z0-9._-]+\.ya?ml$`)

func (p *parser) workflow(n *yaml.Node, field string) string {
	s, ok := p.str(n, field)
	if ok && !workflowFile.MatchString(s) {
		p.fail(n, field, "invalid workflow %q (want a file name under .github/workflows, e.g. distribution.yml)", s)
	}
	return s
}

func (p *parser) timeout(n *yaml.Node, field string) time.Duration {
	s, ok := p.str(n, field)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.fail(n, field, "invalid duration %q (want e.g. 10m or 1h)", s)
		return 0
	}
	return d
}

func (p *parser) build(b *Build, n *yaml.Node, field string) {
	for _, e := range p.mapping(n, field, []string{"workflow", "inputs", "timeout"}) {
		switch e.key {
		case "workflow":
			b.Workflow = p.workflow(e.value, e.field)
		case "timeout":
			b.Timeout = p.timeout(e.value, e.field)
		case "inputs":
			b.Inputs = map[string]string{}
			for _, in := range p.mapping(e.value, e.field, nil) {
				if reservedInputs[in.key] {
					p.fail(in.keyNode, in.field, "input %q is set by storagebot itself", in.key)
					continue
				}
				if s, ok := p.str(in.value, in.field); ok {
					b.Inputs[in.key] = s
				}
			}
		}
	}
}

// reservedInputs are the workflow_dispatch inputs storagebot sets on every build.
var reservedInputs = map[string]bool{"distribution": true, "ref": true, "base_image": true, "build_key": true}

func (p *parser) deploy(d *Deploy, n *yaml.Node, field string) {
	for _, e := range p.mapping(n, field, []string{"kubernetes", "workflow", "timeout"}) {
		switch e.key {
		case "workflow":
			d.Workflow = p.workflow(e.value, e.field)
		case "timeout":
			d.Timeout = p.timeout(e.value, e.field)
		case "kubernetes":
			k := &KubernetesTarget{}
			for _, x := range p.mapping(e.value, e.field, []string{"namespace", "deployment"}) {
				s, ok := p.str(x.value, x.field)
				if !ok {
					continue
				}
				if !dnsLabel.MatchString(s) {
					p.fail(x.value, x.field, "invalid Kubernetes name %q (want lower-case letters, digits and '-')", s)
				}
				if x.key == "namespace" {
					k.Namespace = s
				} else {
					k.Deployment = s
				}
			}
			if k.Namespace == "" || k.Deployment == "" {
				p.fail(e.value, e.field, "deploy.kubernetes needs both namespace and deployment")
			}
			d.Kubernetes = k
		}
	}
	if d.Kubernetes != nil && d.Workflow != "" {
		p.fail(resolve(n), field, "set deploy.kubernetes or deploy.workflow, not both")
	}
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

func (p *parser) verify(v *Verify, n *yaml.Node, field string) {
	for _, e := range p.mapping(n, field, []string{"registry", "timeout"}) {
		switch e.key {
		case "timeout":
			v.Timeout = p.timeout(e.value, e.field)
		case "registry":
			s, ok := p.str(e.value, e.field)
			if !ok {
				continue
			}
			if u, err := url.Parse(s); s != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
				p.fail(e.value, e.field, "invalid URL %q (want the registry's absolute http or https base URL)", s)
				continue
			}
			v.Registry = strings.TrimSuffix(s, "/")
		}
	}
}

// defaultBases gives every distribution without a base the distribution of the nearest higher channel:
// staging on production, snapshot on staging; the highest is built from the registry image.
func (p *parser) defaultBases(cfg *Config, drafts []*distributionDraft) {
	for _, dr := range drafts {
		if dr.baseSet || dr.channel < 0 {
			continue
		}
		best := -1
		for _, other := range drafts {
			if other.channel > dr.channel && (best < 0 || other.channel < drafts[best].channel) {
				best = indexOf(drafts, other)
			}
		}
		if best >= 0 {
			dr.d.Base = drafts[best].d.Name
		}
	}
}

func indexOf(drafts []*distributionDraft, dr *distributionDraft) int {
	for i, x := range drafts {
		if x == dr {
			return i
		}
	}
	return -1
}

func draftNamed(drafts []*distributionDraft, name string) *distributionDraft {
	for _, dr := range drafts {
		if dr.d.Name == name {
			return dr
		}
	}
	return nil
}

// checkBases reports bases that are not distributions and base chains that loop; false when any is wrong.
func (p *parser) checkBases(drafts []*distributionDraft) bool {
	ok := true
	for _, dr := range drafts {
		if dr.d.Base == "" {
			continue
		}
		at, field := dr.baseNode, dr.field+".base"
		if at == nil {
			at = dr.node
		}
		if draftNamed(drafts, dr.d.Base) == nil {
			p.fail(at, field, "base %q is not a distribution listed here (or \"\" for the registry image)", dr.d.Base)
			ok = false
			continue
		}
		chain := []string{dr.d.Name}
		for cur := dr.d.Base; cur != ""; {
			if contains(chain, cur) {
				if cur == dr.d.Name {
					p.fail(at, field, "bases form a cycle: %s", strings.Join(append(chain, cur), " → "))
					ok = false
				}
				break
			}
			chain = append(chain, cur)
			next := draftNamed(drafts, cur)
			if next == nil {
				break
			}
			cur = next.d.Base
		}
	}
	return ok
}

// dependencyOrder lists the distributions bases first, keeping file order among independent ones.
func dependencyOrder(drafts []*distributionDraft) []Distribution {
	var out []Distribution
	done := map[string]bool{}
	for len(out) < len(drafts) {
		progressed := false
		for _, dr := range drafts {
			if !done[dr.d.Name] && (dr.d.Base == "" || done[dr.d.Base]) {
				done[dr.d.Name] = true
				out = append(out, dr.d)
				progressed = true
			}
		}
		if !progressed { // unreachable after checkBases; never loop forever on a bad graph.
			return out
		}
	}
	return out
}
