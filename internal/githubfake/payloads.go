package githubfake

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// The builders below produce the JSON objects GitHub uses both in REST answers and in webhook
// payloads, with every field the webhook schemas require. Callers hold s.mu.

// userID derives a stable numeric ID from a login.
func userID(login string) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strings.ToLower(login)))
	return int64(h.Sum32()%90000000) + 1000
}

func nodeID(kind string, id int64) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s%d", kind, id)))
}

func (s *Server) userJSON(login string) map[string]any {
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	id := userID(login)
	api := s.URL() + "users/" + login
	return map[string]any{
		"login":               login,
		"id":                  id,
		"node_id":             nodeID("U_", id),
		"avatar_url":          fmt.Sprintf("%savatars/u/%d?v=4", s.WebURL(), id),
		"gravatar_id":         "",
		"url":                 api,
		"html_url":            s.WebURL() + login,
		"followers_url":       api + "/followers",
		"following_url":       api + "/following{/other_user}",
		"gists_url":           api + "/gists{/gist_id}",
		"starred_url":         api + "/starred{/owner}{/repo}",
		"subscriptions_url":   api + "/subscriptions",
		"organizations_url":   api + "/orgs",
		"repos_url":           api + "/repos",
		"events_url":          api + "/events{/privacy}",
		"received_events_url": api + "/received_events",
		"type":                typ,
		"site_admin":          false,
	}
}

// apiURL is the repository's REST URL, without a trailing slash.
func (r *Repo) apiURL() string { return r.s.URL() + "repos/" + r.FullName() }

// htmlURL is the repository's web URL.
func (r *Repo) htmlURL() string { return r.s.WebURL() + r.FullName() }

func (r *Repo) repositoryJSON() map[string]any {
	api, html := r.apiURL(), r.htmlURL()
	open := 0
	for _, is := range r.issues {
		if is.state == "open" {
			open++
		}
	}
	created := isoTime(r.created)
	return map[string]any{
		"id": r.id, "node_id": nodeID("R_", r.id), "name": r.name, "full_name": r.FullName(),
		"private": false, "owner": r.s.userJSON(r.owner), "html_url": html, "description": nil,
		"fork": false, "url": api,
		"forks_url":         api + "/forks",
		"keys_url":          api + "/keys{/key_id}",
		"collaborators_url": api + "/collaborators{/collaborator}",
		"teams_url":         api + "/teams",
		"hooks_url":         api + "/hooks",
		"issue_events_url":  api + "/issues/events{/number}",
		"events_url":        api + "/events",
		"assignees_url":     api + "/assignees{/user}",
		"branches_url":      api + "/branches{/branch}",
		"tags_url":          api + "/tags",
		"blobs_url":         api + "/git/blobs{/sha}",
		"git_tags_url":      api + "/git/tags{/sha}",
		"git_refs_url":      api + "/git/refs{/sha}",
		"trees_url":         api + "/git/trees{/sha}",
		"statuses_url":      api + "/statuses/{sha}",
		"languages_url":     api + "/languages",
		"stargazers_url":    api + "/stargazers",
		"contributors_url":  api + "/contributors",
		"subscribers_url":   api + "/subscribers",
		"subscription_url":  api + "/subscription",
		"commits_url":       api + "/commits{/sha}",
		"git_commits_url":   api + "/git/commits{/sha}",
		"comments_url":      api + "/comments{/number}",
		"issue_comment_url": api + "/issues/comments{/number}",
		"contents_url":      api + "/contents/{+path}",
		"compare_url":       api + "/compare/{base}...{head}",
		"merges_url":        api + "/merges",
		"archive_url":       api + "/{archive_format}{/ref}",
		"downloads_url":     api + "/downloads",
		"issues_url":        api + "/issues{/number}",
		"pulls_url":         api + "/pulls{/number}",
		"milestones_url":    api + "/milestones{/number}",
		"notifications_url": api + "/notifications{?since,all,participating}",
		"labels_url":        api + "/labels{/name}",
		"releases_url":      api + "/releases{/id}",
		"deployments_url":   api + "/deployments",
		"created_at":        created, "updated_at": created, "pushed_at": created,
		"git_url":   strings.Replace(html, "http://", "git://", 1) + ".git",
		"ssh_url":   "git@fake.github:" + r.FullName() + ".git",
		"clone_url": html + ".git", "svn_url": html,
		"homepage": nil, "size": 0, "stargazers_count": 0, "watchers_count": 0, "language": nil,
		"has_issues": true, "has_projects": false, "has_downloads": true, "has_wiki": false,
		"has_pages": false, "has_discussions": false, "forks_count": 0, "mirror_url": nil,
		"archived": false, "disabled": false, "open_issues_count": open, "license": nil,
		"allow_forking": true, "is_template": false, "web_commit_signoff_required": false,
		"topics": []string{}, "visibility": "public", "forks": 0, "open_issues": open, "watchers": 0,
		"default_branch": r.defaultBranch, "custom_properties": map[string]any{},
		"allow_squash_merge": true, "allow_merge_commit": true, "allow_rebase_merge": false,
		"delete_branch_on_merge": false,
	}
}

// authorAssociation is how a user relates to the repository.
func (r *Repo) authorAssociation(user string) string {
	switch {
	case strings.EqualFold(user, r.owner):
		return "OWNER"
	case r.permission(user) != "":
		return "COLLABORATOR"
	}
	return "NONE"
}

func emptyReactions(url string) map[string]any {
	return map[string]any{
		"url": url, "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "confused": 0,
		"heart": 0, "hooray": 0, "eyes": 0, "rocket": 0,
	}
}

func (r *Repo) reactionsJSON(url string, rs []reaction) map[string]any {
	m := emptyReactions(url)
	for _, x := range rs {
		m[x.content] = m[x.content].(int) + 1
	}
	m["total_count"] = len(rs)
	return m
}

func (r *Repo) labelJSON(name string) map[string]any {
	id := userID("label:" + r.FullName() + ":" + name)
	return map[string]any{
		"id": id, "node_id": nodeID("LA_", id), "url": r.apiURL() + "/labels/" + name,
		"name": name, "color": "ededed", "default": false, "description": nil,
	}
}

func (r *Repo) labelsJSON(names []string) []any {
	out := make([]any, 0, len(names))
	for _, n := range names {
		out = append(out, r.labelJSON(n))
	}
	return out
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return isoTime(t)
}

// issueJSON is the issue view of an issue or pull request.
func (r *Repo) issueJSON(is *issueState) map[string]any {
	url := fmt.Sprintf("%s/issues/%d", r.apiURL(), is.number)
	html := fmt.Sprintf("%s/issues/%d", r.htmlURL(), is.number)
	id := userID(fmt.Sprintf("issue:%s#%d", r.FullName(), is.number))
	m := map[string]any{
		"url": url, "repository_url": r.apiURL(), "labels_url": url + "/labels{/name}",
		"comments_url": url + "/comments", "events_url": url + "/events", "html_url": html,
		"id": id, "node_id": nodeID("I_", id), "number": is.number, "title": is.title,
		"user": r.s.userJSON(is.user), "labels": r.labelsJSON(is.labels), "state": is.state,
		"locked": false, "assignee": nil, "assignees": []any{}, "milestone": nil,
		"comments": len(is.comments), "created_at": isoTime(is.created), "updated_at": isoTime(is.updated),
		"closed_at": nullTime(is.closed), "author_association": r.authorAssociation(is.user),
		"active_lock_reason": nil, "body": is.body, "reactions": emptyReactions(url + "/reactions"),
		"timeline_url": url + "/timeline", "performed_via_github_app": nil, "state_reason": nil,
	}
	if is.pr != nil {
		pr := fmt.Sprintf("%s/pulls/%d", r.apiURL(), is.number)
		phtml := fmt.Sprintf("%s/pull/%d", r.htmlURL(), is.number)
		m["html_url"] = phtml
		m["draft"] = is.pr.draft
		m["pull_request"] = map[string]any{
			"url": pr, "html_url": phtml, "diff_url": phtml + ".diff", "patch_url": phtml + ".patch",
			"merged_at": nullTime(is.pr.mergedAt),
		}
	}
	return m
}

// branchRefJSON is a pull request's head or base.
func (r *Repo) branchRefJSON(branch, sha string) map[string]any {
	return map[string]any{
		"label": r.owner + ":" + branch, "ref": branch, "sha": sha,
		"user": r.s.userJSON(r.owner), "repo": r.repositoryJSON(),
	}
}

// forkJSON is the repository a fork PR's head lives in: owner's fork of r.
func (r *Repo) forkJSON(owner string) map[string]any {
	m := r.repositoryJSON()
	id := userID("fork:" + owner + "/" + r.name)
	full := owner + "/" + r.name
	api, html := r.s.URL()+"repos/"+full, r.s.WebURL()+full
	m["id"], m["node_id"], m["full_name"], m["owner"], m["fork"] = id, nodeID("R_", id), full, r.s.userJSON(owner), true
	m["url"], m["html_url"], m["clone_url"], m["svn_url"] = api, html, html+".git", html
	m["ssh_url"] = "git@fake.github:" + full + ".git"
	m["open_issues_count"], m["open_issues"] = 0, 0
	return m
}

// headRefJSON is a pull request's head: a branch of r, or of a fork for a fork PR.
func (r *Repo) headRefJSON(pr *prState, sha string) map[string]any {
	if pr.fork == "" {
		return r.branchRefJSON(pr.head, sha)
	}
	return map[string]any{
		"label": pr.fork + ":" + pr.head, "ref": pr.head, "sha": sha,
		"user": r.s.userJSON(pr.fork), "repo": r.forkJSON(pr.fork),
	}
}

// pullJSON is the full pull request object.
func (r *Repo) pullJSON(is *issueState) map[string]any {
	pr := is.pr
	url := fmt.Sprintf("%s/pulls/%d", r.apiURL(), is.number)
	html := fmt.Sprintf("%s/pull/%d", r.htmlURL(), is.number)
	issueURL := fmt.Sprintf("%s/issues/%d", r.apiURL(), is.number)
	headSHA, baseSHA := r.prSHAs(is)
	link := func(u string) map[string]any { return map[string]any{"href": u} }
	var mergedBy any
	if pr.merged {
		mergedBy = r.s.userJSON(pr.mergedBy)
	}
	var mergeSHA any
	if pr.mergeCommitSHA != "" {
		mergeSHA = pr.mergeCommitSHA
	}
	var mergeable any = true
	mergeableState := "clean"
	if pr.merged || is.state == "closed" {
		mergeable, mergeableState = nil, "unknown"
	}
	files, commits := 0, 0
	if changes, err := r.prFiles(is); err == nil {
		files = len(changes)
	}
	if n, err := r.aheadBy(baseSHA, headSHA); err == nil {
		commits = n
	}
	return map[string]any{
		"url": url, "id": pr.id, "node_id": nodeID("PR_", pr.id), "html_url": html,
		"diff_url": html + ".diff", "patch_url": html + ".patch", "issue_url": issueURL,
		"number": is.number, "state": is.state, "locked": false, "title": is.title,
		"user": r.s.userJSON(is.user), "body": is.body,
		"created_at": isoTime(is.created), "updated_at": isoTime(is.updated),
		"closed_at": nullTime(is.closed), "merged_at": nullTime(pr.mergedAt),
		"merge_commit_sha": mergeSHA, "assignee": nil, "assignees": []any{},
		"requested_reviewers": []any{}, "requested_teams": []any{}, "labels": r.labelsJSON(is.labels),
		"milestone": nil, "commits_url": url + "/commits", "review_comments_url": url + "/comments",
		"review_comment_url": r.apiURL() + "/pulls/comments{/number}", "comments_url": issueURL + "/comments",
		"statuses_url": r.apiURL() + "/statuses/" + headSHA,
		"head":         r.headRefJSON(pr, headSHA),
		"base":         r.branchRefJSON(pr.base, baseSHA),
		"_links": map[string]any{
			"self": link(url), "html": link(html), "issue": link(issueURL),
			"comments": link(issueURL + "/comments"), "review_comments": link(url + "/comments"),
			"review_comment": link(r.apiURL() + "/pulls/comments{/number}"),
			"commits":        link(url + "/commits"), "statuses": link(r.apiURL() + "/statuses/" + headSHA),
		},
		"author_association": r.authorAssociation(is.user), "auto_merge": nil, "active_lock_reason": nil,
		"draft": pr.draft, "merged": pr.merged, "mergeable": mergeable, "rebaseable": false,
		"mergeable_state": mergeableState, "merged_by": mergedBy, "comments": len(is.comments),
		"review_comments": 0, "maintainer_can_modify": false, "commits": commits,
		"additions": 0, "deletions": 0, "changed_files": files,
	}
}

// prSHAs is a pull request's head and base SHAs: the branches' current heads while open, the
// recorded ones once closed.
func (r *Repo) prSHAs(is *issueState) (string, string) {
	pr := is.pr
	if is.state == "open" {
		head, base := pr.headSHA, pr.baseSHA
		if h, ok := r.branches[pr.head]; ok {
			head = h.String()
		}
		if h, ok := r.branches[pr.base]; ok {
			base = h.String()
		}
		return head, base
	}
	return pr.headSHA, pr.baseSHA
}

func (r *Repo) commentJSON(c *commentState) map[string]any {
	url := fmt.Sprintf("%s/issues/comments/%d", r.apiURL(), c.id)
	html := fmt.Sprintf("%s/issues/%d#issuecomment-%d", r.htmlURL(), c.number, c.id)
	if is := r.issues[c.number]; is != nil && is.pr != nil {
		html = fmt.Sprintf("%s/pull/%d#issuecomment-%d", r.htmlURL(), c.number, c.id)
	}
	return map[string]any{
		"url": url, "html_url": html, "issue_url": fmt.Sprintf("%s/issues/%d", r.apiURL(), c.number),
		"id": c.id, "node_id": nodeID("IC_", c.id), "user": r.s.userJSON(c.user),
		"created_at": isoTime(c.created), "updated_at": isoTime(c.updated),
		"author_association": r.authorAssociation(c.user), "performed_via_github_app": nil,
		"body": c.body, "reactions": r.reactionsJSON(url+"/reactions", c.reactions),
	}
}

// appJSON describes the fake GitHub App.
func (s *Server) appJSON() map[string]any {
	return map[string]any{
		"id": s.appID, "slug": appSlug, "node_id": nodeID("A_", s.appID),
		"owner": s.userJSON("storage-org"), "name": "storagebot", "description": "storagebot (fake)",
		"external_url": s.WebURL() + "storagebot", "html_url": s.WebURL() + "apps/" + appSlug,
		"created_at": isoTime(s.started), "updated_at": isoTime(s.started),
		"permissions": appPermissions(), "events": appEvents(),
	}
}

// otherAppJSON describes a GitHub App other than the fake's own, the owner of runs CreateCheckRunAs made.
func (s *Server) otherAppJSON(id int64, slug string) map[string]any {
	m := s.appJSON()
	m["id"], m["slug"], m["node_id"], m["name"] = id, slug, nodeID("A_", id), slug
	m["description"] = slug + " (another App)"
	m["external_url"], m["html_url"] = s.WebURL()+slug, s.WebURL()+"apps/"+slug
	return m
}

func (s *Server) installationLite() map[string]any {
	return map[string]any{"id": s.installationID, "node_id": nodeID("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u", s.installationID)}
}

// gitCommitJSON is a commit as GET /git/commits answers it.
func (r *Repo) gitCommitJSON(sha string) (map[string]any, error) {
	c, err := r.commitAt(sha)
	if err != nil {
		return nil, err
	}
	parents := make([]any, 0, len(c.ParentHashes))
	for _, p := range c.ParentHashes {
		parents = append(parents, map[string]any{
			"sha": p.String(), "url": r.apiURL() + "/git/commits/" + p.String(),
			"html_url": r.htmlURL() + "/commit/" + p.String(),
		})
	}
	sig := func(name, email string, when time.Time) map[string]any {
		return map[string]any{"name": name, "email": email, "date": isoTime(when)}
	}
	h := c.Hash.String()
	return map[string]any{
		"sha": h, "node_id": nodeID("C_", int64(userID(h))), "url": r.apiURL() + "/git/commits/" + h,
		"html_url":  r.htmlURL() + "/commit/" + h,
		"author":    sig(c.Author.Name, c.Author.Email, c.Author.When),
		"committer": sig(c.Committer.Name, c.Committer.Email, c.Committer.When),
		"message":   c.Message,
		"tree":      map[string]any{"sha": c.TreeHash.String(), "url": r.apiURL() + "/git/trees/" + c.TreeHash.String()},
		"parents":   parents,
		"verification": map[string]any{
			"verified": false, "reason": "unsigned", "signature": nil, "payload": nil,
		},
	}, nil
}
