package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/repoconfig"
)

// Repo is one storage repository as a pass sees it: its GitHub seam and its configuration (read once per
// pass from the default branch).
type Repo struct {
	GitHub GitHub
	Config *repoconfig.Config
}

// Controller takes every distribution of a repository one step towards its desired state per pass.
type Controller struct {
	// Target returns where a distribution rolls out.
	Target func(gh GitHub, d repoconfig.Distribution) (Target, error)
	// Registry verifies that new versions are served; nil skips verification.
	Registry Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu         sync.Mutex
	dispatched map[Key]time.Time // builds this process dispatched, until GitHub lists their runs
}

// dispatchGrace is how long a dispatched build may stay unlisted before it is dispatched again.
const dispatchGrace = 2 * time.Minute

func (c *Controller) recentlyDispatched(k Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.dispatched[k]
	return ok && c.now().Sub(t) < dispatchGrace
}

func (c *Controller) noteDispatch(k Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dispatched == nil {
		c.dispatched = map[Key]time.Time{}
	}
	now := c.now()
	for old, t := range c.dispatched {
		if now.Sub(t) >= dispatchGrace {
			delete(c.dispatched, old)
		}
	}
	c.dispatched[k] = now
}

// Action says what a pass did, or found, for one distribution.
type Action string

// Actions of a pass.
const (
	ActionUpToDate   Action = "up to date"   // the desired build runs
	ActionWaiting    Action = "waiting"      // the base is in flight or stopped
	ActionDispatched Action = "dispatched"   // a build was started
	ActionBuilding   Action = "building"     // a build is running
	ActionDeployed   Action = "deployed"     // a build was rolled out, verified and marked success
	ActionFailed     Action = "failed"       // a build, rollout or verification failed just now
	ActionStopped    Action = "stopped"      // the desired build failed earlier: /rebuild retries
	ActionInterrupt  Action = "interrupted"  // the pass was cancelled mid-rollout; the next one resumes
	ActionError      Action = "error"        // GitHub could not be asked; the next pass retries
	ActionNoBase     Action = "base missing" // the base has never been deployed successfully
)

// Step is one distribution's outcome in a pass.
type Step struct {
	Distribution string
	Action       Action
	Key          Key
	Deployment   int64
	Detail       string
}

// Pass takes each distribution, bases first, one step further and reports what it did. A dependent is only
// looked at once its base runs the build it wants, so it is rebuilt once per base change, not once per merge.
func (c *Controller) Pass(ctx context.Context, repo Repo) ([]Step, error) {
	deployed := map[string]Deployment{}
	settled := map[string]bool{}
	var steps []Step
	var errs []error
	for _, d := range repo.Config.Distributions {
		if d.Base != "" && !settled[d.Base] {
			steps = append(steps, Step{Distribution: d.Name, Action: ActionWaiting, Detail: "base " + d.Base + " is not settled"})
			continue
		}
		var base *Deployment
		if d.Base != "" {
			b := deployed[d.Base]
			base = &b
		}
		st, dep, err := c.step(ctx, repo, d, base, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("distribution %s: %w", d.Name, err))
			st.Action, st.Detail = ActionError, err.Error()
		}
		if st.Action == ActionUpToDate || st.Action == ActionDeployed {
			settled[d.Name], deployed[d.Name] = true, dep
		}
		zerolog.Ctx(ctx).Info().Str("distribution", d.Name).Str("action", string(st.Action)).
			Str("build_key", st.Key.String()).Int64("deployment", st.Deployment).Str("detail", st.Detail).Msg("rollout step")
		steps = append(steps, st)
	}
	return steps, errors.Join(errs...)
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// desired reads what distribution d should run: its branch head on the base's current deployment.
func desired(ctx context.Context, gh GitHub, d repoconfig.Distribution, base *Deployment) (Key, error) {
	head, err := gh.BranchHead(ctx, d.Branch)
	if err != nil {
		return Key{}, fmt.Errorf("read the head of %s: %w", d.Branch, err)
	}
	k := Key{Distribution: d.Name, Ref: head}
	if base != nil {
		k.BaseDeployment = base.ID
	}
	return k, nil
}

// step takes distribution d one step: finish a rollout in flight, record a finished build, dispatch a build.
// It returns the deployment that runs when the distribution is settled.
func (c *Controller) step(ctx context.Context, repo Repo, d repoconfig.Distribution, base *Deployment, resumed bool) (Step, Deployment, error) {
	gh := repo.GitHub
	want, err := desired(ctx, gh, d, base)
	st := Step{Distribution: d.Name, Key: want}
	if err != nil {
		return st, Deployment{}, err
	}
	deps, err := gh.Deployments(ctx, d.Name)
	if err != nil {
		return st, Deployment{}, fmt.Errorf("list the deployments of %s: %w", d.Name, err)
	}
	lastOK, _ := lastSuccess(deps)
	if len(deps) > 0 && deps[0].InFlight() {
		// A build already recorded is rolled out before anything else: its image exists and a restart
		// must not build it again.
		dep := deps[0]
		st.Deployment = dep.ID
		st.Action, st.Detail = c.finish(ctx, repo, d, dep)
		switch {
		case st.Action == ActionDeployed && dep.Payload.Key() == want:
			dep.State = StateSuccess
			return st, dep, nil
		case st.Action == ActionDeployed && !resumed:
			// An older build went live; the desired one is next, in this same pass.
			return c.step(ctx, repo, d, base, true)
		}
		return st, Deployment{}, nil
	}
	runs, err := gh.WorkflowRuns(ctx, d.Build.Workflow, d.Branch)
	if err != nil {
		return st, Deployment{}, fmt.Errorf("list the runs of %s: %w", d.Build.Workflow, err)
	}
	run, hasRun := newestRun(runs, want)
	if len(deps) > 0 && deps[0].Payload.Key() == want && (!hasRun || run.ID <= deps[0].Payload.BuildRun) {
		dep := deps[0]
		st.Deployment = dep.ID
		if dep.State == StateSuccess {
			st.Action = ActionUpToDate
			return st, dep, nil
		}
		st.Action, st.Detail = ActionStopped, "deployment "+dep.State+"; comment /rebuild "+d.Name+" to retry"
		return st, Deployment{}, nil
	}
	var baseImage string
	if base != nil {
		baseImage = base.Payload.Image
	}
	payload := Payload{Distribution: d.Name, Ref: want.Ref, Base: d.Base, BaseDeployment: want.BaseDeployment,
		BaseImage: baseImage, Image: d.Image + ":" + want.Ref, PreviousRef: lastOK.Ref}
	switch {
	case !hasRun && c.recentlyDispatched(want):
		// GitHub lists a dispatched run a few seconds after answering 204; dispatching again would build twice.
		st.Action, st.Detail = ActionBuilding, "dispatched, run not listed yet"
		return st, Deployment{}, nil
	case !hasRun:
		c.noteDispatch(want)
		if err := dispatchBuild(ctx, gh, d, want, baseImage); err != nil {
			// A build that cannot even start (missing workflow, bad inputs) is recorded as a failed
			// deployment, so it is reported once and the chain stops instead of retrying every pass.
			return c.recordFailure(ctx, repo, d, st, payload, "the build could not be started: "+err.Error())
		}
		st.Action = ActionDispatched
		return st, Deployment{}, nil
	case !run.Completed():
		if c.now().Sub(run.Created) > d.Build.Timeout {
			payload.BuildRun = run.ID
			return c.recordFailure(ctx, repo, d, st, payload,
				fmt.Sprintf("build run %s did not finish within %s", run.URL, d.Build.Timeout))
		}
		st.Action, st.Detail = ActionBuilding, run.URL
		return st, Deployment{}, nil
	case run.Conclusion != "success":
		payload.BuildRun = run.ID
		return c.recordFailure(ctx, repo, d, st, payload, fmt.Sprintf("build run %s ended %s", run.URL, run.Conclusion))
	}
	payload.BuildRun = run.ID
	dep, err := gh.CreateDeployment(ctx, d.Name, want.Ref, payload)
	if err != nil {
		return st, Deployment{}, fmt.Errorf("record build run %d as a deployment of %s: %w", run.ID, d.Name, err)
	}
	st.Deployment = dep.ID
	st.Action, st.Detail = c.finish(ctx, repo, d, dep)
	if st.Action == ActionDeployed {
		dep.State = StateSuccess
		return st, dep, nil
	}
	return st, Deployment{}, nil
}

// dispatchBuild starts the build workflow for key.
func dispatchBuild(ctx context.Context, gh GitHub, d repoconfig.Distribution, key Key, baseImage string) error {
	inputs := map[string]string{}
	for k, v := range d.Build.Inputs {
		inputs[k] = v
	}
	inputs["distribution"] = d.Name
	inputs["ref"] = key.Ref
	inputs["base_image"] = baseImage
	inputs["build_key"] = key.String()
	if err := gh.DispatchWorkflow(ctx, d.Build.Workflow, d.Branch, inputs); err != nil {
		return fmt.Errorf("dispatch %s on %s: %w", d.Build.Workflow, d.Branch, err)
	}
	return nil
}

// recordFailure records a build that failed as a deployment with a failure status, and tells the PRs.
func (c *Controller) recordFailure(ctx context.Context, repo Repo, d repoconfig.Distribution, st Step, p Payload, reason string) (Step, Deployment, error) {
	dep, err := repo.GitHub.CreateDeployment(ctx, d.Name, p.Ref, p)
	if err != nil {
		return st, Deployment{}, fmt.Errorf("record the failed build of %s: %w", d.Name, err)
	}
	st.Deployment = dep.ID
	c.fail(ctx, repo, d, dep, reason)
	st.Action, st.Detail = ActionFailed, reason
	return st, Deployment{}, nil
}

// finish rolls deployment dep out, verifies it and sets its final status.
func (c *Controller) finish(ctx context.Context, repo Repo, d repoconfig.Distribution, dep Deployment) (Action, string) {
	gh := repo.GitHub
	log := zerolog.Ctx(ctx).With().Str("distribution", d.Name).Int64("deployment", dep.ID).Logger()
	since := dep.StateSince
	if dep.State != StateInProgress {
		if err := gh.SetDeploymentState(ctx, dep.ID, StateInProgress, "rolling out "+dep.Payload.Image, ""); err != nil {
			return ActionError, fmt.Sprintf("mark deployment %d in progress: %v", dep.ID, err)
		}
		since = c.now()
	}
	target, err := c.Target(gh, d)
	if err != nil {
		return ActionFailed, c.fail(ctx, repo, d, dep, "no rollout target: "+err.Error())
	}
	if err := target.Rollout(ctx, d, dep.ID, dep.Payload.Image, since.Add(d.Deploy.Timeout)); err != nil {
		if ctx.Err() != nil {
			// Shutting down: leave the deployment in progress for the next pass (here or on another replica).
			return ActionInterrupt, err.Error()
		}
		return ActionFailed, c.fail(ctx, repo, d, dep, "rollout failed: "+err.Error())
	}
	var versions []Version
	if dep.Payload.PreviousRef != "" && dep.Payload.PreviousRef != dep.Payload.Ref {
		if versions, err = gh.AddedVersions(ctx, dep.Payload.PreviousRef, dep.Payload.Ref); err != nil {
			return ActionError, fmt.Sprintf("list the versions deployment %d added: %v", dep.ID, err)
		}
	}
	if c.Registry != nil && d.Verify.Registry != "" && len(versions) > 0 {
		if err := c.Registry.WaitServed(ctx, d.Verify.Registry, versions, c.now().Add(d.Verify.Timeout)); err != nil {
			if ctx.Err() != nil {
				return ActionInterrupt, err.Error()
			}
			return ActionFailed, c.fail(ctx, repo, d, dep, "verification failed: "+err.Error())
		}
	}
	prs, err := gh.MergedPulls(ctx, d.Branch, dep.Payload.PreviousRef, dep.Payload.Ref)
	if err != nil {
		log.Warn().Err(err).Msg("find the pull requests a deployment brought; none is told")
	}
	body := liveComment(d, dep, versions)
	for _, n := range prs {
		if err := gh.CommentOnce(ctx, n, marker("live", d.Name, dep.ID), body); err != nil {
			log.Warn().Err(err).Int("pr", n).Msg("tell a pull request its change is live")
		}
	}
	if err := gh.SetDeploymentState(ctx, dep.ID, StateSuccess, trim("live: "+dep.Payload.Image), d.Verify.Registry); err != nil {
		return ActionError, fmt.Sprintf("mark deployment %d successful: %v", dep.ID, err)
	}
	log.Info().Str("image", dep.Payload.Image).Int("versions", len(versions)).Msg("distribution deployed")
	return ActionDeployed, dep.Payload.Image
}

// fail marks dep failed, tells the PRs that caused it what to fix, and returns reason.
func (c *Controller) fail(ctx context.Context, repo Repo, d repoconfig.Distribution, dep Deployment, reason string) string {
	gh := repo.GitHub
	log := zerolog.Ctx(ctx).With().Str("distribution", d.Name).Int64("deployment", dep.ID).Logger()
	log.Warn().Str("reason", reason).Msg("distribution rollout failed")
	prs, err := gh.MergedPulls(ctx, d.Branch, dep.Payload.PreviousRef, dep.Payload.Ref)
	if err != nil {
		log.Warn().Err(err).Msg("find the pull requests a failed deployment brought; none is told")
	}
	body := fmt.Sprintf("❌ **%s** was not rolled out: %s.\n\nNothing after it in the chain (%s) was rebuilt. "+
		"Fix the cause, then comment `/rebuild %s` (needs maintain permission) to build and roll it out again.\n\n%s",
		d.Name, reason, dependentsText(repo.Config, d.Name), d.Name, marker("failed", d.Name, dep.ID))
	for _, n := range prs {
		if err := gh.CommentOnce(ctx, n, marker("failed", d.Name, dep.ID), body); err != nil {
			log.Warn().Err(err).Int("pr", n).Msg("report a failed rollout on a pull request")
		}
	}
	if err := gh.SetDeploymentState(ctx, dep.ID, StateFailure, trim(reason), ""); err != nil {
		log.Error().Err(err).Msg("mark deployment failed")
	}
	return reason
}

func dependentsText(cfg *repoconfig.Config, name string) string {
	var names []string
	for _, x := range cfg.Dependents(name) {
		names = append(names, x.Name)
	}
	if len(names) == 0 {
		return "no dependents"
	}
	return strings.Join(names, ", ")
}

func liveComment(d repoconfig.Distribution, dep Deployment, versions []Version) string {
	var b strings.Builder
	fmt.Fprintf(&b, "🚀 Now live on **%s** (`%s`)", d.Name, dep.Payload.Image)
	if len(versions) > 0 {
		names := make([]string, len(versions))
		for i, v := range versions {
			names[i] = "`" + v.String() + "`"
		}
		fmt.Fprintf(&b, ": %s", strings.Join(names, ", "))
		if d.Verify.Registry != "" {
			fmt.Fprintf(&b, ", served by %s", d.Verify.Registry)
		}
	}
	b.WriteString(".\n\n" + marker("live", d.Name, dep.ID))
	return b.String()
}

// marker makes a rollout comment findable, so a retried pass does not post it twice.
func marker(kind, distribution string, deployment int64) string {
	return fmt.Sprintf("<!-- storagebot:rollout:%s:%s:%d -->", kind, distribution, deployment)
}

// trim fits a deployment status description (GitHub allows 140 characters).
func trim(s string) string {
	const max = 140
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func lastSuccess(deps []Deployment) (Deployment, bool) {
	for _, d := range deps {
		if d.State == StateSuccess {
			return d, true
		}
	}
	return Deployment{}, false
}

// newestRun returns the newest run building key.
func newestRun(runs []Run, key Key) (Run, bool) {
	sorted := append([]Run(nil), runs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID > sorted[j].ID })
	for _, r := range sorted {
		if k, ok := keyInTitle(r.Title); ok && k == key {
			return r, true
		}
	}
	return Run{}, false
}

// ErrBusy is returned by Rebuild when the distribution or its base is being built or rolled out.
var ErrBusy = errors.New("a build or rollout is in flight")

// Rebuild starts a new build of distribution name at its desired state, even when that state was deployed or
// failed before; its dependents follow once it is deployed. It refuses while the distribution or its base is
// in flight (ErrBusy), so a retry never races the build it would replace.
func (c *Controller) Rebuild(ctx context.Context, repo Repo, name string) (Key, error) {
	d, ok := repo.Config.DistributionByName(name)
	if !ok {
		return Key{}, fmt.Errorf("no distribution %q", name)
	}
	gh := repo.GitHub
	var base *Deployment
	var baseImage string
	if d.Base != "" {
		bdeps, err := gh.Deployments(ctx, d.Base)
		if err != nil {
			return Key{}, fmt.Errorf("list the deployments of %s: %w", d.Base, err)
		}
		if len(bdeps) > 0 && bdeps[0].InFlight() {
			return Key{}, fmt.Errorf("%w: base %s is rolling out; %s follows by itself", ErrBusy, d.Base, name)
		}
		b, ok := lastSuccess(bdeps)
		if !ok {
			return Key{}, fmt.Errorf("base %s has never been deployed: rebuild it first", d.Base)
		}
		base, baseImage = &b, b.Payload.Image
	}
	want, err := desired(ctx, gh, d, base)
	if err != nil {
		return Key{}, err
	}
	deps, err := gh.Deployments(ctx, d.Name)
	if err != nil {
		return want, fmt.Errorf("list the deployments of %s: %w", d.Name, err)
	}
	if len(deps) > 0 && deps[0].InFlight() {
		return want, fmt.Errorf("%w: deployment %d of %s is rolling out", ErrBusy, deps[0].ID, name)
	}
	runs, err := gh.WorkflowRuns(ctx, d.Build.Workflow, d.Branch)
	if err != nil {
		return want, fmt.Errorf("list the runs of %s: %w", d.Build.Workflow, err)
	}
	if run, ok := newestRun(runs, want); ok && !run.Completed() {
		return want, fmt.Errorf("%w: build run %s is still running", ErrBusy, run.URL)
	}
	c.noteDispatch(want)
	return want, dispatchBuild(ctx, gh, d, want, baseImage)
}
