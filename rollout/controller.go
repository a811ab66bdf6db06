package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/repoconfig"
)

// Repo is one storage repository as a pass sees it: its GitHub seam and its configuration (read once per
// pass from the default branch).
type Repo struct {
	GitHub GitHub
	Config *repoconfig.Config
}

// Controller takes every distribution of a repository one step towards its desired state per pass. It keeps
// no state of its own: every replica, and every restart, reads where each rollout stands from GitHub.
type Controller struct {
	// Target returns where a distribution rolls out.
	Target func(gh GitHub, d repoconfig.Distribution) (Target, error)
	// Registry verifies that new versions are served; nil skips verification.
	Registry Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// WriteSettle is how long after it was sent a build dispatch whose answer was lost may still start its
	// run (GitHub ends a request after 10 s); 0 means DefaultWriteSettle.
	WriteSettle time.Duration
}

// DefaultWriteSettle is GitHub's limit on processing one request (10 s) plus a margin for the answer.
const DefaultWriteSettle = 12 * time.Second

// runAppearDeadline is how long a claimed build may go without GitHub listing its run (it lists a dispatched
// run within seconds) before the claim is failed: its dispatch was lost, or its creator died before sending it.
const runAppearDeadline = 5 * time.Minute

// rolloutTakeover is how long a deploy-workflow rollout marked in progress is left to the pass that marked it
// before another pass resumes it (that pass's replica stopped): far longer than it takes to dispatch the
// deploy. A Kubernetes rollout, which dispatches nothing, is resumed at once.
const rolloutTakeover = 15 * time.Second

// retireTimeout bounds withdrawing a claim once the pass that made it was cancelled.
const retireTimeout = 10 * time.Second

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
//
// A pass reads every branch head in one call and every environment's deployments in one more (the client
// revalidates both with ETags and knows the state of a finished deployment that has not changed since), so a
// pass with nothing to do costs two requests whatever the number of distributions; a missed webhook is still
// caught, because each pass reads the heads and deployments again.
func (c *Controller) Pass(ctx context.Context, repo Repo) ([]Step, error) {
	gh := repo.GitHub
	var branches, envs []string
	for _, d := range repo.Config.Distributions {
		branches, envs = append(branches, d.Branch), append(envs, d.Name)
	}
	heads, err := gh.BranchHeads(ctx, branches)
	if err != nil {
		return nil, fmt.Errorf("read the heads of the distribution branches: %w", err)
	}
	all, err := gh.Deployments(ctx, envs)
	if err != nil {
		return nil, fmt.Errorf("list the deployments of the distributions: %w", err)
	}
	deployed := map[string]Deployment{}
	settled := map[string]bool{}
	var steps []Step
	var errs []error
	for _, d := range repo.Config.Distributions {
		want := Key{Distribution: d.Name, Ref: heads[d.Branch]}
		if want.Ref == "" {
			err := fmt.Errorf("distribution %s: branch %s does not exist: create it, or fix the distribution's branch in %s", d.Name, d.Branch, repoconfig.Path)
			errs = append(errs, err)
			steps = append(steps, Step{Distribution: d.Name, Action: ActionError, Detail: err.Error()})
			continue
		}
		if d.Base != "" && !settled[d.Base] {
			steps = append(steps, Step{Distribution: d.Name, Action: ActionWaiting, Detail: "base " + d.Base + " is not settled"})
			continue
		}
		var base *Deployment
		if d.Base != "" {
			b := deployed[d.Base]
			base, want.BaseDeployment = &b, b.ID
		}
		st, dep, err := c.step(ctx, repo, d, want, base, all[d.Name], false)
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

// current returns the deployment that says where distribution's rollout stands: the newest one that is not
// inactive and not a redundant claim. Redundant claims (a replica lost the race for a build, or died before
// retiring its claim) are retired on the way, best effort.
func (c *Controller) current(ctx context.Context, gh GitHub, deps []Deployment) (Deployment, bool) {
	for i, d := range deps {
		if d.State == StateInactive {
			continue
		}
		if older, ok := supersededBy(d, deps); ok {
			retire(ctx, gh, d, fmt.Sprintf("duplicate of deployment %d", older.ID))
			continue
		}
		if !d.InFlight() {
			retireStale(ctx, gh, d, deps[i+1:])
		}
		return d, true
	}
	return Deployment{}, false
}

// retireStale retires the deployments older than finished that still look in flight: none is rolled out any
// more (a newer one is claimed only once the older ones finished), yet one can show in progress when a status
// write whose answer was lost lands late, after it finished.
func retireStale(ctx context.Context, gh GitHub, finished Deployment, older []Deployment) {
	for _, o := range older {
		if o.InFlight() {
			retire(ctx, gh, o, fmt.Sprintf("superseded by deployment %d, which finished", finished.ID))
		}
	}
}

// retire marks claim dep inactive, saying why: it builds nothing. It runs even when ctx is cancelled (a
// replica stopping between its claim and the dispatch withdraws the claim on its way out, so the next pass,
// here or on another replica, claims again instead of waiting for a run nobody dispatched).
func retire(ctx context.Context, gh GitHub, dep Deployment, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), retireTimeout)
	defer cancel()
	if err := gh.SetDeploymentState(ctx, dep.ID, StateInactive, why, ""); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Int64("deployment", dep.ID).Msg("retire a duplicate build claim")
	}
}

// step takes distribution d one step towards want: finish a rollout in flight, follow a claimed build,
// or claim and dispatch a new build. It returns the deployment that runs when the distribution is settled.
func (c *Controller) step(ctx context.Context, repo Repo, d repoconfig.Distribution, want Key, base *Deployment, deps []Deployment, resumed bool) (Step, Deployment, error) {
	gh := repo.GitHub
	st := Step{Distribution: d.Name, Key: want}
	cur, has := c.current(ctx, gh, deps)
	if has && cur.InFlight() {
		st.Deployment = cur.ID
		if cur.Building() {
			st.Action, st.Detail = c.followBuild(ctx, repo, d, cur)
		} else {
			// A build already made is rolled out before anything else: its image exists and a restart must
			// not build it again.
			st.Action, st.Detail = c.finish(ctx, repo, d, cur)
		}
		switch {
		case st.Action == ActionDeployed && cur.Payload.Key() == want:
			cur.State = StateSuccess
			return st, cur, nil
		case st.Action == ActionDeployed && !resumed:
			// An older build went live; the desired one is next, in this same pass — at the head as it is now:
			// the rollout took a while, and the head the pass began with may be built already.
			return c.stepAgain(ctx, repo, d, want, base, st)
		}
		return st, Deployment{}, nil
	}
	if has && cur.Payload.Key() == want {
		st.Deployment = cur.ID
		if cur.State == StateSuccess {
			st.Action = ActionUpToDate
			return st, cur, nil
		}
		if cur.State == StateError {
			// Failed when its build could not be dispatched, and the PRs could not be told then.
			c.failing(ctx, repo, d, cur, "its build could not be started (the deployment's status on GitHub says why)", true)
		}
		st.Action, st.Detail = ActionStopped, "deployment "+cur.State+"; comment /rebuild "+d.Name+" to retry"
		return st, Deployment{}, nil
	}
	if !resumed {
		// The pass read the heads and deployments when it began and may have waited on a rollout since;
		// another pass may have claimed or built this, or a newer head, meanwhile: claiming from the old
		// reading would build it again, or roll back to an old head. Decide again on a fresh one.
		return c.stepAgain(ctx, repo, d, want, base, st)
	}
	lastOK, _ := lastSuccess(deps)
	st.Action, st.Deployment, st.Detail = c.claim(ctx, repo, d, want, base, lastOK.Payload.Ref, false, newest(deps))
	if st.Action == ActionError {
		return st, Deployment{}, errors.New(st.Detail)
	}
	return st, Deployment{}, nil
}

// stepAgain takes the step once more on a fresh reading of d's deployments and branch head (want follows the
// head if it moved), deciding nothing from the reading the pass began with. st is the step so far, returned
// with an error when the reading fails.
//
// The base is read again too: a dependent built on the base deployment the pass began with, after the base
// moved on, would be built on an image that no longer runs — and, when that pair was built before, built
// twice. It waits instead; the pass the base's new deployment triggers builds it on that.
func (c *Controller) stepAgain(ctx context.Context, repo Repo, d repoconfig.Distribution, want Key, base *Deployment, st Step) (Step, Deployment, error) {
	gh := repo.GitHub
	envs := []string{d.Name}
	if base != nil {
		envs = append(envs, d.Base)
	}
	fresh, err := gh.Deployments(ctx, envs)
	if err != nil {
		return st, Deployment{}, fmt.Errorf("list the deployments of %s: %w", strings.Join(envs, " and "), err)
	}
	if base != nil {
		if moved := baseMoved(d.Base, *base, fresh[d.Base]); moved != "" {
			st.Action, st.Detail = ActionWaiting, moved
			return st, Deployment{}, nil
		}
	}
	heads, err := gh.BranchHeads(ctx, []string{d.Branch})
	if err != nil {
		return st, Deployment{}, fmt.Errorf("read the head of %s again before claiming %s: %w", d.Branch, want, err)
	}
	if head := heads[d.Branch]; head != "" {
		want.Ref = head
	}
	return c.step(ctx, repo, d, want, base, fresh[d.Name], true)
}

// newest returns the highest deployment ID in deps (0 for none).
func newest(deps []Deployment) int64 {
	var id int64
	for _, d := range deps {
		id = max(id, d.ID)
	}
	return id
}

// claimedMeanwhile returns a deployment other than claim that was created after the reading the claim was
// decided on (whose newest deployment was seen) and before the claim, and is not withdrawn: another pass
// decided, on a newer reading, while this one was on its way. Of passes claiming at once, the oldest claim
// finds none and goes on.
func claimedMeanwhile(claim Deployment, fresh []Deployment, seen int64) (Deployment, bool) {
	for _, d := range fresh {
		if d.ID > seen && d.ID < claim.ID && d.State != StateInactive {
			return d, true
		}
	}
	return Deployment{}, false
}

// baseMoved says why a dependent must not be built on deployment base of distribution name any more: on the
// fresh reading, the base's newest deployment that counts (not retired, not a redundant claim) is another
// one. It returns "" while base is still the one that runs.
func baseMoved(name string, base Deployment, fresh []Deployment) string {
	for _, b := range fresh {
		if b.State == StateInactive {
			continue
		}
		if _, redundant := supersededBy(b, fresh); redundant {
			continue
		}
		if b.ID == base.ID {
			return ""
		}
		return fmt.Sprintf("base %s moved on to deployment %d (%s) since the pass began; the pass that follows it builds on it", name, b.ID, stateOrClaimed(b.State))
	}
	return fmt.Sprintf("base %s deployment %d no longer runs; the pass that follows its next deployment builds on that", name, base.ID)
}

func stateOrClaimed(state string) string {
	if state == "" {
		return "claimed"
	}
	return state
}

// claim records the build of want as a new deployment, then dispatches it unless an older claim of the same
// build exists: GitHub decides between replicas racing for one build, and only one of them dispatches.
//
// seen is the newest deployment of d in the reading the claim was decided on.
func (c *Controller) claim(ctx context.Context, repo Repo, d repoconfig.Distribution, want Key, base *Deployment, previousRef string, rebuild bool, seen int64) (Action, int64, string) {
	gh := repo.GitHub
	var baseImage string
	if base != nil {
		baseImage = base.Payload.Image
	}
	payload := Payload{Distribution: d.Name, Ref: want.Ref, Base: d.Base, BaseDeployment: want.BaseDeployment,
		BaseImage: baseImage, Image: d.Image + ":" + want.Ref, PreviousRef: previousRef, Rebuild: rebuild}
	dep, err := gh.CreateDeployment(ctx, d.Name, want.Ref, payload)
	if err != nil {
		return ActionError, 0, fmt.Sprintf("claim the build %s as a deployment: %v", want, err)
	}
	dep.State = ""
	envs := []string{d.Name}
	if base != nil {
		envs = append(envs, d.Base)
	}
	fresh, err := gh.Deployments(ctx, envs)
	if err != nil {
		// Whether another replica claimed it too is unknown: withdraw, the next pass claims again.
		retire(ctx, gh, dep, "withdrawn: the deployments could not be listed after the claim; the next pass claims again")
		return ActionError, dep.ID, fmt.Sprintf("list the deployments of %s after claiming build %s: %v", strings.Join(envs, " and "), want, err)
	}
	if older, ok := supersededBy(dep, fresh[d.Name]); ok {
		retire(ctx, gh, dep, fmt.Sprintf("duplicate of deployment %d", older.ID))
		return ActionBuilding, older.ID, fmt.Sprintf("deployment %d already builds %s", older.ID, want)
	}
	// The decision to claim was taken on a reading that may be seconds old by now (a slow or retried request
	// in between): another pass may have claimed, and even rolled out, another build meanwhile, or the base
	// may have moved on. Building this one would roll back to it, or build a Key twice. Withdraw; the next
	// pass decides on what is there then.
	if other, ok := claimedMeanwhile(dep, fresh[d.Name], seen); ok {
		retire(ctx, gh, dep, fmt.Sprintf("withdrawn: deployment %d was claimed after this claim was decided; the next pass decides again", other.ID))
		return ActionWaiting, other.ID, fmt.Sprintf("deployment %d was claimed meanwhile; %s is decided again", other.ID, d.Name)
	}
	if base != nil {
		if moved := baseMoved(d.Base, *base, fresh[d.Base]); moved != "" {
			retire(ctx, gh, dep, "withdrawn: "+moved)
			return ActionWaiting, dep.ID, moved
		}
	}
	sent := c.now()
	if err := dispatchBuild(ctx, gh, d, want, dep.ID, baseImage); err != nil {
		switch {
		case ctx.Err() != nil: // stopping: nothing was refused, the build is withdrawn and claimed again later
			retire(ctx, gh, dep, "withdrawn: the replica stopped before dispatching; the next pass claims again")
			return ActionError, dep.ID, fmt.Sprintf("dispatch build %s: %v", want, err)
		case rateLimited(err): // refused for now: nothing started
			retire(ctx, gh, dep, "withdrawn: the build's dispatch was rate limited; the next pass claims again")
			return ActionError, dep.ID, fmt.Sprintf("dispatch build %s: %v", want, err)
		case ghclient.Unanswered(err):
			// The answer was lost (a timeout, a 5xx): GitHub may have started the build. Its run shows within
			// the settle time if it did; only a build that did not start fails its claim.
			if listed, lerr := c.runShows(ctx, repo, d, dep.ID, sent); listed {
				zerolog.Ctx(ctx).Info().Err(err).Int64("deployment", dep.ID).Msg("a build dispatch whose answer was lost was applied: its run is listed")
				return ActionDispatched, dep.ID, "the dispatch's answer was lost; its run is listed"
			} else if lerr != nil {
				err = errors.Join(err, lerr)
			}
		}
		// A build that cannot even start (missing workflow, bad inputs) fails its claim, so it is reported
		// once and the chain stops instead of retrying every pass.
		return ActionFailed, dep.ID, c.failing(ctx, repo, d, dep, "the build could not be started: "+err.Error(), true)
	}
	return ActionDispatched, dep.ID, ""
}

// runShows lists d's build runs until one builds claim, or the write-settle time has passed since its
// dispatch was sent (GitHub lists a dispatched run within seconds).
func (c *Controller) runShows(ctx context.Context, repo Repo, d repoconfig.Distribution, claim int64, sent time.Time) (bool, error) {
	settle := c.WriteSettle
	if settle <= 0 {
		settle = DefaultWriteSettle
	}
	poll := min(max(settle/12, 10*time.Millisecond), time.Second)
	for {
		runs, err := repo.GitHub.WorkflowRuns(ctx, d.Build.Workflow, d.Branch)
		if err == nil {
			if _, ok := runOf(runs, claim); ok {
				return true, nil
			}
		}
		if c.now().Sub(sent) >= settle {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// rateLimited reports whether GitHub refused a request for a rate limit.
func rateLimited(err error) bool {
	var limited *github.RateLimitError
	var secondary *github.AbuseRateLimitError
	var waited *ghclient.RateLimitError
	return errors.As(err, &limited) || errors.As(err, &secondary) || errors.As(err, &waited)
}

// followBuild looks at the build run of claim dep: waiting, failed, or done — then it rolls out.
func (c *Controller) followBuild(ctx context.Context, repo Repo, d repoconfig.Distribution, dep Deployment) (Action, string) {
	runs, err := repo.GitHub.WorkflowRuns(ctx, d.Build.Workflow, d.Branch)
	if err != nil {
		return ActionError, fmt.Sprintf("list the runs of %s: %v", d.Build.Workflow, err)
	}
	run, ok := runOf(runs, dep.ID)
	switch {
	case !ok && c.now().Sub(dep.Created) > runAppearDeadline:
		return ActionFailed, c.fail(ctx, repo, d, dep, fmt.Sprintf("no run of %s builds %s %s after its dispatch",
			d.Build.Workflow, BuildKey(dep.Payload.Key(), dep.ID), runAppearDeadline))
	case !ok:
		return ActionBuilding, "dispatched, run not listed yet"
	case !run.Completed() && c.now().Sub(run.Created) > d.Build.Timeout:
		return ActionFailed, c.fail(ctx, repo, d, dep, fmt.Sprintf("build run %s did not finish within %s", run.URL, d.Build.Timeout))
	case !run.Completed():
		return ActionBuilding, run.URL
	case run.Conclusion != "success":
		return ActionFailed, c.fail(ctx, repo, d, dep, fmt.Sprintf("build run %s ended %s", run.URL, run.Conclusion))
	}
	return c.finish(ctx, repo, d, dep)
}

// dispatchBuild starts the build workflow for key, claimed by deployment claim.
func dispatchBuild(ctx context.Context, gh GitHub, d repoconfig.Distribution, key Key, claim int64, baseImage string) error {
	inputs := map[string]string{}
	for k, v := range d.Build.Inputs {
		inputs[k] = v
	}
	inputs["distribution"] = d.Name
	inputs["ref"] = key.Ref
	inputs["base_image"] = baseImage
	inputs["build_key"] = BuildKey(key, claim)
	if err := gh.DispatchWorkflow(ctx, d.Build.Workflow, d.Branch, inputs); err != nil {
		return fmt.Errorf("dispatch %s on %s: %w", d.Build.Workflow, d.Branch, err)
	}
	return nil
}

// finish rolls deployment dep out, verifies it and sets its final status.
func (c *Controller) finish(ctx context.Context, repo Repo, d repoconfig.Distribution, dep Deployment) (Action, string) {
	gh := repo.GitHub
	log := zerolog.Ctx(ctx).With().Str("distribution", d.Name).Int64("deployment", dep.ID).Logger()
	since := dep.StateSince
	if dep.State != StateInProgress {
		first, err := startRollout(ctx, gh, dep)
		if err != nil {
			return ActionError, fmt.Sprintf("mark deployment %d in progress: %v", dep.ID, err)
		}
		if !first {
			// Another pass (another replica, whose build event came at the same time) marked it first and
			// rolls it out: a second rollout would dispatch the deploy workflow twice.
			return ActionBuilding, fmt.Sprintf("deployment %d is being rolled out by another pass", dep.ID)
		}
		since = c.now()
	}
	target, err := c.Target(gh, d)
	if err != nil {
		return ActionFailed, c.fail(ctx, repo, d, dep, "no rollout target: "+err.Error())
	}
	if _, dispatches := target.(*DeployWorkflow); dispatches && dep.State == StateInProgress && c.now().Sub(since) < rolloutTakeover {
		// The pass that marked it in progress moments ago is rolling it out: its deploy run is followed here
		// too once listed, but resuming before then could dispatch the deploy workflow a second time.
		listed, err := deployRunListed(ctx, gh, d, dep.ID)
		if err != nil {
			return ActionError, err.Error()
		}
		if !listed {
			return ActionBuilding, fmt.Sprintf("deployment %d is being rolled out by the pass that started it", dep.ID)
		}
	}
	if err := target.Rollout(ctx, d, dep.ID, dep.Payload.Image, since.Add(d.Deploy.Timeout)); err != nil {
		if ctx.Err() != nil {
			// Shutting down: leave the deployment in progress for the next pass (here or on another replica).
			return ActionInterrupt, err.Error()
		}
		return ActionFailed, c.fail(ctx, repo, d, dep, "rollout failed: "+err.Error())
	}
	from, to := dep.Payload.PreviousRef, dep.Payload.Ref
	var versions []Version
	if from != "" && from != to {
		if versions, err = gh.AddedVersions(ctx, from, to); err != nil {
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
	prs, err := gh.MergedPulls(ctx, d.Branch, from, to)
	if err != nil {
		log.Warn().Err(err).Msg("find the pull requests a deployment brought; none is told")
	}
	brought, err := versionsByPull(ctx, gh, prs, from, versions)
	if err != nil {
		return ActionError, fmt.Sprintf("list the versions each pull request of deployment %d added: %v", dep.ID, err)
	}
	for _, pr := range prs {
		body := liveComment(d, dep, brought[pr.Number])
		if err := gh.CommentOnce(ctx, pr.Number, marker("live", d.Name, dep.ID), body); err != nil {
			log.Warn().Err(err).Int("pr", pr.Number).Msg("tell a pull request its change is live")
		}
	}
	if err := gh.SetDeploymentState(ctx, dep.ID, StateSuccess, trim("live: "+dep.Payload.Image), d.Verify.Registry); err != nil {
		return ActionError, fmt.Sprintf("mark deployment %d successful: %v", dep.ID, err)
	}
	log.Info().Str("image", dep.Payload.Image).Int("versions", len(versions)).Msg("distribution deployed")
	return ActionDeployed, dep.Payload.Image
}

// startRollout marks dep in progress and reports whether this pass is the one to roll it out.
func startRollout(ctx context.Context, gh GitHub, dep Deployment) (bool, error) {
	description := "rolling out " + dep.Payload.Image
	if starter, ok := gh.(RolloutStarter); ok {
		return starter.StartRollout(ctx, dep.ID, description)
	}
	return true, gh.SetDeploymentState(ctx, dep.ID, StateInProgress, description, "")
}

// versionsByPull splits the versions a deployment added (from..) among the pull requests that brought them,
// taken in merge order: a pull request brought what its merge commit holds and the previous merge (or from)
// did not. A version added and removed again within the range is claimed by nobody.
func versionsByPull(ctx context.Context, gh GitHub, prs []MergedPull, from string, added []Version) (map[int][]Version, error) {
	out := map[int][]Version{}
	if len(prs) == 1 {
		out[prs[0].Number] = added
		return out, nil
	}
	live := map[Version]bool{}
	for _, v := range added {
		live[v] = true
	}
	prev := from
	for _, pr := range prs {
		vs, err := gh.AddedVersions(ctx, prev, pr.MergeSHA)
		if err != nil {
			return nil, fmt.Errorf("versions of #%d (%s..%s): %w", pr.Number, prev, pr.MergeSHA, err)
		}
		for _, v := range vs {
			if live[v] {
				out[pr.Number] = append(out[pr.Number], v)
			}
		}
		prev = pr.MergeSHA
	}
	return out, nil
}

// fail marks dep failed, tells the PRs that caused it what to fix, and returns reason.
//
// A failure no pull request could be told of because GitHub failed (an error, a timeout, a rate limit — not a
// refusal) is not made final: dep is left as it is, so the next pass meets the same failure (the failed run,
// the missed deadline, the rollout that does not come up) and tells it then; the comment carries a marker, so
// nobody is told twice. A build that could not even be dispatched is marked at once: no run will fail it
// again, and its claim would wait out runAppearDeadline instead; when its PRs could not be told, it is marked
// error rather than failure, and each pass that finds it so tries to tell them again.
func (c *Controller) fail(ctx context.Context, repo Repo, d repoconfig.Distribution, dep Deployment, reason string) string {
	return c.failing(ctx, repo, d, dep, reason, false)
}

func (c *Controller) failing(ctx context.Context, repo Repo, d repoconfig.Distribution, dep Deployment, reason string, markNow bool) string {
	gh := repo.GitHub
	log := zerolog.Ctx(ctx).With().Str("distribution", d.Name).Int64("deployment", dep.ID).Logger()
	log.Warn().Str("reason", reason).Msg("distribution rollout failed")
	told := true
	prs, err := gh.MergedPulls(ctx, d.Branch, dep.Payload.PreviousRef, dep.Payload.Ref)
	if err != nil {
		log.Warn().Err(err).Msg("find the pull requests a failed deployment brought; none is told")
		told = !retryable(err)
	}
	body := fmt.Sprintf("❌ **%s** was not rolled out: %s.\n\nNothing after it in the chain (%s) was rebuilt. "+
		"Fix the cause, then comment `/rebuild %s` (needs maintain permission) to build and roll it out again.\n\n%s",
		d.Name, reason, dependentsText(repo.Config, d.Name), d.Name, marker("failed", d.Name, dep.ID))
	for _, pr := range prs {
		if err := gh.CommentOnce(ctx, pr.Number, marker("failed", d.Name, dep.ID), body); err != nil {
			log.Warn().Err(err).Int("pr", pr.Number).Msg("report a failed rollout on a pull request")
			told = told && !retryable(err)
		}
	}
	if !told && !markNow {
		log.Warn().Msg("failure not final until the pull requests are told: the next pass meets it again and tells them")
		return reason
	}
	state := StateFailure
	if !told {
		state = StateError
		log.Warn().Msg("failure marked error until the pull requests are told: the next pass tells them")
	}
	if err := gh.SetDeploymentState(ctx, dep.ID, state, trim(reason), ""); err != nil {
		log.Error().Err(err).Msg("mark deployment failed")
	}
	return reason
}

// retryable reports whether a GitHub error may pass when the request is made again: anything but a refusal
// (a 4xx other than a rate limit).
func retryable(err error) bool {
	if rateLimited(err) {
		return true
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode >= http.StatusInternalServerError || er.Response.StatusCode == http.StatusTooManyRequests
	}
	return true // no answer: a timeout, a cut connection
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

// liveComment tells one pull request that the versions it brought are live.
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

// runOf returns the newest run building the deployment claim.
func runOf(runs []Run, claim int64) (Run, bool) {
	sorted := append([]Run(nil), runs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID > sorted[j].ID })
	for _, r := range sorted {
		if _, id, ok := buildKeyInTitle(r.Title); ok && id == claim {
			return r, true
		}
	}
	return Run{}, false
}

// ErrBusy is returned by Rebuild when the distribution or its base is being built or rolled out.
var ErrBusy = errors.New("a build or rollout is in flight")

// Rebuild starts a new build of distribution name at its desired state, even when that state was deployed or
// failed before; its dependents follow once it is deployed. It refuses while the distribution or its base is
// in flight (ErrBusy), so a retry never races the build it would replace; two /rebuild comments at once claim
// the same build and only the older claim is dispatched.
func (c *Controller) Rebuild(ctx context.Context, repo Repo, name string) (Key, error) {
	d, ok := repo.Config.DistributionByName(name)
	if !ok {
		return Key{}, fmt.Errorf("no distribution %q", name)
	}
	gh := repo.GitHub
	envs := []string{d.Name}
	if d.Base != "" {
		envs = append(envs, d.Base)
	}
	heads, err := gh.BranchHeads(ctx, []string{d.Branch})
	if err != nil {
		return Key{}, fmt.Errorf("read the head of %s: %w", d.Branch, err)
	}
	all, err := gh.Deployments(ctx, envs)
	if err != nil {
		return Key{}, fmt.Errorf("list the deployments of %s: %w", strings.Join(envs, " and "), err)
	}
	want := Key{Distribution: d.Name, Ref: heads[d.Branch]}
	if want.Ref == "" {
		return want, fmt.Errorf("branch %s does not exist: create it, or fix the distribution's branch in %s", d.Branch, repoconfig.Path)
	}
	var base *Deployment
	if d.Base != "" {
		if cur, ok := c.current(ctx, gh, all[d.Base]); ok && cur.InFlight() {
			return want, fmt.Errorf("%w: base %s is rolling out; %s follows by itself", ErrBusy, d.Base, name)
		}
		b, ok := lastSuccess(all[d.Base])
		if !ok {
			return want, fmt.Errorf("base %s has never been deployed: rebuild it first", d.Base)
		}
		base, want.BaseDeployment = &b, b.ID
	}
	if cur, ok := c.current(ctx, gh, all[d.Name]); ok && cur.InFlight() {
		return want, fmt.Errorf("%w: deployment %d of %s is building or rolling out", ErrBusy, cur.ID, name)
	}
	lastOK, _ := lastSuccess(all[d.Name])
	action, id, detail := c.claim(ctx, repo, d, want, base, lastOK.Payload.Ref, true, newest(all[d.Name]))
	switch action {
	case ActionDispatched:
		return want, nil
	case ActionBuilding, ActionWaiting:
		return want, fmt.Errorf("%w: %s", ErrBusy, detail)
	}
	return want, fmt.Errorf("deployment %d: %s", id, detail)
}
