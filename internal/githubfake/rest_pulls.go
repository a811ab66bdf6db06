package githubfake

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// paginate returns the page of items the request asks for (page, per_page) and sets the Link
// header GitHub sends.
func paginate(c *call, items []any, defaultPer, maxPer int) []any {
	q := c.r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = defaultPer
	}
	if per > maxPer {
		per = maxPer
	}
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := (len(items) + per - 1) / per
	if last == 0 {
		last = 1
	}
	link := func(p int, rel string) string {
		u := *c.r.URL
		v := u.Query()
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(per))
		u.RawQuery = v.Encode()
		return fmt.Sprintf(`<http://%s%s>; rel="%s"`, c.r.Host, u.RequestURI(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	if len(links) > 0 && c.header != nil {
		c.header.Set("Link", strings.Join(links, ", "))
	}
	start := (page - 1) * per
	if start >= len(items) {
		return []any{}
	}
	end := min(start+per, len(items))
	return items[start:end]
}

func (s *Server) listPulls(c *call) (int, any, error) {
	r := c.repo
	q := c.r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	// Like GitHub, head filters only in "owner:branch" form; a bare branch is ignored.
	headOwner, headBranch, headOK := strings.Cut(q.Get("head"), ":")
	base := q.Get("base")
	issues := r.sortedIssues()
	asc := q.Get("direction") == "asc"
	if !asc {
		sort.SliceStable(issues, func(i, j int) bool { return issues[i].number > issues[j].number })
	}
	var all []any
	for _, is := range issues {
		if is.pr == nil || (state != "all" && is.state != state) {
			continue
		}
		owner := r.owner
		if is.pr.fork != "" {
			owner = is.pr.fork
		}
		if headOK && (!strings.EqualFold(headOwner, owner) || is.pr.head != headBranch) {
			continue
		}
		if base != "" && is.pr.base != base {
			continue
		}
		all = append(all, r.pullJSON(is))
	}
	return http.StatusOK, paginate(c, all, 30, 100), nil
}

func (s *Server) createPull(c *call) (int, any, error) {
	r := c.repo
	var in struct {
		Title string `json:"title"`
		Head  string `json:"head"`
		Base  string `json:"base"`
		Body  string `json:"body"`
		Draft bool   `json:"draft"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	head := in.Head
	if owner, branch, ok := strings.Cut(in.Head, ":"); ok {
		if !strings.EqualFold(owner, r.owner) {
			return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: head %s: forks are not supported by the fake", in.Head)
		}
		head = branch
	}
	if in.Title == "" {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: title is missing")
	}
	is, events, err := r.openPullLocked(PROptions{Head: head, Base: in.Base, Title: in.Title, Body: in.Body, User: appSlug + "[bot]"})
	if err != nil {
		return 0, nil, err
	}
	is.pr.draft = in.Draft
	c.events = append(c.events, events...)
	return http.StatusCreated, r.pullJSON(is), nil
}

func (r *Repo) pullParam(c *call) (*issueState, error) {
	n, err := c.intParam("pull_number")
	if err != nil {
		return nil, err
	}
	return r.pull(int(n))
}

func (s *Server) getPull(c *call) (int, any, error) {
	is, err := c.repo.pullParam(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c.repo.pullJSON(is), nil
}

func (s *Server) updatePull(c *call) (int, any, error) {
	r := c.repo
	is, err := r.pullParam(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		State string  `json:"state"`
		Base  string  `json:"base"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.State != "" && in.State != "open" && in.State != "closed" {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: state %q", in.State)
	}
	if err := checkIssueText(in.Title, in.Body); err != nil {
		return 0, nil, err
	}
	baseFrom, err := r.changeBaseLocked(is, &in.Base)
	if err != nil {
		return 0, nil, err
	}
	c.events = append(c.events, r.editIssueLocked(is, appSlug+"[bot]", in.Title, in.Body, in.State, baseFrom)...)
	return http.StatusOK, r.pullJSON(is), nil
}

func (s *Server) listPullFiles(c *call) (int, any, error) {
	r := c.repo
	is, err := r.pullParam(c)
	if err != nil {
		return 0, nil, err
	}
	files, err := r.prFiles(is)
	if err != nil {
		return 0, nil, err
	}
	if len(files) > maxPullFiles {
		files = files[:maxPullFiles]
	}
	head, _ := r.prSHAs(is)
	return http.StatusOK, paginate(c, r.filesJSON(files, head), 30, 100), nil
}

func (s *Server) mergePull(c *call) (int, any, error) {
	r := c.repo
	is, err := r.pullParam(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		CommitTitle   string `json:"commit_title"`
		CommitMessage string `json:"commit_message"`
		SHA           string `json:"sha"`
		MergeMethod   string `json:"merge_method"`
	}
	if len(c.body) > 0 {
		if err := c.decode(&in); err != nil {
			return 0, nil, err
		}
	}
	sha, events, err := r.mergeLocked(is, in.MergeMethod, in.SHA, in.CommitTitle, in.CommitMessage, appSlug+"[bot]")
	if err != nil {
		return 0, nil, err
	}
	c.events = append(c.events, events...)
	return http.StatusOK, map[string]any{"sha": sha, "merged": true, "message": "Pull Request successfully merged"}, nil
}

// roles orders repository roles from least to most.
var roles = []string{"read", "triage", "write", "maintain", "admin"}

func roleRank(role string) int {
	for i, r := range roles {
		if r == role {
			return i
		}
	}
	return -1
}

// getPermission answers like GitHub: permission folds maintain into "write" and triage into
// "read"; the real role is role_name and user.permissions.
func (s *Server) getPermission(c *call) (int, any, error) {
	r := c.repo
	user := c.params["username"]
	role := r.permission(user)
	rank := roleRank(role)
	if rank < 0 {
		return 0, nil, errorf(http.StatusNotFound, "%s is not a user", url.PathEscape(user))
	}
	legacy := map[string]string{"read": "read", "triage": "read", "write": "write", "maintain": "write", "admin": "admin"}[role]
	u := s.userJSON(user)
	u["permissions"] = map[string]any{
		"pull": rank >= 0, "triage": rank >= 1, "push": rank >= 2, "maintain": rank >= 3, "admin": rank >= 4,
	}
	u["role_name"] = role
	return http.StatusOK, map[string]any{"permission": legacy, "role_name": role, "user": u}, nil
}

func sortStrings(s []string) { sort.Strings(s) }
