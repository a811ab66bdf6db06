package githubfake

import (
	"net/http"
	"strings"
	"time"
)

// Comment is a snapshot of an issue or pull request comment.
type Comment struct {
	ID     int64
	Number int
	User   string
	Body   string
}

// OpenIssue opens a plain issue (no webhook: the fake does not emit issues events) and returns its
// number, which it shares with pull requests as on GitHub.
func (r *Repo) OpenIssue(title, body, user string) int {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Second)
	r.nextNumber++
	r.issues[r.nextNumber] = &issueState{
		number: r.nextNumber, title: title, body: body, user: user, state: "open", created: now, updated: now,
	}
	return r.nextNumber
}

// Comment adds a comment to issue or pull request number and emits issue_comment "created".
func (r *Repo) Comment(number int, user, body string) (*Comment, error) {
	r.s.mu.Lock()
	c, events, err := r.commentLocked(number, user, body)
	r.s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r.s.emit(events)
	return &Comment{ID: c.id, Number: c.number, User: c.user, Body: c.body}, nil
}

func (r *Repo) commentLocked(number int, user, body string) (*commentState, []event, error) {
	is := r.issues[number]
	if is == nil {
		return nil, nil, errNotFound
	}
	now := time.Now().UTC().Truncate(time.Second)
	c := &commentState{id: r.s.newID(), number: number, user: user, body: body, created: now, updated: now}
	r.comments[c.id] = c
	is.comments = append(is.comments, c.id)
	is.updated = now
	ev := r.newEvent("issue_comment", "created", user, map[string]any{
		"issue": r.issueJSON(is), "comment": r.commentJSON(c),
	})
	return c, []event{ev}, nil
}

// EditComment replaces a comment's body as user and emits issue_comment "edited" with user as the sender
// and the previous body in changes. As on GitHub, a comment's author may edit it, and so may anyone with
// write access or more, whoever wrote the comment (the bot's comments included); anyone else gets a 403.
func (r *Repo) EditComment(id int64, user, body string) error {
	r.s.mu.Lock()
	var events []event
	err := r.mayEdit(r.commentAuthorLocked(id), user, "comment")
	if err == nil {
		events, err = r.editCommentLocked(id, user, body)
	}
	r.s.mu.Unlock()
	if err != nil {
		return err
	}
	r.s.emit(events)
	return nil
}

// EditPullRequestBody replaces a pull request's body as user and emits pull_request "edited" with user as the
// sender and the previous body in changes. The PR's author may, and so may anyone with write access or more
// (the bot's PRs included); anyone else gets a 403.
func (r *Repo) EditPullRequestBody(number int, user, body string) error {
	r.s.mu.Lock()
	is, err := r.pull(number)
	if err == nil {
		err = r.mayEdit(is.user, user, "pull request")
	}
	if err != nil {
		r.s.mu.Unlock()
		return err
	}
	events := r.editIssueLocked(is, user, nil, &body, "", "")
	r.s.mu.Unlock()
	r.s.emit(events)
	return nil
}

// commentAuthorLocked is the login of comment id's author, "" when there is no such comment.
func (r *Repo) commentAuthorLocked(id int64) string {
	if c := r.comments[id]; c != nil {
		return c.user
	}
	return ""
}

// mayEdit applies GitHub's rule for editing a comment or an issue or PR body: its author, or anyone whose
// role is write, maintain or admin. Callers hold s.mu.
func (r *Repo) mayEdit(author, user, what string) error {
	if author == "" {
		return errNotFound
	}
	if strings.EqualFold(author, user) {
		return nil
	}
	switch r.permission(user) {
	case "write", "maintain", "admin":
		return nil
	}
	return errorf(http.StatusForbidden, "@%s may not edit a %s by @%s: that needs write access to %s", user, what, author, r.FullName())
}

func (r *Repo) editCommentLocked(id int64, user, body string) ([]event, error) {
	c := r.comments[id]
	if c == nil {
		return nil, errNotFound
	}
	from := c.body
	c.body, c.updated = body, time.Now().UTC().Truncate(time.Second)
	ev := r.newEvent("issue_comment", "edited", user, map[string]any{
		"changes": map[string]any{"body": map[string]any{"from": from}},
		"issue":   r.issueJSON(r.issues[c.number]), "comment": r.commentJSON(c),
	})
	return []event{ev}, nil
}

// IssueComments are snapshots of the comments on number, oldest first.
func (r *Repo) IssueComments(number int) []Comment {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	is := r.issues[number]
	if is == nil {
		return nil
	}
	out := make([]Comment, 0, len(is.comments))
	for _, id := range is.comments {
		c := r.comments[id]
		out = append(out, Comment{ID: c.id, Number: c.number, User: c.user, Body: c.body})
	}
	return out
}

// Reactions are the reaction contents ("+1", "eyes", ...) on a comment, in the order added.
func (r *Repo) Reactions(commentID int64) []string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	c := r.comments[commentID]
	if c == nil {
		return nil
	}
	out := make([]string, 0, len(c.reactions))
	for _, x := range c.reactions {
		out = append(out, x.content)
	}
	return out
}

// Labels are the labels on issue or pull request number.
func (r *Repo) Labels(number int) []string {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	is := r.issues[number]
	if is == nil {
		return nil
	}
	return append([]string(nil), is.labels...)
}

// REST handlers.

func (r *Repo) issueParam(c *call) (*issueState, error) {
	n, err := c.intParam("issue_number")
	if err != nil {
		return nil, err
	}
	is := r.issues[int(n)]
	if is == nil {
		return nil, errNotFound
	}
	return is, nil
}

func (s *Server) getIssue(c *call) (int, any, error) {
	is, err := c.repo.issueParam(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c.repo.issueJSON(is), nil
}

func (s *Server) updateIssue(c *call) (int, any, error) {
	r := c.repo
	is, err := r.issueParam(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Title  *string   `json:"title"`
		Body   *string   `json:"body"`
		State  string    `json:"state"`
		Labels *[]string `json:"labels"`
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
	if in.Labels != nil {
		is.labels = uniqueLabels(nil, *in.Labels)
	}
	c.events = append(c.events, r.editIssueLocked(is, appSlug+"[bot]", in.Title, in.Body, in.State, "")...)
	return http.StatusOK, r.issueJSON(is), nil
}

func (s *Server) listComments(c *call) (int, any, error) {
	r := c.repo
	is, err := r.issueParam(c)
	if err != nil {
		return 0, nil, err
	}
	all := make([]any, 0, len(is.comments))
	for _, id := range is.comments {
		all = append(all, r.commentJSON(r.comments[id]))
	}
	return http.StatusOK, paginate(c, all, 30, 100), nil
}

func (s *Server) createComment(c *call) (int, any, error) {
	r := c.repo
	is, err := r.issueParam(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Body string `json:"body"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Body == "" {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: body is missing")
	}
	if err := checkLength("IssueComment", "body", in.Body, MaxBodyLength); err != nil {
		return 0, nil, err
	}
	cm, events, err := r.commentLocked(is.number, appSlug+"[bot]", in.Body)
	if err != nil {
		return 0, nil, err
	}
	c.events = append(c.events, events...)
	return http.StatusCreated, r.commentJSON(cm), nil
}

func (s *Server) updateComment(c *call) (int, any, error) {
	r := c.repo
	id, err := c.intParam("comment_id")
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Body string `json:"body"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if err := checkLength("IssueComment", "body", in.Body, MaxBodyLength); err != nil {
		return 0, nil, err
	}
	events, err := r.editCommentLocked(id, appSlug+"[bot]", in.Body)
	if err != nil {
		return 0, nil, err
	}
	c.events = append(c.events, events...)
	return http.StatusOK, r.commentJSON(r.comments[id]), nil
}

// deleteComment deletes an issue comment and emits issue_comment "deleted", as GitHub does (204, no body).
func (s *Server) deleteComment(c *call) (int, any, error) {
	r := c.repo
	id, err := c.intParam("comment_id")
	if err != nil {
		return 0, nil, err
	}
	cm := r.comments[id]
	if cm == nil {
		return 0, nil, errNotFound
	}
	delete(r.comments, id)
	is := r.issues[cm.number]
	kept := is.comments[:0]
	for _, other := range is.comments {
		if other != id {
			kept = append(kept, other)
		}
	}
	is.comments = kept
	c.events = append(c.events, r.newEvent("issue_comment", "deleted", appSlug+"[bot]", map[string]any{
		"issue": r.issueJSON(is), "comment": r.commentJSON(cm),
	}))
	return http.StatusNoContent, nil, nil
}

var reactionContents = map[string]bool{
	"+1": true, "-1": true, "laugh": true, "confused": true, "heart": true, "hooray": true, "rocket": true, "eyes": true,
}

func (s *Server) createReaction(c *call) (int, any, error) {
	r := c.repo
	id, err := c.intParam("comment_id")
	if err != nil {
		return 0, nil, err
	}
	cm := r.comments[id]
	if cm == nil {
		return 0, nil, errNotFound
	}
	var in struct {
		Content string `json:"content"`
	}
	if err := c.decode(&in); err != nil {
		return 0, nil, err
	}
	if !reactionContents[in.Content] {
		return 0, nil, errorf(http.StatusUnprocessableEntity, "Validation Failed: content %q is not a reaction", in.Content)
	}
	user := appSlug + "[bot]"
	reactionJSON := func(x reaction) map[string]any {
		return map[string]any{
			"id": x.id, "node_id": nodeID("REA_", x.id), "user": s.userJSON(x.user), "content": x.content,
			"created_at": isoTime(cm.created),
		}
	}
	for _, x := range cm.reactions {
		if x.user == user && x.content == in.Content {
			return http.StatusOK, reactionJSON(x), nil
		}
	}
	x := reaction{id: s.newID(), user: user, content: in.Content}
	cm.reactions = append(cm.reactions, x)
	return http.StatusCreated, reactionJSON(x), nil
}

// addLabels accepts both {"labels": [...]} and a bare array, as GitHub does (go-github v50 sends
// the array).
func (s *Server) addLabels(c *call) (int, any, error) {
	r := c.repo
	is, err := r.issueParam(c)
	if err != nil {
		return 0, nil, err
	}
	var names []string
	var wrapped struct {
		Labels []string `json:"labels"`
	}
	if err := c.decode(&names); err != nil {
		if err := c.decode(&wrapped); err != nil {
			return 0, nil, err
		}
		names = wrapped.Labels
	}
	is.labels = uniqueLabels(is.labels, names)
	is.updated = time.Now().UTC().Truncate(time.Second)
	return http.StatusOK, r.labelsJSON(is.labels), nil
}

func (s *Server) listLabels(c *call) (int, any, error) {
	is, err := c.repo.issueParam(c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, paginate(c, c.repo.labelsJSON(is.labels), 30, 100), nil
}

func uniqueLabels(have, add []string) []string {
	out := append([]string(nil), have...)
	seen := map[string]bool{}
	for _, l := range out {
		seen[l] = true
	}
	for _, l := range add {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}
