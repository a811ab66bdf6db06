package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/storage"
)

// Client is the GitHub seam over go-github for one repository.
type Client struct {
	GH    *github.Client
	Owner string
	Repo  string
	// Cache holds git objects by SHA for AddedVersions; nil means no caching.
	Cache *storage.ObjectCache
}

var _ GitHub = (*Client)(nil)

// deploymentsRead bounds how many deployments a pass looks at to find the last successful one.
const deploymentsRead = 10

// BranchHead reads the branch's head commit.
func (c *Client) BranchHead(ctx context.Context, branch string) (string, error) {
	ref, _, err := c.GH.Git.GetRef(ctx, c.Owner, c.Repo, "heads/"+branch)
	if err != nil {
		return "", fmt.Errorf("get ref heads/%s: %w", branch, err)
	}
	return ref.GetObject().GetSHA(), nil
}

// Deployments lists the environment's newest deployments with their latest status, stopping at the first
// successful one (older ones do not matter to a pass).
func (c *Client) Deployments(ctx context.Context, environment string) ([]Deployment, error) {
	list, _, err := c.GH.Repositories.ListDeployments(ctx, c.Owner, c.Repo, &github.DeploymentsListOptions{
		Environment: environment, ListOptions: github.ListOptions{PerPage: deploymentsRead}})
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s: %w", environment, err)
	}
	var out []Deployment
	for _, d := range list {
		dep := Deployment{ID: d.GetID(), Ref: d.GetRef(), Created: d.GetCreatedAt().Time}
		dep.StateSince = dep.Created
		if len(d.Payload) > 0 {
			if err := json.Unmarshal(d.Payload, &dep.Payload); err != nil {
				// Not one of ours (or damaged): it says nothing about what runs.
				continue
			}
		}
		if dep.Payload.Distribution != environment {
			continue
		}
		statuses, _, err := c.GH.Repositories.ListDeploymentStatuses(ctx, c.Owner, c.Repo, dep.ID, &github.ListOptions{PerPage: 1})
		if err != nil {
			return nil, fmt.Errorf("read the status of deployment %d: %w", dep.ID, err)
		}
		if len(statuses) > 0 { // GitHub lists statuses newest first.
			dep.State, dep.StateSince = statuses[0].GetState(), statuses[0].GetCreatedAt().Time
		}
		out = append(out, dep)
		if dep.State == StateSuccess {
			break
		}
	}
	return out, nil
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

// MergedPulls finds the PRs merged into branch whose merge commits lie in from..to.
func (c *Client) MergedPulls(ctx context.Context, branch, from, to string) ([]int, error) {
	if from == "" || from == to {
		return nil, nil
	}
	cmp, _, err := c.GH.Repositories.CompareCommits(ctx, c.Owner, c.Repo, from, to, &github.ListOptions{PerPage: 100})
	if err != nil {
		return nil, fmt.Errorf("compare %s...%s: %w", from, to, err)
	}
	in := map[string]bool{}
	for _, commit := range cmp.Commits {
		in[commit.GetSHA()] = true
	}
	pulls, _, err := c.GH.PullRequests.List(ctx, c.Owner, c.Repo, &github.PullRequestListOptions{
		State: "closed", Base: branch, Sort: "updated", Direction: "desc", ListOptions: github.ListOptions{PerPage: 100}})
	if err != nil {
		return nil, fmt.Errorf("list pull requests merged into %s: %w", branch, err)
	}
	var out []int
	for _, p := range pulls {
		if p.MergedAt != nil && in[p.GetMergeCommitSHA()] {
			out = append(out, p.GetNumber())
		}
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
