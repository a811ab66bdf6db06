package githubfake

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The GitHub App manifest flow, as GitHub documents it ("Registering a GitHub App from a manifest"):
//
//  1. A page POSTs a form with the field `manifest` (the App's settings as JSON) to <web>/settings/apps/new
//     (a personal account) or <web>/organizations/<org>/settings/apps/new, with an optional `state` in the
//     query. GitHub shows the creation page, where the person may edit the name, and confirms.
//  2. GitHub registers the App and redirects to the manifest's redirect_url with a temporary `code` and the
//     `state`. The code is valid for one hour and for one exchange.
//  3. POST /app-manifests/{code}/conversions, without authentication, answers 201 with the App: id, slug,
//     owner, html_url, client_id, client_secret, webhook_secret and pem. A code that is unknown, used or
//     expired answers 404.
//
// The fake models one App: its ID, key and webhook secret are drawn when the fake starts. With
// Options.Unregistered it does not exist until this flow registers it (its JWTs answer 401 "Integration not
// found" until then). Registering it points the fake's webhooks at the manifest's hook_attributes.url. The
// fake's bot is always storagebot[bot], so the name must give the slug "storagebot"; registering it twice is
// refused the way GitHub refuses a name in use. Unlike GitHub, which refuses webhook URLs it cannot reach
// from the internet, loopback URLs are accepted: tests have nothing else.

// manifestCodeLifetime is how long a manifest code can be exchanged (GitHub: one hour).
const manifestCodeLifetime = time.Hour

// manifestCode is a code handed out on a redirect, waiting for its exchange.
type manifestCode struct {
	expires time.Time
}

// registeredApp is what the manifest flow registered: the settings GitHub keeps beside the fake's App
// identity (ID, key, webhook secret).
type registeredApp struct {
	name, description, homepage string
	owner, ownerType            string
	clientID, clientSecret      string
	permissions                 map[string]string
	events                      []string
	created                     time.Time
}

// appManifest is the manifest's JSON, the fields GitHub documents.
type appManifest struct {
	Name           string `json:"name"`
	URL            string `json:"url"`
	Description    string `json:"description"`
	HookAttributes *struct {
		URL    string `json:"url"`
		Active *bool  `json:"active"`
	} `json:"hook_attributes"`
	RedirectURL           string            `json:"redirect_url"`
	CallbackURLs          []string          `json:"callback_urls"`
	SetupURL              string            `json:"setup_url"`
	Public                bool              `json:"public"`
	DefaultEvents         []string          `json:"default_events"`
	DefaultPermissions    map[string]string `json:"default_permissions"`
	RequestOAuthOnInstall bool              `json:"request_oauth_on_install"`
	SetupOnUpdate         bool              `json:"setup_on_update"`
}

// AppRegistered reports whether the App exists on the fake: always, unless Options.Unregistered and the
// manifest flow has not run yet.
func (s *Server) AppRegistered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.unregistered
}

// ManifestCodesPending is how many manifest codes wait for their exchange.
func (s *Server) ManifestCodesPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.manifestCodes)
}

// ExpireManifestCodes makes every pending manifest code older than its hour, as if the person had left the
// flow for too long.
func (s *Server) ExpireManifestCodes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for code := range s.manifestCodes {
		s.manifestCodes[code] = manifestCode{expires: time.Now().Add(-time.Second)}
	}
}

// convertManifest exchanges a manifest code for the App's credentials (POST /app-manifests/{code}/conversions).
func (s *Server) convertManifest(c *call) (int, any, error) {
	code := c.params["code"]
	mc, ok := s.manifestCodes[code]
	if !ok || s.app == nil {
		return 0, nil, errNotFound
	}
	delete(s.manifestCodes, code) // one exchange, whatever its outcome
	if time.Now().After(mc.expires) {
		return 0, nil, errNotFound
	}
	a := s.app
	return http.StatusCreated, map[string]any{
		"id":             s.appID,
		"slug":           appSlug,
		"node_id":        nodeID("A_", s.appID),
		"owner":          s.ownerJSON(a.owner, a.ownerType),
		"name":           a.name,
		"description":    a.description,
		"external_url":   a.homepage,
		"html_url":       s.WebURL() + "apps/" + appSlug,
		"created_at":     isoTime(a.created),
		"updated_at":     isoTime(a.created),
		"permissions":    a.permissions,
		"events":         a.events,
		"client_id":      a.clientID,
		"client_secret":  a.clientSecret,
		"webhook_secret": s.secret,
		"pem":            string(s.keyPEM),
	}, nil
}

func (s *Server) ownerJSON(login, typ string) map[string]any {
	u := s.userJSON(login)
	u["type"] = typ
	return u
}

// manifestUser is the signed-in person registering a personal App.
const manifestUser = "storage-admin"

var (
	webNewApp    = regexp.MustCompile(`^(?:/organizations/([^/]+))?/settings/apps/new$`)
	webCreateApp = regexp.MustCompile(`^(?:/organizations/([^/]+))?/settings/apps$`)
	webAppPage   = regexp.MustCompile(`^/apps/([^/]+)(/installations/new)?$`)
)

// serveWeb answers the github.com pages the manifest flow goes through; path is below WebURL.
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request, path string) {
	s.logf("githubfake: web %s %s", r.Method, path)
	switch {
	case r.Method == http.MethodPost && webNewApp.MatchString(path):
		s.webNewApp(w, r, webNewApp.FindStringSubmatch(path)[1])
	case r.Method == http.MethodPost && webCreateApp.MatchString(path):
		s.webCreateApp(w, r, webCreateApp.FindStringSubmatch(path)[1])
	case r.Method == http.MethodGet && webAppPage.MatchString(path):
		m := webAppPage.FindStringSubmatch(path)
		s.webAppPage(w, m[1], m[2] != "")
	default:
		webPage(w, http.StatusNotFound, "Page not found", "This is not the web page you are looking for.", nil)
	}
}

// parseManifest reads and checks the manifest the way GitHub's creation page does before showing it.
func parseManifest(raw string) (*appManifest, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("the form has no manifest field")
	}
	var m appManifest
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("the manifest is not valid JSON for a GitHub App manifest: %v", err)
	}
	if !absoluteURL(m.URL) {
		return nil, fmt.Errorf("url (the App's homepage) is required and must be a full URL")
	}
	if m.HookAttributes != nil && (m.HookAttributes.Active == nil || *m.HookAttributes.Active) && !absoluteURL(m.HookAttributes.URL) {
		return nil, fmt.Errorf("hook_attributes.url must be a full URL when the webhook is active")
	}
	if m.RedirectURL != "" && !absoluteURL(m.RedirectURL) {
		return nil, fmt.Errorf("redirect_url must be a full URL")
	}
	for name, access := range m.DefaultPermissions {
		if access != "read" && access != "write" && access != "admin" {
			return nil, fmt.Errorf("default_permissions.%s: %q is not read, write or admin", name, access)
		}
	}
	return &m, nil
}

func absoluteURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// webNewApp is the creation page a manifest form lands on.
func (s *Server) webNewApp(w http.ResponseWriter, r *http.Request, org string) {
	if err := r.ParseForm(); err != nil {
		webPage(w, http.StatusBadRequest, "Bad request", err.Error(), nil)
		return
	}
	raw := r.PostForm.Get("manifest")
	m, err := parseManifest(raw)
	if err != nil {
		webPage(w, http.StatusUnprocessableEntity, "Invalid GitHub App manifest", err.Error(), nil)
		return
	}
	owner := manifestUser
	action := s.WebURL() + "settings/apps"
	if org != "" {
		owner = org
		action = s.WebURL() + "organizations/" + url.PathEscape(org) + "/settings/apps"
	}
	webPage(w, http.StatusOK, "Create GitHub App", "", map[string]any{
		"Form": true, "Action": action, "Owner": owner, "Manifest": raw, "State": r.URL.Query().Get("state"),
		"Name": m.Name, "Permissions": m.DefaultPermissions, "Events": m.DefaultEvents,
	})
}

// slugify turns an App name into its slug the way GitHub does: lower case, runs of other characters as one "-".
func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// webCreateApp registers the App and redirects to the manifest's redirect_url with the code and state.
func (s *Server) webCreateApp(w http.ResponseWriter, r *http.Request, org string) {
	if err := r.ParseForm(); err != nil {
		webPage(w, http.StatusBadRequest, "Bad request", err.Error(), nil)
		return
	}
	m, err := parseManifest(r.PostForm.Get("manifest"))
	if err != nil {
		webPage(w, http.StatusUnprocessableEntity, "Invalid GitHub App manifest", err.Error(), nil)
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	switch {
	case name == "":
		webPage(w, http.StatusUnprocessableEntity, "Could not create the GitHub App", "Name can't be blank.", nil)
		return
	case len(name) > 34:
		webPage(w, http.StatusUnprocessableEntity, "Could not create the GitHub App", "Name is too long (maximum is 34 characters).", nil)
		return
	case slugify(name) != appSlug:
		webPage(w, http.StatusUnprocessableEntity, "Could not create the GitHub App",
			fmt.Sprintf("The fake GitHub models one App, whose slug is %q; the name %q gives %q.", appSlug, name, slugify(name)), nil)
		return
	}
	owner, ownerType := manifestUser, "User"
	if org != "" {
		owner, ownerType = org, "Organization"
	}
	code := randomHex(20)
	s.mu.Lock()
	if !s.unregistered {
		s.mu.Unlock()
		webPage(w, http.StatusUnprocessableEntity, "Could not create the GitHub App", "Name is already in use.", nil)
		return
	}
	s.unregistered = false
	perms := map[string]string{}
	for k, v := range m.DefaultPermissions {
		perms[k] = v
	}
	s.app = &registeredApp{
		name: name, description: m.Description, homepage: m.URL, owner: owner, ownerType: ownerType,
		clientID: "Iv1." + randomHex(8), clientSecret: randomHex(20),
		permissions: perms, events: append([]string(nil), m.DefaultEvents...), created: time.Now().UTC().Truncate(time.Second),
	}
	if m.HookAttributes != nil && (m.HookAttributes.Active == nil || *m.HookAttributes.Active) {
		s.webhookURL = m.HookAttributes.URL
	}
	if s.manifestCodes == nil {
		s.manifestCodes = map[string]manifestCode{}
	}
	s.manifestCodes[code] = manifestCode{expires: time.Now().Add(manifestCodeLifetime)}
	s.mu.Unlock()

	if m.RedirectURL == "" {
		webPage(w, http.StatusOK, "GitHub App created", "The manifest has no redirect_url, so there is nowhere to send the code.", nil)
		return
	}
	target, _ := url.Parse(m.RedirectURL) // checked by parseManifest
	q := target.Query()
	q.Set("code", code)
	if state := r.URL.Query().Get("state"); state != "" {
		q.Set("state", state)
	}
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// webAppPage is the App's public page, or its installation page. The fake's single installation already
// covers every repository, so the installation page says where the App is installed.
func (s *Server) webAppPage(w http.ResponseWriter, slug string, install bool) {
	s.mu.Lock()
	found := slug == appSlug && !s.unregistered
	account := "storage-org"
	if len(s.repoOrder) > 0 {
		account = s.repoOrder[0].owner
	}
	s.mu.Unlock()
	if !found {
		webPage(w, http.StatusNotFound, "Page not found", "No GitHub App is called "+slug+".", nil)
		return
	}
	if install {
		webPage(w, http.StatusOK, "Install "+slug, slug+" is installed on "+account+" (all repositories).", nil)
		return
	}
	webPage(w, http.StatusOK, slug, "GitHub App "+slug+".", nil)
}

var webTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · GitHub (fake)</title>
<style>body{font-family:sans-serif;max-width:46rem;margin:2rem auto;color:#1f2328}
button{background:#1f883d;color:#fff;border:0;border-radius:6px;padding:.5rem 1rem;font-size:1rem}
input{font-size:1rem;padding:.3rem}</style></head>
<body><h1 id="title">{{.Title}}</h1>
{{with .Message}}<p id="message">{{.}}</p>{{end}}
{{with .Data}}{{if .Form}}
<form method="post" action="{{.Action}}{{with .State}}?state={{.}}{{end}}">
<p>Owner: <strong id="owner">{{.Owner}}</strong></p>
<p><label>GitHub App name <input id="name" name="name" value="{{.Name}}"></label></p>
<input type="hidden" name="manifest" value="{{.Manifest}}">
<h2>Permissions</h2><ul>{{range $k, $v := .Permissions}}<li>{{$k}}: {{$v}}</li>{{end}}</ul>
<h2>Events</h2><ul>{{range .Events}}<li>{{.}}</li>{{end}}</ul>
<button id="create" type="submit">Create GitHub App for {{.Owner}}</button>
</form>{{end}}{{end}}
</body></html>
`))

// webPage writes one HTML page of the fake's web side.
func webPage(w http.ResponseWriter, status int, title, message string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = webTemplate.Execute(w, map[string]any{"Title": title, "Message": message, "Data": data})
}
