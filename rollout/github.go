package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/storage"
)

// Client is the GitHub seam over go-github for one repository.
type Client struct {
	GH    *github.Client
	Owner string
	Repo  string
	// Cache holds git objects by SHA for AddedVersions; nil means no caching.
	Cache *storage.ObjectCache
	// States remembers the final states of deployments across passes; nil reads every state.
	States *StateCache
	// WriteSettle is how long after it was sent a status write whose answer was lost may still land; 0 means
	// DefaultWriteSettle.
	WriteSettle time.Duration
}

var _ GitHub = (*Client)(nil)

// deploymentsRead bounds how many deployments of one environment a pass looks at to find the last successful
// one; deploymentsReadAll is the page read for all environments at once.
const (
	deploymentsRead    = 10
	deploymentsReadAll = 100
)

// BranchHeads reads the heads of branches: one ref for one branch, else every branch in one matching-refs
// call (GitHub answers it unpaginated).
func (c *Client) BranchHeads(ctx context.Context, branches []string) (map[string]string, error) {
	out := map[string]string{}
	if len(branches) == 1 {
		ref, resp, err := c.GH.Git.GetRef(ctx, c.Owner, c.Repo, "heads/"+branches[0])
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get ref heads/%s: %w", branches[0], err)
		}
		out[branches[0]] = ref.GetObject().GetSHA()
		return out, nil
	}
	refs, _, err := c.GH.Git.ListMatchingRefs(ctx, c.Owner, c.Repo, &github.ReferenceListOptions{Ref: "heads"})
	if err != nil {
		return nil, fmt.Errorf("list the branch heads: %w", err)
	}
	want := map[string]bool{}
	for _, b := range branches {
		want[b] = true
	}
	for _, r := range refs {
		if b := strings.TrimPrefix(r.GetRef(), "refs/heads/"); want[b] {
			out[b] = r.GetObject().GetSHA()
		}
	}
	return out, nil
}

// Deployments lists the environments' newest deployments with their latest states, newest first: for each,
// its deploymentsRead newest ones, and further down to its first successful one. The few past that success
// are read so that one a late status write left showing in flight (which nobody rolls out any more) is seen
// and put back to rest (finalUnderneath, retireStale); their final states are cached, so they cost nothing
// while they do not change. Several environments are read from one page of the repository's deployments; an
// environment whose successful deployment lies past that page is read on its own.
func (c *Client) Deployments(ctx context.Context, environments []string) (map[string][]Deployment, error) {
	out := map[string][]Deployment{}
	if len(environments) == 1 {
		deps, err := c.environmentDeployments(ctx, environments[0])
		if err != nil {
			return nil, err
		}
		out[environments[0]] = deps
		return out, nil
	}
	list, _, err := c.GH.Repositories.ListDeployments(ctx, c.Owner, c.Repo, &github.DeploymentsListOptions{
		ListOptions: github.ListOptions{PerPage: deploymentsReadAll}})
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	want := map[string]bool{}
	for _, e := range environments {
		want[e] = true
	}
	succeeded := map[string]bool{}
	for _, d := range list {
		env := d.GetEnvironment()
		if !want[env] || (succeeded[env] && len(out[env]) >= deploymentsRead) {
			continue
		}
		dep, ok, err := c.deployment(ctx, d, env)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		out[env] = append(out[env], dep)
		succeeded[env] = succeeded[env] || dep.State == StateSuccess
	}
	for _, env := range environments {
		if succeeded[env] || len(list) < deploymentsReadAll {
			continue // found its last success, or the page held every deployment there is
		}
		deps, err := c.environmentDeployments(ctx, env)
		if err != nil {
			return nil, err
		}
		out[env] = deps
	}
	return out, nil
}

// environmentDeployments lists one environment's deploymentsRead newest deployments, and further, a page at
// a time, down to its first successful one (many failed or retired claims must not hide what runs), reading
// at most deploymentsReadAll.
func (c *Client) environmentDeployments(ctx context.Context, environment string) ([]Deployment, error) {
	var out []Deployment
	succeeded := false
	for page := 1; page*deploymentsRead <= deploymentsReadAll; page++ {
		list, resp, err := c.GH.Repositories.ListDeployments(ctx, c.Owner, c.Repo, &github.DeploymentsListOptions{
			Environment: environment, ListOptions: github.ListOptions{PerPage: deploymentsRead, Page: page}})
		if err != nil {
			return nil, fmt.Errorf("list deployments of %s: %w", environment, err)
		}
		for _, d := range list {
			dep, ok, err := c.deployment(ctx, d, environment)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			out = append(out, dep)
			succeeded = succeeded || dep.State == StateSuccess
		}
		if succeeded || len(list) < deploymentsRead || resp == nil || resp.NextPage == 0 {
			return out, nil
		}
	}
	return out, nil
}

// deployment reads one of the controller's deployments with its latest state; false when it is not one of
// the controller's deployments of environment.
func (c *Client) deployment(ctx context.Context, d *github.Deployment, environment string) (Deployment, bool, error) {
	dep := Deployment{ID: d.GetID(), Ref: d.GetRef(), Created: d.GetCreatedAt().Time}
	dep.StateSince = dep.Created
	if len(d.Payload) > 0 {
		if err := json.Unmarshal(d.Payload, &dep.Payload); err != nil {
			// Not one of ours (or damaged): it says nothing about what runs.
			return Deployment{}, false, nil
		}
	}
	if dep.Payload.Distribution != environment {
		return Deployment{}, false, nil
	}
	updated := d.GetUpdatedAt().Time
	if state, since, ok := c.States.get(dep.ID, updated); ok {
		dep.State, dep.StateSince = state, since
		return dep, true, nil
	}
	statuses, _, err := c.GH.Repositories.ListDeploymentStatuses(ctx, c.Owner, c.Repo, dep.ID, &github.ListOptions{PerPage: 1})
	if err != nil {
		return Deployment{}, false, fmt.Errorf("read the status of deployment %d: %w", dep.ID, err)
	}
	if len(statuses) > 0 { // GitHub lists statuses newest first.
		dep.State, dep.StateSince = statuses[0].GetState(), statuses[0].GetCreatedAt().Time
	}
	if dep.InFlight() && dep.State != "" {
		if dep, err = c.finalUnderneath(ctx, dep); err != nil {
			return Deployment{}, false, err
		}
	}
	c.States.put(dep.ID, updated, dep.State, dep.StateSince)
	return dep, true, nil
}

// finalUnderneath returns dep in the final state one of its statuses set, if any did, and sets that state
// again on GitHub. A final state is never left (a retry builds under a new claim), but a status write can land
// on top of it: a pass whose in-progress status reached GitHub late — after its request's deadline, or racing
// the replica that rolled the build out — leaves the deployment showing in flight, on GitHub and to every
// pass, with nobody rolling it out. Only an in-flight deployment pays this read.
func (c *Client) finalUnderneath(ctx context.Context, dep Deployment) (Deployment, error) {
	statuses, _, err := c.GH.Repositories.ListDeploymentStatuses(ctx, c.Owner, c.Repo, dep.ID, &github.ListOptions{PerPage: 100})
	if err != nil {
		return Deployment{}, fmt.Errorf("read the statuses of deployment %d: %w", dep.ID, err)
	}
	for _, st := range statuses { // newest first
		if final(st.GetState()) {
			if err := c.restate(ctx, dep.ID, st); err != nil {
				return Deployment{}, fmt.Errorf("under a late %s: %w", dep.State, err)
			}
			dep.State, dep.StateSince = st.GetState(), st.GetCreatedAt().Time
			return dep, nil
		}
	}
	return dep, nil
}

// StateCache remembers the final state (success, failure, error, inactive) of deployments, keyed by the
// deployment's updated_at, which GitHub moves with every new status: while it is unchanged, so is the state.
// An entry is trusted for stateTTL at most, so a state changed without moving updated_at is still read again.
// States in flight are never cached: a pass that finds one reads it afresh.
type StateCache struct {
	mu      sync.Mutex
	entries map[int64]stateEntry
	now     func() time.Time
}

type stateEntry struct {
	updated, since, stored time.Time
	state                  string
}

// stateTTL bounds how long a cached final state is trusted without reading it again.
const stateTTL = 10 * time.Minute

// stateSettle is how old a final state must be before it is cached. GitHub's updated_at counts whole
// seconds, so a status landing in the same second as the final one — a pass's late in-progress mark, racing
// the replica that finished the rollout — leaves it unchanged: a state cached at once would hide that mark,
// and the deployment would show in flight on GitHub until stateTTL passed. Once the second is over, every
// later status moves updated_at; the margin covers the clocks' skew.
const stateSettle = 5 * time.Second

// stateCacheMax bounds the entries kept; past it the cache starts over (it only saves calls).
const stateCacheMax = 10_000

// NewStateCache returns an empty cache.
func NewStateCache() *StateCache { return &StateCache{entries: map[int64]stateEntry{}, now: time.Now} }

func (s *StateCache) get(id int64, updated time.Time) (string, time.Time, bool) {
	if s == nil || updated.IsZero() {
		return "", time.Time{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	if !ok || !e.updated.Equal(updated) || s.now().Sub(e.stored) > stateTTL {
		return "", time.Time{}, false
	}
	return e.state, e.since, true
}

func (s *StateCache) put(id int64, updated time.Time, state string, since time.Time) {
	if s == nil || updated.IsZero() {
		return
	}
	switch state {
	case StateSuccess, StateFailure, StateError, StateInactive:
	default:
		return
	}
	if s.now().Sub(since) < stateSettle {
		return // still in its second: see stateSettle
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) >= stateCacheMax {
		s.entries = map[int64]stateEntry{}
	}
	s.entries[id] = stateEntry{updated: updated, since: since, stored: s.now(), state: state}
}

// CreateDeployment records a build. auto_merge false and required_contexts [] are needed on a channel
// branch: GitHub would otherwise try to merge the default branch into it, or wait for every status check,
// and answer 409.
func (c *Client) CreateDeployment(ctx context.Context, environment, ref string, p Payload) (Deployment, error) {
	d, _, err := c.GH.Repositories.CreateDeployment(ctx, c.Owner, c.Repo, &github.DeploymentRequest{
		Ref:              github.String(ref),
		Environment:      github.String(environment),
		AutoMerge:        github.Bool(false),
		RequiredContexts: &[]string{},
		Payload:          p,
		Description:      github.String(trim("storagebot build " + p.Key().String())),
		// Only the top of the chain faces users directly; the others are pre-release channels.
		ProductionEnvironment: github.Bool(p.Base == ""),
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("create deployment of %s at %s: %w", environment, ref, err)
	}
	return Deployment{ID: d.GetID(), Ref: ref, Payload: p, Created: d.GetCreatedAt().Time, StateSince: d.GetCreatedAt().Time}, nil
}

// SetDeploymentState adds a status.
func (c *Client) SetDeploymentState(ctx context.Context, id int64, state, description, envURL string) error {
	req := &github.DeploymentStatusRequest{State: github.String(state), Description: github.String(trim(description))}
	if envURL != "" {
		req.EnvironmentURL = github.String(envURL)
	}
	// A successful deployment makes the older ones inactive, so the environment shows one live build.
	req.AutoInactive = github.Bool(state == StateSuccess)
	if _, _, err := c.GH.Repositories.CreateDeploymentStatus(ctx, c.Owner, c.Repo, id, req); err != nil {
		return fmt.Errorf("set deployment %d to %s: %w", id, state, err)
	}
	return nil
}

var _ RolloutStarter = (*Client)(nil)

// StartRollout marks deployment id in progress and reports whether this pass's status is the deployment's
// first in-progress one. GitHub numbers statuses in the order it stores them, so of passes racing to roll out
// one build (each replica finding its build run done), exactly one sees its own status first.
func (c *Client) StartRollout(ctx context.Context, id int64, description string) (bool, error) {
	sent := time.Now()
	st, _, err := c.GH.Repositories.CreateDeploymentStatus(ctx, c.Owner, c.Repo, id, &github.DeploymentStatusRequest{
		State: github.String(StateInProgress), Description: github.String(trim(description)), AutoInactive: github.Bool(false)})
	if err != nil {
		err = fmt.Errorf("set deployment %d to %s: %w", id, StateInProgress, err)
		if ghclient.Unanswered(err) {
			err = errors.Join(err, c.settleLateMark(ctx, id, sent))
		}
		return false, err
	}
	statuses, _, err := c.GH.Repositories.ListDeploymentStatuses(ctx, c.Owner, c.Repo, id, &github.ListOptions{PerPage: 100})
	if err != nil {
		return false, fmt.Errorf("list the statuses of deployment %d: %w", id, err)
	}
	first := st.GetID()
	for _, s := range statuses {
		if s.GetState() == StateInProgress && s.GetID() < first {
			first = s.GetID()
		}
	}
	// The pass that rolled the build out may have finished it before this mark landed: the deployment is
	// done, and this mark must not leave it showing in flight (a status in the same second as the final one
	// does not even move updated_at, which the state cache trusts).
	for _, s := range statuses { // newest first
		if final(s.GetState()) && s.GetID() < st.GetID() {
			return false, c.restate(ctx, id, s)
		}
	}
	return first == st.GetID(), nil
}

// settleLateMark waits until an in-progress mark sent at sent, whose answer was lost, has landed or never will,
// then sets deployment id back to its final state if the mark landed on top of it. The mark may land after the
// replica that rolled the build out marked it final; nothing would then put it back (GitHub sends no
// deployment_status event a pass waits for, and the deployment may no longer be the one a pass reads), and
// the environment would show a rollout in progress that nobody does.
func (c *Client) settleLateMark(ctx context.Context, id int64, sent time.Time) error {
	settle := c.WriteSettle
	if settle <= 0 {
		settle = DefaultWriteSettle
	}
	wait := time.NewTimer(time.Until(sent.Add(settle)))
	defer wait.Stop()
	select {
	case <-ctx.Done():
		return nil // stopping: the next pass reads the deployment and puts it back (finalUnderneath)
	case <-wait.C:
	}
	statuses, _, err := c.GH.Repositories.ListDeploymentStatuses(ctx, c.Owner, c.Repo, id, &github.ListOptions{PerPage: 100})
	if err != nil {
		return fmt.Errorf("list the statuses of deployment %d after an unanswered in-progress mark: %w", id, err)
	}
	if len(statuses) == 0 || final(statuses[0].GetState()) {
		return nil
	}
	for _, st := range statuses[1:] { // newest first
		if final(st.GetState()) {
			return c.restate(ctx, id, st)
		}
	}
	return nil
}

// final reports whether a deployment state is never left.
func final(state string) bool {
	switch state {
	case StateSuccess, StateFailure, StateError, StateInactive:
		return true
	}
	return false
}

// restate sets deployment id back to the final status st, which a later status covered.
func (c *Client) restate(ctx context.Context, id int64, st *github.DeploymentStatus) error {
	req := &github.DeploymentStatusRequest{State: github.String(st.GetState()), Description: github.String(st.GetDescription()),
		AutoInactive: github.Bool(false)} // the deployments after it are not this one's to retire
	if u := st.GetEnvironmentURL(); u != "" {
		req.EnvironmentURL = github.String(u)
	}
	if _, _, err := c.GH.Repositories.CreateDeploymentStatus(ctx, c.Owner, c.Repo, id, req); err != nil {
		return fmt.Errorf("set deployment %d back to %s: %w", id, st.GetState(), err)
	}
	return nil
}

// DispatchWorkflow triggers workflow_dispatch. GitHub answers 204 without the run; the run is found later
// by the build key in its name.
func (c *Client) DispatchWorkflow(ctx context.Context, workflow, ref string, inputs map[string]string) error {
	in := make(map[string]interface{}, len(inputs))
	for k, v := range inputs {
		in[k] = v
	}
	_, err := c.GH.Actions.CreateWorkflowDispatchEventByFileName(ctx, c.Owner, c.Repo, workflow,
		github.CreateWorkflowDispatchEventRequest{Ref: ref, Inputs: in})
	var ge *github.ErrorResponse
	if errors.As(err, &ge) && ge.Response != nil && ge.Response.StatusCode == http.StatusNotFound {
		return fmt.Errorf("workflow .github/workflows/%s was not found on %s: add it there, or fix build.workflow in .github/storagebot.yml: %w", workflow, ref, err)
	}
	if errors.As(err, &ge) && ge.Response != nil && ge.Response.StatusCode == http.StatusUnprocessableEntity {
		return fmt.Errorf("workflow %s refused the dispatch (it needs a workflow_dispatch trigger declaring the inputs distribution, ref, base_image and build_key): %w", workflow, err)
	}
	return err
}

// runJSON is a workflow run as GitHub returns it; go-github v50 lacks display_title.
type runJSON struct {
	ID           int64     `json:"id"`
	DisplayTitle string    `json:"display_title"`
	HeadSHA      string    `json:"head_sha"`
	Status       string    `json:"status"`
	Conclusion   string    `json:"conclusion"`
	CreatedAt    time.Time `json:"created_at"`
	HTMLURL      string    `json:"html_url"`
}

// WorkflowRuns lists the workflow's newest workflow_dispatch runs on branch.
func (c *Client) WorkflowRuns(ctx context.Context, workflow, branch string) ([]Run, error) {
	u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/runs?event=workflow_dispatch&branch=%s&per_page=30",
		c.Owner, c.Repo, workflow, branch)
	req, err := c.GH.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	var body struct {
		WorkflowRuns []runJSON `json:"workflow_runs"`
	}
	if _, err := c.GH.Do(ctx, req, &body); err != nil {
		var ge *github.ErrorResponse
		if errors.As(err, &ge) && ge.Response != nil && ge.Response.StatusCode == http.StatusNotFound {
			return nil, nil // no such workflow yet: no runs; dispatching it reports the missing file
		}
		return nil, fmt.Errorf("list runs of %s: %w", workflow, err)
	}
	out := make([]Run, 0, len(body.WorkflowRuns))
	for _, r := range body.WorkflowRuns {
		out = append(out, Run{ID: r.ID, Title: r.DisplayTitle, HeadSHA: r.HeadSHA, Status: r.Status,
			Conclusion: r.Conclusion, Created: r.CreatedAt, URL: r.HTMLURL})
	}
	return out, nil
}

// MergedPulls finds the PRs merged into branch whose merge commits lie in from..to, in the order they merged.
func (c *Client) MergedPulls(ctx context.Context, branch, from, to string) ([]MergedPull, error) {
	if from == "" || from == to {
		return nil, nil
	}
	cmp, _, err := c.GH.Repositories.CompareCommits(ctx, c.Owner, c.Repo, from, to, &github.ListOptions{PerPage: 100})
	if err != nil {
		return nil, fmt.Errorf("compare %s...%s: %w", from, to, err)
	}
	// GitHub lists the compared commits oldest first: a merge's position there is its order on the branch.
	position := map[string]int{}
	for i, commit := range cmp.Commits {
		position[commit.GetSHA()] = i + 1
	}
	pulls, _, err := c.GH.PullRequests.List(ctx, c.Owner, c.Repo, &github.PullRequestListOptions{
		State: "closed", Base: branch, Sort: "updated", Direction: "desc", ListOptions: github.ListOptions{PerPage: 100}})
	if err != nil {
		return nil, fmt.Errorf("list pull requests merged into %s: %w", branch, err)
	}
	var merged []*github.PullRequest
	for _, p := range pulls {
		if p.MergedAt != nil && position[p.GetMergeCommitSHA()] > 0 {
			merged = append(merged, p)
		}
	}
	sort.SliceStable(merged, func(i, j int) bool {
		return position[merged[i].GetMergeCommitSHA()] < position[merged[j].GetMergeCommitSHA()]
	})
	out := make([]MergedPull, len(merged))
	for i, p := range merged {
		out[i] = MergedPull{Number: p.GetNumber(), MergeSHA: p.GetMergeCommitSHA()}
	}
	return out, nil
}

// AddedVersions diffs the packages/ trees of from and to top-down.
func (c *Client) AddedVersions(ctx context.Context, from, to string) ([]Version, error) {
	r := storage.NewGitHubReader(c.GH, c.Owner, c.Repo, c.Cache)
	a, err := r.ResolveRevision(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", from, err)
	}
	b, err := r.ResolveRevision(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", to, err)
	}
	delta, err := storage.DiffVersions(ctx, r, a.TreeSHA, b.TreeSHA)
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, v := range delta.Versions {
		if v.OldSHA == "" && v.NewSHA != "" && v.NewType == storage.TypeTree {
			out = append(out, Version{Package: v.Package, Version: v.Version})
		}
	}
	return out, nil
}

// CommentOnce posts body unless a bot comment on number already carries marker.
func (c *Client) CommentOnce(ctx context.Context, number int, marker, body string) error {
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		comments, resp, err := c.GH.Issues.ListComments(ctx, c.Owner, c.Repo, number, opts)
		if err != nil {
			return fmt.Errorf("list comments of #%d: %w", number, err)
		}
		for _, cm := range comments {
			if cm.GetUser().GetType() == "Bot" && strings.Contains(cm.GetBody(), marker) {
				return nil
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if _, _, err := c.GH.Issues.CreateComment(ctx, c.Owner, c.Repo, number, &github.IssueComment{Body: &body}); err != nil {
		return fmt.Errorf("comment on #%d: %w", number, err)
	}
	return nil
}
