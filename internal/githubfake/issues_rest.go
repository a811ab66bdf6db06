package githubfake

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Issue is a snapshot of a plain issue (not a pull request).
type Issue struct {
	Number      int
	Title, Body string
	User        string
	State       string // open | closed
	Labels      []string
}

// Issues are snapshots of the repository's plain issues, oldest first.
func (r *Repo) Issues() []Issue {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	var out []Issue
	for _, is := range r.sortedIssues() {
		if is.pr != nil {
			continue
		}
		out = append(out, Issue{Number: is.number, Title: is.title, Body: is.body, User: is.user, State: is.state,
			Labels: append([]string(nil), is.labels...)})
	}
	return out
}

// EditIssueBody replaces an issue's body as user, with GitHub's rule for who may (its author, or anyone with
// write access or more).
func (r *Repo) EditIssueBody(number int, user, body string) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	is := r.issues[number]
	if is == nil || is.pr != nil {
		return errNotFound
	}
	if err := r.mayEdit(is.user, user, "issue"); err != nil {
		return err
	}
	if err := checkIssueText(nil, &body); err != nil {
		return err
	}
	r.editIssueLocked(is, user, nil, &body, "", "")
	return nil
}

// createIssue is POST /repos/{owner}/{repo}/issues as the App's bot: a title is required, and the title and
// body limits apply as on GitHub (422 over them). Labels are attached by name (GitHub creates a missing one
// for a caller with push access, which the App has).
func (s *Server) createIssue(c *call) (int, any, error) {
	r := c.repo
	var in struct {
		Title  *string  `json:"title"`
		Body   *string  `json:"body"`
		Labels []string `json:"labels"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Title == nil || *in.Title == "" {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: title is missing")
	}
	if err := checkIssueText(in.Title, in.Body); err != nil {
		return 0, nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	r.nextNumber++
	is := &issueState{number: r.nextNumber, title: *in.Title, user: appSlug + "[bot]", state: "open",
		created: now, updated: now, labels: uniqueLabels(nil, in.Labels)}
	if in.Body != nil {
		is.body = *in.Body
	}
	r.issues[is.number] = is
	return http.StatusCreated, r.issueJSON(is), nil
}

// listIssues is GET /repos/{owner}/{repo}/issues: issues and pull requests (GitHub lists both), filtered by
// state (default open), labels (every one named, comma-separated) and creator, sorted by created or updated
// (default created), newest first unless direction=asc; 30 a page by default, at most 100.
func (s *Server) listIssues(c *call) (int, any, error) {
	r := c.repo
	q := c.r.URL.Query()
	state := q.Get("state")
	switch state {
	case "":
		state = "open"
	case "open", "closed", "all":
	default:
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: state %q", state)
	}
	var labels []string
	for _, l := range strings.Split(q.Get("labels"), ",") {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	creator := q.Get("creator")
	issues := r.sortedIssues()
	key := func(is *issueState) time.Time { return is.created }
	if q.Get("sort") == "updated" {
		key = func(is *issueState) time.Time { return is.updated }
	}
	asc := q.Get("direction") == "asc"
	sort.SliceStable(issues, func(i, j int) bool {
		ti, tj := key(issues[i]), key(issues[j])
		if ti.Equal(tj) {
			if asc {
				return issues[i].number < issues[j].number
			}
			return issues[i].number > issues[j].number
		}
		if asc {
			return ti.Before(tj)
		}
		return ti.After(tj)
	})
	var all []any
	for _, is := range issues {
		if state != "all" && is.state != state {
			continue
		}
		if creator != "" && !strings.EqualFold(creator, is.user) {
			continue
		}
		if !hasLabels(is.labels, labels) {
			continue
		}
		all = append(all, r.issueJSON(is))
	}
	return http.StatusOK, paginate(c, all, 30, 100), nil
}

// hasLabels reports whether have holds every label in want (names compared case-insensitively, as GitHub does).
func hasLabels(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if strings.EqualFold(h, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// PullRequestURL is the web address of pull request number, as its html_url says.
func (r *Repo) PullRequestURL(number int) string {
	return r.htmlURL() + "/pull/" + strconv.Itoa(number)
}

// IssueURL is the web address of issue number, as its html_url says.
func (r *Repo) IssueURL(number int) string {
	return r.htmlURL() + "/issues/" + strconv.Itoa(number)
}
