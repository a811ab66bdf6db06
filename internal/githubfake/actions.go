package githubfake

import (
	"fmt"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// WorkflowRun is a snapshot of a GitHub Actions run of the fake.
type WorkflowRun struct {
	ID           int64
	Workflow     string // file name under .github/workflows
	Branch       string
	HeadSHA      string
	Event        string
	DisplayTitle string
	Status       string
	Conclusion   string
	Inputs       map[string]string
}

// actionsState is a repository's workflows and runs.
type actionsState struct {
	workflowIDs map[string]int64 // file name → workflow id, assigned when first seen
	runs        []*runState      // oldest first
	runNumbers  map[string]int
}

type runState struct {
	id, workflowID    int64
	workflow          string
	name, title       string
	branch, sha       string
	event             string
	status            string
	conclusion        string
	number            int
	inputs            map[string]string
	created, updated  time.Time
	actor             string
	started           time.Time
	checkSuiteID      int64
	workflowCreatedAt time.Time
}

func (r *Repo) actionsLocked() *actionsState {
	if r.actions == nil {
		r.actions = &actionsState{workflowIDs: map[string]int64{}, runNumbers: map[string]int{}}
	}
	return r.actions
}

// workflowDef is the part of a workflow file the fake reads.
type workflowDef struct {
	name     string
	runName  string
	dispatch bool
	inputs   map[string]bool // input → required
}

// readWorkflow parses .github/workflows/<file> at ref; errNotFound when absent.
func (r *Repo) readWorkflow(ref, file string) (workflowDef, error) {
	data, err := r.readFileLocked(ref, ".github/workflows/"+file)
	if err != nil {
		return workflowDef{}, errNotFound
	}
	var doc struct {
		Name    string    `yaml:"name"`
		RunName string    `yaml:"run-name"`
		On      yaml.Node `yaml:"on"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return workflowDef{}, errorf(http.StatusUnprocessableEntity, "Invalid workflow file: %v", err)
	}
	def := workflowDef{name: doc.Name, runName: doc.RunName, inputs: map[string]bool{}}
	if def.name == "" {
		def.name = ".github/workflows/" + file
	}
	on := &doc.On
	switch on.Kind {
	case yaml.ScalarNode:
		def.dispatch = on.Value == "workflow_dispatch"
	case yaml.SequenceNode:
		for _, n := range on.Content {
			def.dispatch = def.dispatch || n.Value == "workflow_dispatch"
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(on.Content); i += 2 {
			if on.Content[i].Value != "workflow_dispatch" {
				continue
			}
			def.dispatch = true
			var wd struct {
				Inputs map[string]struct {
					Required bool `yaml:"required"`
				} `yaml:"inputs"`
			}
			if err := on.Content[i+1].Decode(&wd); err == nil {
				for name, in := range wd.Inputs {
					def.inputs[name] = in.Required
				}
			}
		}
	}
	return def, nil
}

var inputExpr = regexp.MustCompile(`\$\{\{\s*(?:github\.event\.)?inputs\.([A-Za-z0-9_-]+)\s*\}\}`)

// maxDispatchInputs is GitHub's limit on workflow_dispatch inputs per request.
const maxDispatchInputs = 10

// dispatchWorkflow answers POST …/actions/workflows/{workflow_id}/dispatches as GitHub does: 204 and no
// body (the run is not returned), 404 for a workflow file that does not exist at ref, 422 for a workflow
// without a workflow_dispatch trigger or with inputs it does not declare.
func (s *Server) dispatchWorkflow(c *call) (int, any, error) {
	r := c.repo
	var in struct {
		Ref    *string        `json:"ref"`
		Inputs map[string]any `json:"inputs"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Ref == nil || *in.Ref == "" {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Invalid request.\n\n\"ref\" wasn't supplied.")
	}
	ref := strings.TrimPrefix(*in.Ref, "refs/heads/")
	sha, ok := r.resolve(ref)
	if !ok {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "No ref found for: %s", *in.Ref)
	}
	file := path.Base(c.params["workflow_id"])
	def, err := r.readWorkflow(sha.String(), file)
	if err != nil {
		return 0, nil, err
	}
	if !def.dispatch {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Workflow does not have 'workflow_dispatch' trigger")
	}
	if len(in.Inputs) > maxDispatchInputs {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Invalid request.\n\nNo more than %d properties are allowed; %d were supplied.", maxDispatchInputs, len(in.Inputs))
	}
	inputs := map[string]string{}
	var unexpected []string
	for k, v := range in.Inputs {
		if _, ok := def.inputs[k]; !ok {
			unexpected = append(unexpected, k)
			continue
		}
		str, isStr := v.(string)
		if !isStr {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "Invalid request.\n\nFor 'properties/%s', %v is not a string.", k, v)
		}
		inputs[k] = str
	}
	if len(unexpected) > 0 {
		sort.Strings(unexpected)
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Unexpected inputs provided: [%s]", strings.Join(unexpected, ", "))
	}
	for name, required := range def.inputs {
		if _, ok := inputs[name]; required && !ok {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "Required input '%s' not provided", name)
		}
	}
	a := r.actionsLocked()
	if _, ok := a.workflowIDs[file]; !ok {
		a.workflowIDs[file] = s.newID()
	}
	a.runNumbers[file]++
	now := time.Now().UTC().Truncate(time.Second)
	title := def.name
	if def.runName != "" {
		title = inputExpr.ReplaceAllStringFunc(def.runName, func(m string) string {
			return inputs[inputExpr.FindStringSubmatch(m)[1]]
		})
	}
	run := &runState{id: s.newID(), workflowID: a.workflowIDs[file], workflow: file, name: def.name, title: title,
		branch: ref, sha: sha.String(), event: "workflow_dispatch", status: "queued", number: a.runNumbers[file],
		inputs: inputs, created: now, updated: now, started: now, actor: appSlug + "[bot]", checkSuiteID: s.newID(),
		workflowCreatedAt: r.created}
	a.runs = append(a.runs, run)
	c.events = append(c.events, r.workflowRunEvent(run, "requested"))
	return http.StatusNoContent, nil, nil
}

// listWorkflowRuns answers GET …/actions/workflows/{workflow_id}/runs, newest first, filtered by event,
// branch and status.
func (s *Server) listWorkflowRuns(c *call) (int, any, error) {
	r := c.repo
	file := path.Base(c.params["workflow_id"])
	a := r.actionsLocked()
	if _, ok := a.workflowIDs[file]; !ok {
		if _, err := r.readWorkflow(r.defaultBranch, file); err != nil {
			return 0, nil, err
		}
	}
	q := c.r.URL.Query()
	var items []any
	for i := len(a.runs) - 1; i >= 0; i-- {
		run := a.runs[i]
		if run.workflow != file || (q.Get("event") != "" && q.Get("event") != run.event) ||
			(q.Get("branch") != "" && q.Get("branch") != run.branch) ||
			(q.Get("status") != "" && q.Get("status") != run.status && q.Get("status") != run.conclusion) {
			continue
		}
		items = append(items, r.runJSON(run))
	}
	total := len(items)
	return http.StatusOK, map[string]any{"total_count": total, "workflow_runs": nonNil(paginate(c, items, 30, 100))}, nil
}

func nonNil(items []any) []any {
	if items == nil {
		return []any{}
	}
	return items
}

// getWorkflowRun answers GET …/actions/runs/{run_id}.
func (s *Server) getWorkflowRun(c *call) (int, any, error) {
	id, err := c.intParam("run_id")
	if err != nil {
		return 0, nil, err
	}
	for _, run := range c.repo.actionsLocked().runs {
		if run.id == id {
			return http.StatusOK, c.repo.runJSON(run), nil
		}
	}
	return 0, nil, errNotFound
}

// WorkflowRuns are snapshots of the repository's runs, oldest first.
func (r *Repo) WorkflowRuns() []WorkflowRun {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []WorkflowRun
	for _, run := range r.actionsLocked().runs {
		in := map[string]string{}
		for k, v := range run.inputs {
			in[k] = v
		}
		out = append(out, WorkflowRun{ID: run.id, Workflow: run.workflow, Branch: run.branch, HeadSHA: run.sha,
			Event: run.event, DisplayTitle: run.title, Status: run.status, Conclusion: run.conclusion, Inputs: in})
	}
	return out
}

// StartRun moves a queued run to in_progress and emits workflow_run "in_progress".
func (r *Repo) StartRun(id int64) error {
	return r.changeRun(id, "in_progress", "", "in_progress")
}

// CompleteRun finishes a run with conclusion (success, failure, cancelled, timed_out, …) and emits
// workflow_run "completed", as GitHub does when the last job ends.
func (r *Repo) CompleteRun(id int64, conclusion string) error {
	return r.changeRun(id, "completed", conclusion, "completed")
}

func (r *Repo) changeRun(id int64, status, conclusion, action string) error {
	r.s.mu.Lock()
	var ev event
	found := false
	for _, run := range r.actionsLocked().runs {
		if run.id != id {
			continue
		}
		if run.status == "completed" {
			r.s.mu.Unlock()
			return fmt.Errorf("run %d already completed", id)
		}
		run.status, run.conclusion = status, conclusion
		run.updated = time.Now().UTC().Truncate(time.Second)
		ev, found = r.workflowRunEvent(run, action), true
	}
	r.s.mu.Unlock()
	if !found {
		return errNotFound
	}
	r.s.emit([]event{ev})
	return nil
}

// repoLiteKeys are the repository fields of GitHub's repository-lite shape (workflow runs carry it).
var repoLiteKeys = []string{"archive_url", "assignees_url", "blobs_url", "branches_url", "collaborators_url",
	"comments_url", "commits_url", "compare_url", "contents_url", "contributors_url", "deployments_url",
	"description", "downloads_url", "events_url", "fork", "forks_url", "full_name", "git_commits_url",
	"git_refs_url", "git_tags_url", "hooks_url", "html_url", "id", "issue_comment_url", "issue_events_url",
	"issues_url", "keys_url", "labels_url", "languages_url", "merges_url", "milestones_url", "name", "node_id",
	"notifications_url", "owner", "private", "pulls_url", "releases_url", "stargazers_url", "statuses_url",
	"subscribers_url", "subscription_url", "tags_url", "teams_url", "trees_url", "url"}

func (r *Repo) repositoryLiteJSON() map[string]any {
	full := r.repositoryJSON()
	out := make(map[string]any, len(repoLiteKeys))
	for _, k := range repoLiteKeys {
		out[k] = full[k]
	}
	return out
}

func (r *Repo) runJSON(run *runState) map[string]any {
	api := r.apiURL() + fmt.Sprintf("/actions/runs/%d", run.id)
	head := map[string]any{"id": run.sha, "tree_id": run.sha, "message": "", "timestamp": isoTime(run.created),
		"author":    map[string]any{"name": fakeAuthor.name, "email": fakeAuthor.email},
		"committer": map[string]any{"name": fakeAuthor.name, "email": fakeAuthor.email}}
	if cm, err := r.commitAt(run.sha); err == nil {
		head["tree_id"], head["message"], head["timestamp"] = cm.TreeHash.String(), cm.Message, isoTime(cm.Committer.When)
		head["author"] = map[string]any{"name": cm.Author.Name, "email": cm.Author.Email}
		head["committer"] = map[string]any{"name": cm.Committer.Name, "email": cm.Committer.Email}
	}
	var conclusion any
	if run.conclusion != "" {
		conclusion = run.conclusion
	}
	lite := r.repositoryLiteJSON()
	return map[string]any{
		"id": run.id, "node_id": nodeID("WFR_", run.id), "name": run.name, "display_title": run.title,
		"path": ".github/workflows/" + run.workflow, "head_branch": run.branch, "head_sha": run.sha,
		"run_number": run.number, "run_attempt": 1, "event": run.event, "status": run.status, "conclusion": conclusion,
		"workflow_id": run.workflowID, "check_suite_id": run.checkSuiteID, "check_suite_node_id": nodeID("CS_", run.checkSuiteID),
		"url": api, "html_url": r.htmlURL() + fmt.Sprintf("/actions/runs/%d", run.id),
		"jobs_url": api + "/jobs", "logs_url": api + "/logs", "artifacts_url": api + "/artifacts",
		"cancel_url": api + "/cancel", "rerun_url": api + "/rerun", "check_suite_url": r.apiURL() + fmt.Sprintf("/check-suites/%d", run.checkSuiteID),
		"workflow_url":         r.apiURL() + fmt.Sprintf("/actions/workflows/%d", run.workflowID),
		"previous_attempt_url": nil, "pull_requests": []any{}, "created_at": isoTime(run.created),
		"updated_at": isoTime(run.updated), "run_started_at": isoTime(run.started),
		"actor": r.s.userJSON(run.actor), "triggering_actor": r.s.userJSON(run.actor),
		"head_commit": head, "repository": lite, "head_repository": lite,
	}
}

func (r *Repo) workflowJSON(run *runState) map[string]any {
	p := ".github/workflows/" + run.workflow
	return map[string]any{
		"id": run.workflowID, "node_id": nodeID("W_", run.workflowID), "name": run.name, "path": p, "state": "active",
		"created_at": isoTime(run.workflowCreatedAt), "updated_at": isoTime(run.workflowCreatedAt),
		"url":       r.apiURL() + fmt.Sprintf("/actions/workflows/%d", run.workflowID),
		"html_url":  r.htmlURL() + "/blob/" + r.defaultBranch + "/" + p,
		"badge_url": r.htmlURL() + "/workflows/" + run.workflow + "/badge.svg",
	}
}

// workflowRunEvent builds a workflow_run webhook. Callers hold s.mu.
func (r *Repo) workflowRunEvent(run *runState, action string) event {
	return r.newEvent("workflow_run", action, run.actor, map[string]any{
		"workflow": r.workflowJSON(run), "workflow_run": r.runJSON(run),
	})
}
