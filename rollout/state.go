package rollout

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/storagebot/storagebot/internal/repoconfig"
)

// Deployment states, as GitHub names them.
const (
	StateQueued     = "queued"
	StatePending    = "pending"
	StateInProgress = "in_progress"
	StateSuccess    = "success"
	StateFailure    = "failure"
	StateError      = "error"
	StateInactive   = "inactive"
)

// Key identifies one build of a distribution: the commit it is built from and the deployment of its base it
// is built on (0 when built from the registry image). Two passes wanting the same Key want the same image.
type Key struct {
	Distribution   string
	Ref            string
	BaseDeployment int64
}

// String is the key of what is built ("production@<sha>+<base deployment>"): two passes wanting the same Key
// want the same image.
func (k Key) String() string {
	return fmt.Sprintf("%s@%s+%d", k.Distribution, k.Ref, k.BaseDeployment)
}

// BuildKey is the build_key input of the build that deployment claim records ("<key>#<claim id>"). The build
// workflow puts it in its run name ("storagebot build <build key>"), so that a run — whose inputs GitHub
// does not return — is matched to the one deployment it builds, and a second build of the same Key (a
// /rebuild) is told apart from the first.
func BuildKey(k Key, claim int64) string {
	return k.String() + "#" + strconv.FormatInt(claim, 10)
}

// ParseKey reads a Key back from its String form.
func ParseKey(s string) (Key, bool) {
	name, rest, ok := strings.Cut(s, "@")
	if !ok {
		return Key{}, false
	}
	ref, base, ok := strings.Cut(rest, "+")
	if !ok || name == "" || ref == "" {
		return Key{}, false
	}
	id, err := strconv.ParseInt(base, 10, 64)
	if err != nil || id < 0 {
		return Key{}, false
	}
	return Key{Distribution: name, Ref: ref, BaseDeployment: id}, true
}

// ParseBuildKey reads a BuildKey back: the Key and the claiming deployment's id.
func ParseBuildKey(s string) (Key, int64, bool) {
	key, claim, ok := strings.Cut(s, "#")
	if !ok {
		return Key{}, 0, false
	}
	k, ok := ParseKey(key)
	id, err := strconv.ParseInt(claim, 10, 64)
	if !ok || err != nil || id <= 0 {
		return Key{}, 0, false
	}
	return k, id, true
}

// buildKeyInTitle finds the build key in a run's display title ("storagebot build production@abc+0#12").
func buildKeyInTitle(title string) (Key, int64, bool) {
	for _, f := range strings.Fields(title) {
		if k, id, ok := ParseBuildKey(f); ok {
			return k, id, true
		}
	}
	return Key{}, 0, false
}

// Payload is what the controller stores in a GitHub Deployment: enough to know, after any restart, what was
// built on what and what it replaced. The deployment is created before its build is dispatched (it is the
// build's claim, docs/architecture.md §6); the run that builds it carries BuildKey(Key, deployment id).
type Payload struct {
	Distribution   string `json:"distribution"`
	Ref            string `json:"ref"`
	Base           string `json:"base,omitempty"`
	BaseDeployment int64  `json:"base_deployment,omitempty"`
	BaseImage      string `json:"base_image,omitempty"`
	Image          string `json:"image"`
	// Rebuild marks a claim made by /rebuild: it may build a Key that was built before.
	Rebuild bool `json:"rebuild,omitempty"`
	// PreviousRef is the ref of the last successful deployment when this one was created: the change this
	// deployment brings is PreviousRef..Ref ("" for the first one).
	PreviousRef string `json:"previous_ref,omitempty"`
}

// Key is the build the payload records.
func (p Payload) Key() Key {
	return Key{Distribution: p.Distribution, Ref: p.Ref, BaseDeployment: p.BaseDeployment}
}

// Deployment is a GitHub Deployment of a distribution with its latest status.
type Deployment struct {
	ID      int64
	Ref     string
	Payload Payload
	Created time.Time
	// State is the latest status's state; "" when it has none yet.
	State string
	// StateSince is when the latest status was set (Created when there is none).
	StateSince time.Time
}

// InFlight reports whether the deployment is still being rolled out.
func (d Deployment) InFlight() bool {
	switch d.State {
	case "", StateQueued, StatePending, StateInProgress:
		return true
	}
	return false
}

// Building reports whether the deployment is a claim whose build has not finished: created, no status yet
// (or queued). A rollout sets in_progress once the build succeeded.
func (d Deployment) Building() bool { return d.State == "" || d.State == StateQueued }

// supersededBy returns the deployment that makes claim c redundant: an older deployment of the same Key that
// is still live (building, rolling out or deployed). A claim by /rebuild is only redundant next to one in
// flight: it asks for a Key that was built before. Two replicas claiming the same build at once both create
// a deployment; GitHub numbers them in order, so both find the older one and only its creator dispatches.
func supersededBy(c Deployment, deps []Deployment) (Deployment, bool) {
	if !c.Building() {
		return Deployment{}, false
	}
	var best Deployment
	found := false
	for _, d := range deps {
		if d.ID >= c.ID || d.Payload.Key() != c.Payload.Key() {
			continue
		}
		// Only /rebuild builds a Key again: a claim of a Key that went live, or failed, is redundant otherwise
		// (a pass that decided on a stale listing made it).
		done := d.State == StateSuccess || d.State == StateFailure || d.State == StateError
		live := d.InFlight() || (done && !c.Payload.Rebuild)
		if live && (!found || d.ID < best.ID) {
			best, found = d, true
		}
	}
	return best, found
}

// Run is a workflow run, as much of it as the controller reads.
type Run struct {
	ID         int64
	Title      string // display_title: the run name, holding the build key
	HeadSHA    string
	Status     string // queued, in_progress, completed, …
	Conclusion string // success, failure, cancelled, timed_out, … once completed
	Created    time.Time
	URL        string
}

// Completed reports whether the run has finished.
func (r Run) Completed() bool { return r.Status == "completed" }

// MergedPull is a pull request merged into a distribution's branch.
type MergedPull struct {
	Number int
	// MergeSHA is the commit the merge put on the branch (for a rebase merge, the last rebased commit).
	MergeSHA string
}

// Version is a package version a change added.
type Version struct {
	Package string
	Version string
}

func (v Version) String() string { return v.Package + "@" + v.Version }

// GitHub is every GitHub call the controller makes, for one repository.
type GitHub interface {
	// BranchHeads returns the SHA at the head of each branch; a branch that does not exist is absent.
	BranchHeads(ctx context.Context, branches []string) (map[string]string, error)
	// Deployments returns, per environment, its newest deployments, newest first, each with its latest
	// state: at least down to the newest successful one, and a few past it.
	Deployments(ctx context.Context, environments []string) (map[string][]Deployment, error)
	// CreateDeployment records a build as a deployment of environment at ref.
	CreateDeployment(ctx context.Context, environment, ref string, p Payload) (Deployment, error)
	// SetDeploymentState adds a status to a deployment.
	SetDeploymentState(ctx context.Context, id int64, state, description, logURL string) error
	// DispatchWorkflow starts workflow (a file under .github/workflows) on ref with inputs.
	DispatchWorkflow(ctx context.Context, workflow, ref string, inputs map[string]string) error
	// WorkflowRuns returns the newest workflow_dispatch runs of workflow on branch, newest first.
	WorkflowRuns(ctx context.Context, workflow, branch string) ([]Run, error)
	// MergedPulls returns the pull requests whose merges into branch brought from..to, in the order they
	// merged (from "" = none: the first deployment is attributed to nobody).
	MergedPulls(ctx context.Context, branch, from, to string) ([]MergedPull, error)
	// AddedVersions returns the package versions present at to and absent at from.
	AddedVersions(ctx context.Context, from, to string) ([]Version, error)
	// CommentOnce posts body on issue or PR number unless a comment of the bot already holds marker.
	CommentOnce(ctx context.Context, number int, marker, body string) error
}

// RolloutStarter is implemented by a GitHub that can tell passes racing to roll out one build apart: a
// GitHub without it leaves every such pass rolling out.
type RolloutStarter interface {
	// StartRollout marks deployment id in progress; it reports true to the pass whose mark came first, the
	// one that rolls the build out.
	StartRollout(ctx context.Context, id int64, description string) (bool, error)
}

// Target rolls a built image out and waits until it runs, or fails with a reason a person can act on.
type Target interface {
	// Rollout makes the deployment with this id run image, waiting at most until deadline. It is
	// idempotent: called again for the same id after a restart, it does not restart the workload twice.
	Rollout(ctx context.Context, d repoconfig.Distribution, deploymentID int64, image string, deadline time.Time) error
}

// Registry tells whether a package version is served.
type Registry interface {
	// WaitServed polls until every version is served by the registry at base, or deadline passes; the error
	// names the versions still missing.
	WaitServed(ctx context.Context, base string, versions []Version, deadline time.Time) error
}
