package githubfake

import (
	"net/url"
	"regexp"
	"strings"
)

// handlerFunc answers one matched request; it returns the status and a value to encode as JSON
// (nil for no body), or an error (an *apiError for GitHub-shaped failures).
type handlerFunc func(c *call) (int, any, error)

// authKind says which credential a route requires.
type authKind int

const (
	authInstallation authKind = iota // an installation access token
	authApp                          // a JWT signed with the app's private key
	authNone                         // no credentials (the manifest code is the credential)
)

// route is one registered endpoint. pattern is spelled exactly as in endpoints.txt.
type route struct {
	pattern  string
	method   string
	re       *regexp.Regexp
	params   []string
	literals int
	auth     authKind
	handle   handlerFunc
}

// greedyParams are path parameters that may contain slashes (branch names, refs, file paths) even
// when endpoints.txt spells them without a regular expression, as GitHub accepts them.
var greedyParams = map[string]bool{"ref": true, "path": true, "branch": true, "basehead": true, "tree_sha": true}

var paramRE = regexp.MustCompile(`\{([a-z_]+)(?::([^}]*))?\}`)

// newRoute compiles "METHOD /path/{param}" into a matcher.
func newRoute(pattern string, auth authKind, h handlerFunc) route {
	method, path, _ := strings.Cut(pattern, " ")
	rt := route{pattern: pattern, method: method, auth: auth, handle: h}
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range paramRE.FindAllStringSubmatchIndex(path, -1) {
		lit := path[last:m[0]]
		rt.literals += len(lit)
		b.WriteString(regexp.QuoteMeta(lit))
		name := path[m[2]:m[3]]
		rt.params = append(rt.params, name)
		switch {
		case m[4] >= 0 && path[m[4]:m[5]] == ".*":
			b.WriteString("(.*)")
		case m[4] >= 0 || greedyParams[name]:
			b.WriteString("(.+)")
		default:
			b.WriteString("([^/]+)")
		}
		last = m[1]
	}
	rt.literals += len(path) - last
	b.WriteString(regexp.QuoteMeta(path[last:]))
	b.WriteString("$")
	rt.re = regexp.MustCompile(b.String())
	return rt
}

// match finds the most specific route for method and escaped path (the one with the most literal
// characters), and returns it with its unescaped parameters.
func match(routes []route, method, escapedPath string) (*route, map[string]string) {
	var best *route
	var bestGroups []string
	for i := range routes {
		rt := &routes[i]
		if rt.method != method {
			continue
		}
		groups := rt.re.FindStringSubmatch(escapedPath)
		if groups == nil {
			continue
		}
		if best == nil || rt.literals > best.literals {
			best, bestGroups = rt, groups
		}
	}
	if best == nil {
		return nil, nil
	}
	params := make(map[string]string, len(best.params))
	for i, name := range best.params {
		v, err := url.PathUnescape(bestGroups[i+1])
		if err != nil {
			v = bestGroups[i+1]
		}
		params[name] = v
	}
	return best, params
}

// GraphQLRoute is GitHub's GraphQL endpoint, counted like the REST routes (graphql.go).
const GraphQLRoute = "POST /graphql"

// routeTable lists every endpoint the fake serves.
func (s *Server) routeTable() []route {
	i, a := authInstallation, authApp
	return []route{
		newRoute("POST /app/installations/{installation_id}/access_tokens", a, s.createAccessToken),
		newRoute("GET /app", a, s.getApp),
		newRoute("GET /app/installations", a, s.listInstallations),
		newRoute("GET /installation/repositories", i, s.listInstallationRepos),
		newRoute("GET /app/installations/{installation_id}", a, s.getInstallation),
		newRoute("GET /repos/{owner}/{repo}/installation", a, s.getRepoInstallation),
		newRoute("POST /app-manifests/{code}/conversions", authNone, s.convertManifest),

		newRoute("GET /repos/{owner}/{repo}", i, s.getRepository),
		newRoute("GET /repos/{owner}/{repo}/git/ref/{ref:.+}", i, s.getRef),
		newRoute("GET /repos/{owner}/{repo}/git/matching-refs/{ref}", i, s.matchingRefs),
		newRoute("POST /repos/{owner}/{repo}/git/refs", i, s.createRef),
		newRoute("PATCH /repos/{owner}/{repo}/git/refs/{ref:.+}", i, s.updateRef),
		newRoute("DELETE /repos/{owner}/{repo}/git/refs/{ref:.+}", i, s.deleteRef),
		newRoute("GET /repos/{owner}/{repo}/git/trees/{tree_sha}", i, s.getTree),
		newRoute("POST /repos/{owner}/{repo}/git/trees", i, s.createTree),
		newRoute("GET /repos/{owner}/{repo}/git/commits/{commit_sha}", i, s.getGitCommit),
		newRoute("POST /repos/{owner}/{repo}/git/commits", i, s.createGitCommit),
		newRoute("GET /repos/{owner}/{repo}/git/blobs/{file_sha}", i, s.getBlob),
		newRoute("POST /repos/{owner}/{repo}/git/blobs", i, s.createBlob),
		newRoute("GET /repos/{owner}/{repo}/commits/{ref:.+}", i, s.getCommit),
		newRoute("GET /repos/{owner}/{repo}/compare/{basehead}", i, s.compare),
		newRoute("GET /repos/{owner}/{repo}/branches/{branch}", i, s.getBranch),
		newRoute("GET /repos/{owner}/{repo}/contents/{path:.*}", i, s.getContents),
		newRoute(GraphQLRoute, i, s.graphql),

		newRoute("GET /repos/{owner}/{repo}/pulls", i, s.listPulls),
		newRoute("POST /repos/{owner}/{repo}/pulls", i, s.createPull),
		newRoute("GET /repos/{owner}/{repo}/pulls/{pull_number}", i, s.getPull),
		newRoute("PATCH /repos/{owner}/{repo}/pulls/{pull_number}", i, s.updatePull),
		newRoute("GET /repos/{owner}/{repo}/pulls/{pull_number}/files", i, s.listPullFiles),
		newRoute("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", i, s.mergePull),

		newRoute("GET /repos/{owner}/{repo}/issues", i, s.listIssues),
		newRoute("POST /repos/{owner}/{repo}/issues", i, s.createIssue),
		newRoute("GET /repos/{owner}/{repo}/issues/{issue_number}", i, s.getIssue),
		newRoute("PATCH /repos/{owner}/{repo}/issues/{issue_number}", i, s.updateIssue),
		newRoute("GET /repos/{owner}/{repo}/issues/{issue_number}/comments", i, s.listComments),
		newRoute("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", i, s.createComment),
		newRoute("PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}", i, s.updateComment),
		newRoute("DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}", i, s.deleteComment),
		newRoute("POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions", i, s.createReaction),
		newRoute("POST /repos/{owner}/{repo}/issues/{issue_number}/labels", i, s.addLabels),
		newRoute("GET /repos/{owner}/{repo}/issues/{issue_number}/labels", i, s.listLabels),

		newRoute("POST /repos/{owner}/{repo}/check-runs", i, s.createCheckRun),
		newRoute("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", i, s.updateCheckRun),
		newRoute("GET /repos/{owner}/{repo}/check-runs/{check_run_id}", i, s.getCheckRun),
		newRoute("GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations", i, s.listAnnotations),
		newRoute("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", i, s.listCheckRunsForRef),

		newRoute("GET /repos/{owner}/{repo}/collaborators/{username}/permission", i, s.getPermission),

		newRoute("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", i, s.dispatchWorkflow),
		newRoute("GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", i, s.listWorkflowRuns),
		newRoute("GET /repos/{owner}/{repo}/actions/runs/{run_id}", i, s.getWorkflowRun),
		newRoute("GET /repos/{owner}/{repo}/deployments", i, s.listDeployments),
		newRoute("POST /repos/{owner}/{repo}/deployments", i, s.createDeployment),
		newRoute("GET /repos/{owner}/{repo}/deployments/{deployment_id}", i, s.getDeployment),
		newRoute("GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", i, s.listDeploymentStatuses),
		newRoute("POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", i, s.createDeploymentStatus),
	}
}
