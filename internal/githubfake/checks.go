package githubfake

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// CheckRun is a snapshot of a check run, with every annotation ever added to it.
type CheckRun struct {
	ID int64
	// AppID is the GitHub App that created the run, the only one that may update it.
	AppID       int64
	Name        string
	HeadSHA     string
	ExternalID  string
	DetailsURL  string
	Status      string // queued | in_progress | completed
	Conclusion  string
	Title       string
	Summary     string
	Text        string
	Annotations []Annotation
}

// Annotation is one check run annotation.
type Annotation struct {
	Path            string `json:"path"`
	StartLine       int    `json:"start_line"`
	EndLine         int    `json:"end_line"`
	AnnotationLevel string `json:"annotation_level"`
	Message         string `json:"message"`
	Title           string `json:"title,omitempty"`
	RawDetails      string `json:"raw_details,omitempty"`
}

type checkRunState struct {
	CheckRun
	appSlug            string
	started, completed time.Time
}

// OtherApp is a GitHub App other than the fake's own (an Actions job, an older registration of the same
// bot), for tests of runs the bot does not own.
type OtherApp struct {
	ID   int64
	Slug string
}

// CheckRunOptions describe a run CreateCheckRunAs writes.
type CheckRunOptions struct {
	Name, HeadSHA string
	Status        string // "" = completed when Conclusion is set, else queued
	Conclusion    string
	Title         string
	Summary       string
	Annotations   []Annotation
}

// CreateCheckRunAs creates a check run owned by app, as that App's own POST /check-runs would. It emits
// no webhook: GitHub tells only the owning App about its runs.
func (r *Repo) CreateCheckRunAs(app OtherApp, o CheckRunOptions) (CheckRun, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if app.ID == 0 || app.ID == r.s.appID {
		return CheckRun{}, fmt.Errorf("create check run as app %d: use another App's ID (the fake's own runs come from the REST API)", app.ID)
	}
	in := checkRunInput{Name: &o.Name, HeadSHA: o.HeadSHA}
	if o.Status != "" {
		in.Status = &o.Status
	}
	if o.Conclusion != "" {
		in.Conclusion = &o.Conclusion
	}
	if o.Summary != "" || o.Title != "" || len(o.Annotations) > 0 {
		in.Output = &checkRunOutput{Title: &o.Title, Summary: &o.Summary, Annotations: o.Annotations}
	}
	cr, err := r.createCheckRunLocked(app.ID, app.Slug, &in)
	if err != nil {
		return CheckRun{}, err
	}
	return r.snapshot(cr), nil
}

func (r *Repo) snapshot(cr *checkRunState) CheckRun {
	snap := cr.CheckRun
	snap.Annotations = append([]Annotation(nil), cr.Annotations...)
	return snap
}

// maxAnnotationsPerRequest and maxSummary are GitHub's limits on one check run write (maxSummary applies to
// output.summary and output.text alike).
const (
	maxAnnotationsPerRequest = 50
	maxSummary               = 65535
)

// CheckRuns are snapshots of the check runs on sha, in creation order.
func (r *Repo) CheckRuns(sha string) []CheckRun {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []CheckRun
	for _, id := range r.checkOrder {
		cr := r.checkRuns[id]
		if cr.HeadSHA == sha {
			out = append(out, r.snapshot(cr))
		}
	}
	return out
}

// RerequestCheckRun emits check_run "rerequested" for a completed run, as the "Re-run" button does. GitHub
// sends it to the App that owns the run only, so a run of another App emits nothing here.
func (r *Repo) RerequestCheckRun(id int64) error {
	r.s.mu.Lock()
	cr := r.checkRuns[id]
	if cr == nil {
		r.s.mu.Unlock()
		return fmt.Errorf("rerequest check run %d: %w", id, errNotFound)
	}
	if cr.AppID != r.s.appID {
		r.s.mu.Unlock()
		return nil
	}
	if cr.Status != "completed" {
		r.s.mu.Unlock()
		return fmt.Errorf("rerequest check run %d: only completed runs can be rerequested (status %s)", id, cr.Status)
	}
	ev := r.newEvent("check_run", "rerequested", r.owner, map[string]any{"check_run": r.checkRunJSON(cr)})
	r.s.mu.Unlock()
	r.s.emit([]event{ev})
	return nil
}

func (r *Repo) checkRunJSON(cr *checkRunState) map[string]any {
	url := fmt.Sprintf("%s/check-runs/%d", r.apiURL(), cr.ID)
	var conclusion any
	if cr.Conclusion != "" {
		conclusion = cr.Conclusion
	}
	var prs []any
	for _, is := range r.sortedIssues() {
		// GitHub matches PRs to a run by head branch in the run's own repository: a fork PR's branch is in
		// another repository, so its runs carry an empty pull_requests (found by head SHA instead).
		if is.pr == nil || is.state != "open" || is.pr.fork != "" {
			continue
		}
		head, base := r.prSHAs(is)
		if head != cr.HeadSHA {
			continue
		}
		repoRef := map[string]any{"id": r.id, "url": r.apiURL(), "name": r.name}
		prs = append(prs, map[string]any{
			"url": fmt.Sprintf("%s/pulls/%d", r.apiURL(), is.number), "id": is.pr.id, "number": is.number,
			"head": map[string]any{"ref": is.pr.head, "sha": head, "repo": repoRef},
			"base": map[string]any{"ref": is.pr.base, "sha": base, "repo": repoRef},
		})
	}
	if prs == nil {
		prs = []any{}
	}
	suiteConclusion := cr.Conclusion
	if suiteConclusion == "" {
		suiteConclusion = "neutral"
	}
	suiteID := cr.ID + 500000
	app := r.s.appJSON()
	if cr.AppID != r.s.appID {
		app = r.s.otherAppJSON(cr.AppID, cr.appSlug)
	}
	m := map[string]any{
		"id": cr.ID, "node_id": nodeID("CR_", cr.ID), "head_sha": cr.HeadSHA, "external_id": cr.ExternalID,
		"url": url, "html_url": fmt.Sprintf("%s/runs/%d", r.htmlURL(), cr.ID),
		"status": cr.Status, "conclusion": conclusion, "started_at": isoTime(cr.started),
		"completed_at": nullTime(cr.completed), "name": cr.Name,
		"output": map[string]any{
			"title": nullString(cr.Title), "summary": nullString(cr.Summary), "text": nullString(cr.Text),
			"annotations_count": len(cr.Annotations), "annotations_url": url + "/annotations",
		},
		"check_suite": map[string]any{
			"id": suiteID, "node_id": nodeID("CS_", suiteID), "head_branch": nil, "head_sha": cr.HeadSHA,
			"status": "completed", "conclusion": suiteConclusion,
			"url": fmt.Sprintf("%s/check-suites/%d", r.apiURL(), suiteID), "before": nil, "after": cr.HeadSHA,
			"pull_requests": prs, "app": app,
			"created_at": isoTime(cr.started), "updated_at": isoTime(cr.started),
		},
		"app": app, "pull_requests": prs,
	}
	if cr.DetailsURL != "" {
		m["details_url"] = cr.DetailsURL
	}
	return m
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// checkRunOutput is the output object of a check run create or update.
type checkRunOutput struct {
	Title       *string      `json:"title"`
	Summary     *string      `json:"summary"`
	Text        *string      `json:"text"`
	Annotations []Annotation `json:"annotations"`
}

// checkRunInput is the body of a check run create or update.
type checkRunInput struct {
	Name        *string         `json:"name"`
	HeadSHA     string          `json:"head_sha"`
	ExternalID  *string         `json:"external_id"`
	DetailsURL  *string         `json:"details_url"`
	Status      *string         `json:"status"`
	Conclusion  *string         `json:"conclusion"`
	StartedAt   *time.Time      `json:"started_at"`
	CompletedAt *time.Time      `json:"completed_at"`
	Output      *checkRunOutput `json:"output"`
}

var checkConclusions = map[string]bool{
	"action_required": true, "cancelled": true, "failure": true, "neutral": true, "success": true,
	"skipped": true, "stale": true, "timed_out": true,
}

// apply validates in and applies it to cr, as GitHub does for create and update.
func (in *checkRunInput) apply(cr *checkRunState) error {
	if in.Output != nil {
		if len(in.Output.Annotations) > maxAnnotationsPerRequest {
			return errorf(http.StatusUnprocessableEntity, "Validation Failed: only %d annotations are allowed per request", maxAnnotationsPerRequest)
		}
		// GitHub counts characters, not bytes.
		if in.Output.Summary != nil && utf8.RuneCountInString(*in.Output.Summary) > maxSummary {
			return errorf(http.StatusUnprocessableEntity, "Validation Failed: output.summary is too long (maximum is %d characters)", maxSummary)
		}
		if in.Output.Text != nil && utf8.RuneCountInString(*in.Output.Text) > maxSummary {
			return errorf(http.StatusUnprocessableEntity, "Validation Failed: output.text is too long (maximum is %d characters)", maxSummary)
		}
		if in.Output.Summary == nil && cr.Summary == "" {
			return errorf(http.StatusUnprocessableEntity, "Validation Failed: output.summary is missing")
		}
		for _, a := range in.Output.Annotations {
			if a.Path == "" || a.StartLine == 0 || a.EndLine == 0 || a.Message == "" ||
				(a.AnnotationLevel != "notice" && a.AnnotationLevel != "warning" && a.AnnotationLevel != "failure") {
				return errorf(http.StatusUnprocessableEntity, "Validation Failed: annotation on %q needs path, start_line, end_line, message and a level of notice, warning or failure", a.Path)
			}
		}
	}
	if in.Name != nil {
		cr.Name = *in.Name
	}
	if in.ExternalID != nil {
		cr.ExternalID = *in.ExternalID
	}
	if in.DetailsURL != nil {
		cr.DetailsURL = *in.DetailsURL
	}
	if in.Status != nil {
		switch *in.Status {
		case "queued", "in_progress", "completed":
			cr.Status = *in.Status
		default:
			return errorf(http.StatusUnprocessableEntity, "Validation Failed: status %q", *in.Status)
		}
	}
	if in.StartedAt != nil {
		cr.started = in.StartedAt.UTC()
	}
	if in.Conclusion != nil {
		if !checkConclusions[*in.Conclusion] {
			return errorf(http.StatusUnprocessableEntity, "Validation Failed: conclusion %q", *in.Conclusion)
		}
		cr.Conclusion = *in.Conclusion
		cr.Status = "completed"
	}
	if cr.Status == "completed" {
		if cr.Conclusion == "" {
			return errorf(http.StatusUnprocessableEntity, "Validation Failed: conclusion is required when status is completed")
		}
		cr.completed = time.Now().UTC().Truncate(time.Second)
		if in.CompletedAt != nil {
			cr.completed = in.CompletedAt.UTC()
		}
	}
	if in.Output != nil {
		if in.Output.Title != nil {
			cr.Title = *in.Output.Title
		}
		if in.Output.Summary != nil {
			cr.Summary = *in.Output.Summary
		}
		if in.Output.Text != nil {
			cr.Text = *in.Output.Text
		}
		cr.Annotations = append(cr.Annotations, in.Output.Annotations...)
	}
	return nil
}

func (s *Server) createCheckRun(c *call) (int, any, error) {
	r := c.repo
	var in checkRunInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	// Installation tokens are only minted for the fake's own App: every REST-created run is its.
	cr, err := r.createCheckRunLocked(s.appID, appSlug, &in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, r.checkRunJSON(cr), nil
}

// createCheckRunLocked validates in and stores a new run owned by appID. Callers hold s.mu.
func (r *Repo) createCheckRunLocked(appID int64, slug string, in *checkRunInput) (*checkRunState, error) {
	if in.Name == nil || *in.Name == "" {
		return nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: name is missing")
	}
	if _, ok := r.resolve(in.HeadSHA); !ok || !isSHA(in.HeadSHA) {
		return nil, errorf(http.StatusUnprocessableEntity, "No commit found for SHA: %s", in.HeadSHA)
	}
	cr := &checkRunState{
		CheckRun: CheckRun{ID: r.s.newID(), AppID: appID, HeadSHA: in.HeadSHA, Status: "queued"},
		appSlug:  slug, started: time.Now().UTC().Truncate(time.Second),
	}
	if err := in.apply(cr); err != nil {
		return nil, err
	}
	r.checkRuns[cr.ID] = cr
	r.checkOrder = append(r.checkOrder, cr.ID)
	return cr, nil
}

func (r *Repo) checkRunParam(c *call) (*checkRunState, error) {
	id, err := c.intParam("check_run_id")
	if err != nil {
		return nil, err
	}
	cr := r.checkRuns[id]
	if cr == nil {
		return nil, errNotFound
	}
	return cr, nil
}

func (s *Server) updateCheckRun(c *call) (int, any, error) {
	r := c.repo
	cr, err := r.checkRunParam(c)
	if err != nil {
		return 0, nil, err
	}
	// A run belongs to the App that created it; another App (the same bot under an older registration, an
	// Actions job) may read it but not write it.
	if cr.AppID != s.appID {
		return 0, nil, errorf(http.StatusForbidden, "Invalid app_id `%d` - check run can only be modified by the GitHub App that created it.", s.appID)
	}
	var in checkRunInput
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	next := *cr
	next.Annotations = append([]Annotation(nil), cr.Annotations...)
	if err := in.apply(&next); err != nil {
		return 0, nil, err
	}
	*cr = next
	return http.StatusOK, r.checkRunJSON(cr), nil
}

func (s *Server) getCheckRun(c *call) (int, any, error) {
	cr, err := c.repo.checkRunParam(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c.repo.checkRunJSON(cr), nil
}

func (s *Server) listAnnotations(c *call) (int, any, error) {
	cr, err := c.repo.checkRunParam(c)
	if err != nil {
		return 0, nil, err
	}
	all := make([]any, 0, len(cr.Annotations))
	for _, a := range cr.Annotations {
		all = append(all, map[string]any{
			"path": a.Path, "start_line": a.StartLine, "end_line": a.EndLine, "start_column": nil, "end_column": nil,
			"annotation_level": a.AnnotationLevel, "title": nullString(a.Title), "message": a.Message,
			"raw_details": nullString(a.RawDetails), "blob_href": c.repo.htmlURL() + "/blob/" + cr.HeadSHA + "/" + a.Path,
		})
	}
	return http.StatusOK, paginate(c, all, 30, 100), nil
}

func (s *Server) listCheckRunsForRef(c *call) (int, any, error) {
	r := c.repo
	h, ok := r.resolve(c.params["ref"])
	if !ok {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "No commit found for SHA: %s", c.params["ref"])
	}
	q := c.r.URL.Query()
	var appID int64
	if v := q.Get("app_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: app_id %q is not an integer", v)
		}
		appID = n
	}
	filter := q.Get("filter")
	switch filter {
	case "":
		filter = "latest"
	case "latest", "all":
	default:
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: filter %q is not one of latest, all", filter)
	}
	// "latest" (the default) keeps the newest run of each name in each App's check suite: an older run a
	// re-run superseded is not listed.
	type key struct {
		app  int64
		name string
	}
	seen := map[key]bool{}
	var all []any
	for i := len(r.checkOrder) - 1; i >= 0; i-- {
		cr := r.checkRuns[r.checkOrder[i]]
		if cr.HeadSHA != h.String() {
			continue
		}
		if appID != 0 && cr.AppID != appID {
			continue
		}
		if filter == "latest" {
			k := key{cr.AppID, cr.Name}
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		if n := q.Get("check_name"); n != "" && cr.Name != n {
			continue
		}
		if st := q.Get("status"); st != "" && cr.Status != st {
			continue
		}
		all = append(all, r.checkRunJSON(cr))
	}
	total := len(all)
	return http.StatusOK, map[string]any{"total_count": total, "check_runs": paginate(c, all, 30, 100)}, nil
}
