package githubfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// readFileLocked reads a file at ref; callers hold s.mu.
func (r *Repo) readFileLocked(ref, p string) ([]byte, error) {
	e, err := r.entryAt(ref, p)
	if err != nil {
		return nil, err
	}
	if e.Mode == filemode.Dir {
		return nil, fmt.Errorf("read %s at %s: is a directory", p, ref)
	}
	return readBlob(r.st, e.Hash)
}

// Deployment is a snapshot of a GitHub Deployment of the fake with its statuses, oldest first.
type Deployment struct {
	ID          int64
	Ref, SHA    string
	Environment string
	Payload     json.RawMessage
	States      []string
	// StatusIDs are the IDs of States, in the same order. Every ID the fake hands out (deployments, their
	// statuses, workflow runs) comes from one counter, so comparing them orders those writes in time.
	StatusIDs []int64
}

type deploymentState struct {
	id                    int64
	ref, sha, task        string
	environment           string
	description           string
	payload               json.RawMessage
	creator               string
	created, updated      time.Time
	transient, production bool
	statuses              []*deploymentStatusState
	originalEnvironment   string
}

type deploymentStatusState struct {
	id                  int64
	state, description  string
	environmentURL, log string
	creator             string
	created             time.Time
}

// deploymentStates GitHub accepts in POST …/deployments/{id}/statuses.
var deploymentStates = map[string]bool{"error": true, "failure": true, "inactive": true, "in_progress": true,
	"queued": true, "pending": true, "success": true}

// maxStatusDescription is GitHub's limit on a deployment status description.
const maxStatusDescription = 140

// createDeployment answers POST …/deployments. As on GitHub, auto_merge defaults to true (merge the default
// branch into ref when ref lacks it: a storage channel branch never has it, so that is a 409 here) and an
// absent required_contexts means every status check on the commit must have passed (409 otherwise).
func (s *Server) createDeployment(c *call) (int, any, error) {
	r := c.repo
	var in struct {
		Ref                   string          `json:"ref"`
		Task                  *string         `json:"task"`
		AutoMerge             *bool           `json:"auto_merge"`
		RequiredContexts      *[]string       `json:"required_contexts"`
		Payload               json.RawMessage `json:"payload"`
		Environment           *string         `json:"environment"`
		Description           *string         `json:"description"`
		TransientEnvironment  bool            `json:"transient_environment"`
		ProductionEnvironment *bool           `json:"production_environment"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Ref == "" {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Invalid request.\n\n\"ref\" wasn't supplied.")
	}
	sha, ok := r.resolve(in.Ref)
	if !ok {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "No ref found for: %s", in.Ref)
	}
	if in.AutoMerge == nil || *in.AutoMerge {
		if def, ok := r.branches[r.defaultBranch]; ok && def != sha && !r.isAncestorLocked(def.String(), sha.String()) {
			return 0, nil, errorf(http.StatusConflict, "Conflict merging %s into %s.", r.defaultBranch, in.Ref)
		}
	}
	if in.RequiredContexts == nil {
		if failing := r.unsuccessfulChecksLocked(sha.String()); failing != "" {
			return 0, nil, errorf(http.StatusConflict, "Conflict: Commit status checks failed for %s.\n\n%s", in.Ref, failing)
		}
	}
	payload := in.Payload
	if len(payload) == 0 || string(payload) == "null" {
		payload = json.RawMessage("{}")
	}
	if payload[0] == '"' { // GitHub accepts the payload as a JSON string holding JSON, and stores the object.
		var str string
		if err := json.Unmarshal(payload, &str); err != nil || !json.Valid([]byte(str)) {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "Invalid request.\n\npayload is not valid JSON.")
		}
		payload = json.RawMessage(str)
	}
	env := "production"
	if in.Environment != nil && *in.Environment != "" {
		env = *in.Environment
	}
	task := "deploy"
	if in.Task != nil && *in.Task != "" {
		task = *in.Task
	}
	now := time.Now().UTC().Truncate(time.Second)
	d := &deploymentState{id: s.newID(), ref: in.Ref, sha: sha.String(), task: task, environment: env,
		originalEnvironment: env, payload: payload, creator: appSlug + "[bot]", created: now, updated: now,
		transient: in.TransientEnvironment, production: env == "production"}
	if in.Description != nil {
		d.description = *in.Description
	}
	if in.ProductionEnvironment != nil {
		d.production = *in.ProductionEnvironment
	}
	r.deployments = append(r.deployments, d)
	return http.StatusCreated, r.deploymentJSON(d), nil
}

// isAncestorLocked reports whether commit a is reachable from b.
func (r *Repo) isAncestorLocked(a, b string) bool {
	seen := map[string]bool{}
	queue := []string{b}
	for len(queue) > 0 && len(seen) < 100_000 {
		cur := queue[0]
		queue = queue[1:]
		if cur == a {
			return true
		}
		if seen[cur] {
			continue
		}
		seen[cur] = true
		cm, err := r.commitAt(cur)
		if err != nil {
			continue
		}
		for _, p := range cm.ParentHashes {
			queue = append(queue, p.String())
		}
	}
	return false
}

// unsuccessfulChecksLocked names the check runs on sha that did not succeed ("" when none).
func (r *Repo) unsuccessfulChecksLocked(sha string) string {
	var out string
	for _, id := range r.checkOrder {
		cr := r.checkRuns[id]
		if cr == nil || cr.HeadSHA != sha {
			continue
		}
		if cr.Conclusion != "success" && cr.Conclusion != "neutral" && cr.Conclusion != "skipped" {
			out += fmt.Sprintf("%s: %s\n", cr.Name, nonEmpty(cr.Conclusion, cr.Status))
		}
	}
	return out
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// listDeployments answers GET …/deployments, newest first, filtered by sha, ref, task and environment.
func (s *Server) listDeployments(c *call) (int, any, error) {
	r := c.repo
	q := c.r.URL.Query()
	var items []any
	for i := len(r.deployments) - 1; i >= 0; i-- {
		d := r.deployments[i]
		if (q.Get("sha") != "" && q.Get("sha") != d.sha) || (q.Get("ref") != "" && q.Get("ref") != d.ref) ||
			(q.Get("task") != "" && q.Get("task") != d.task) || (q.Get("environment") != "" && q.Get("environment") != d.environment) {
			continue
		}
		items = append(items, r.deploymentJSON(d))
	}
	return http.StatusOK, nonNil(paginate(c, items, 30, 100)), nil
}

func (r *Repo) deploymentParam(c *call) (*deploymentState, error) {
	id, err := c.intParam("deployment_id")
	if err != nil {
		return nil, err
	}
	for _, d := range r.deployments {
		if d.id == id {
			return d, nil
		}
	}
	return nil, errNotFound
}

// getDeployment answers GET …/deployments/{deployment_id}.
func (s *Server) getDeployment(c *call) (int, any, error) {
	d, err := c.repo.deploymentParam(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c.repo.deploymentJSON(d), nil
}

// createDeploymentStatus answers POST …/deployments/{deployment_id}/statuses and emits deployment_status
// "created". auto_inactive (default true) marks the environment's prior deployments (created before this
// one) inactive on success, as GitHub documents it: "all prior non-transient ... deployments with the same
// repository and environment name ... only added to deployments that had a success state". A success landing
// late on an old deployment therefore leaves newer ones as they are.
func (s *Server) createDeploymentStatus(c *call) (int, any, error) {
	r := c.repo
	d, err := r.deploymentParam(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		State          string  `json:"state"`
		Description    string  `json:"description"`
		LogURL         string  `json:"log_url"`
		TargetURL      string  `json:"target_url"`
		EnvironmentURL string  `json:"environment_url"`
		Environment    *string `json:"environment"`
		AutoInactive   *bool   `json:"auto_inactive"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if !deploymentStates[in.State] {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: state %q is not included in the list", in.State)
	}
	if len([]rune(in.Description)) > maxStatusDescription {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: description is too long (maximum is %d characters)", maxStatusDescription)
	}
	now := time.Now().UTC().Truncate(time.Second)
	st := &deploymentStatusState{id: s.newID(), state: in.State, description: in.Description,
		environmentURL: in.EnvironmentURL, log: nonEmpty(in.LogURL, in.TargetURL), creator: appSlug + "[bot]", created: now}
	if in.Environment != nil && *in.Environment != "" {
		d.environment = *in.Environment
	}
	d.statuses = append(d.statuses, st)
	d.updated = now
	if in.State == "success" && (in.AutoInactive == nil || *in.AutoInactive) {
		for _, other := range r.deployments {
			if other.id < d.id && other.environment == d.environment && !other.transient && len(other.statuses) > 0 &&
				other.statuses[len(other.statuses)-1].state == "success" {
				other.statuses = append(other.statuses, &deploymentStatusState{id: s.newID(), state: "inactive",
					creator: st.creator, created: now})
			}
		}
	}
	if in.State != "inactive" { // the webhook schema has no inactive state; GitHub sends none for it
		c.events = append(c.events, r.newEvent("deployment_status", "created", st.creator, map[string]any{
			"deployment": r.deploymentJSON(d), "deployment_status": r.deploymentStatusJSON(d, st),
		}))
	}
	return http.StatusCreated, r.deploymentStatusJSON(d, st), nil
}

// listDeploymentStatuses answers GET …/deployments/{deployment_id}/statuses, newest first.
func (s *Server) listDeploymentStatuses(c *call) (int, any, error) {
	r := c.repo
	d, err := r.deploymentParam(c)
	if err != nil {
		return 0, nil, err
	}
	var items []any
	for i := len(d.statuses) - 1; i >= 0; i-- {
		items = append(items, r.deploymentStatusJSON(d, d.statuses[i]))
	}
	return http.StatusOK, nonNil(paginate(c, items, 30, 100)), nil
}

func (r *Repo) deploymentJSON(d *deploymentState) map[string]any {
	url := r.apiURL() + "/deployments/" + strconv.FormatInt(d.id, 10)
	return map[string]any{
		"url": url, "id": d.id, "node_id": nodeID("DE_", d.id), "sha": d.sha, "ref": d.ref, "task": d.task,
		"payload": d.payload, "original_environment": d.originalEnvironment, "environment": d.environment,
		"description": nullString(d.description), "creator": r.s.userJSON(d.creator),
		"created_at": isoTime(d.created), "updated_at": isoTime(d.updated), "statuses_url": url + "/statuses",
		"repository_url": r.apiURL(), "transient_environment": d.transient, "production_environment": d.production,
		"performed_via_github_app": nil,
	}
}

func (r *Repo) deploymentStatusJSON(d *deploymentState, st *deploymentStatusState) map[string]any {
	url := r.apiURL() + "/deployments/" + strconv.FormatInt(d.id, 10)
	m := map[string]any{
		"url": url + "/statuses/" + strconv.FormatInt(st.id, 10), "id": st.id, "node_id": nodeID("DES_", st.id),
		"state": st.state, "creator": r.s.userJSON(st.creator), "description": st.description,
		"environment": d.environment, "target_url": st.log,
		"created_at": isoTime(st.created), "updated_at": isoTime(st.created), "deployment_url": url,
		"repository_url": r.apiURL(), "performed_via_github_app": nil,
	}
	// GitHub leaves out the optional URLs that were never set.
	if st.log != "" {
		m["log_url"] = st.log
	}
	if st.environmentURL != "" {
		m["environment_url"] = st.environmentURL
	}
	return m
}

// Deployments are snapshots of the repository's deployments, oldest first.
func (r *Repo) Deployments() []Deployment {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []Deployment
	for _, d := range r.deployments {
		x := Deployment{ID: d.id, Ref: d.ref, SHA: d.sha, Environment: d.environment, Payload: append(json.RawMessage(nil), d.payload...)}
		for _, st := range d.statuses {
			x.States = append(x.States, st.state)
			x.StatusIDs = append(x.StatusIDs, st.id)
		}
		out = append(out, x)
	}
	return out
}
