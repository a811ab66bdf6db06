package setup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/appmanifest"
)

// Paths the flow serves. WebhookPath is where the registered App's webhooks go.
const (
	CallbackPath = "/setup/callback"
	WebhookPath  = "/api/github/hook"
)

// stateLifetime is how long a setup page's state is accepted: GitHub's code lives one hour, and the whole
// flow must finish within it.
const stateLifetime = time.Hour

// maxStates bounds the states kept for pages opened and not finished; the oldest is forgotten past it.
const maxStates = 100

// Options configure a Flow.
type Options struct {
	// WebURL is GitHub's web address (https://github.com, or a GitHub Enterprise host), where the manifest
	// is posted; APIURL is its REST API (https://api.github.com/), where the code is exchanged.
	WebURL, APIURL string
	// PublicURL is where GitHub and people reach this server; "" derives it from each request's Host.
	PublicURL string
	// Org registers the App under this organization instead of the person's own account.
	Org string
	// AppName is the name proposed to GitHub (the person may change it there); "" is "storagebot".
	AppName string
	// CredentialsPath is where the credentials are written (mode 0600).
	CredentialsPath string
	// HTTPClient makes the exchange; nil is a client with a 30 s timeout.
	HTTPClient *http.Client
	// Complete starts serving with the new credentials; it runs once, after they are written. An error
	// leaves the server in setup mode, with the credentials on disk for the next start.
	Complete func(*Credentials) error
}

// Flow serves the setup page and GitHub's callback. It is safe for concurrent use; callbacks run one at a
// time, so a double click or a reload never exchanges a code twice.
type Flow struct {
	opts     Options
	exchange sync.Mutex // held through a whole callback

	mu     sync.Mutex
	states map[string]time.Time // state → when it expires
	done   *summary             // set once the App is registered and serving
}

// summary is what the done page shows: nothing secret.
type summary struct {
	Name, Slug, Owner, HTMLURL, InstallURL, WebhookURL, CredentialsPath string
	AppID                                                               int64
}

// New returns a flow; mount it with Mount.
func New(opts Options) *Flow {
	if opts.AppName == "" {
		opts.AppName = "storagebot"
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Flow{opts: opts, states: map[string]time.Time{}}
}

// Mount registers the setup page (GET /) and the callback (GET /setup/callback) on mux.
func (f *Flow) Mount(mux interface{ Handle(string, http.Handler) }) {
	mux.Handle("GET /{$}", http.HandlerFunc(f.page))
	mux.Handle("GET "+CallbackPath, http.HandlerFunc(f.callback))
}

// Done reports whether the App was registered and handed to the server.
func (f *Flow) Done() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done != nil
}

// publicBase is the server's public address without a trailing slash, and whether it was derived from the
// request because none is configured.
func (f *Flow) publicBase(r *http.Request) (string, bool) {
	if f.opts.PublicURL != "" {
		return strings.TrimSuffix(f.opts.PublicURL, "/"), false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host, true
}

// newState draws a state for one setup page and remembers it for an hour.
func (f *Flow) newState(now time.Time) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("draw a state: %w", err)
	}
	state := hex.EncodeToString(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	var oldest string
	for s, exp := range f.states {
		if now.After(exp) {
			delete(f.states, s)
		} else if oldest == "" || exp.Before(f.states[oldest]) {
			oldest = s
		}
	}
	if len(f.states) >= maxStates {
		delete(f.states, oldest)
	}
	f.states[state] = now.Add(stateLifetime)
	return state, nil
}

// knownState reports whether state came from one of this server's setup pages within the hour.
func (f *Flow) knownState(state string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.states[state]
	return ok && !now.After(exp)
}

func (f *Flow) forgetState(state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.states, state)
}

// page is GET /: the setup page, or once done, what was registered and where to install it.
func (f *Flow) page(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	done := f.done
	f.mu.Unlock()
	if done != nil {
		render(w, http.StatusOK, "done", done)
		return
	}
	base, derived := f.publicBase(r)
	state, err := f.newState(time.Now())
	if err != nil {
		renderError(w, http.StatusInternalServerError, "storagebot could not draw a random state for this page: "+err.Error(), "Reload the page.")
		return
	}
	manifest := appmanifest.NewManifest(f.opts.AppName, base+WebhookPath, base+CallbackPath)
	data, err := json.Marshal(manifest)
	if err != nil {
		renderError(w, http.StatusInternalServerError, "storagebot could not encode its App manifest: "+err.Error(), "Report this as a bug.")
		return
	}
	web := strings.TrimSuffix(f.opts.WebURL, "/") + "/"
	action, owner := web+"settings/apps/new", "your personal account"
	if f.opts.Org != "" {
		action, owner = web+"organizations/"+url.PathEscape(f.opts.Org)+"/settings/apps/new", "the organization "+f.opts.Org
	}
	var warnings []string
	if derived {
		warnings = append(warnings, fmt.Sprintf("No public URL is set, so the App's URLs use %s, the address this page was opened at. Set --public-url (STORAGEBOT_PUBLIC_URL) to the address GitHub reaches this server at.", base))
	}
	if h := hostOf(base); !publicHost(h) {
		warnings = append(warnings, fmt.Sprintf("GitHub delivers webhooks only to addresses on the internet, and %s is not one: set --public-url to a public address (or a tunnel to this server) before registering, or change the App's webhook URL on GitHub afterwards.", h))
	}
	render(w, http.StatusOK, "setup", map[string]any{
		"Action": action + "?state=" + state, "Manifest": string(data), "Owner": owner, "Web": web,
		"Name": manifest.Name, "WebhookURL": manifest.HookAttributes.URL, "RedirectURL": manifest.RedirectURL,
		"CredentialsPath": f.opts.CredentialsPath, "Warnings": warnings,
		"Permissions": appmanifest.Permissions(), "Events": appmanifest.SubscribedEvents(),
	})
}

// validCode reports whether code has the shape of a manifest code: 1 to 100 of [A-Za-z0-9_-]. GitHub's are
// hex; anything that could leave the URL path is refused. A loop, not the regexp ^[A-Za-z0-9_-]{1,100}$:
// compiling that (its repetition makes 100 copies) took ~1.5 ms of the init of every command of the binary.
func validCode(code string) bool {
	if len(code) < 1 || len(code) > 100 {
		return false
	}
	for _, c := range []byte(code) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// callback is GitHub's redirect after the App was created: it checks the state, exchanges the code, writes
// the credentials and switches the server to serving.
func (f *Flow) callback(w http.ResponseWriter, r *http.Request) {
	f.exchange.Lock()
	defer f.exchange.Unlock()
	log := zerolog.Ctx(r.Context())
	if f.Done() {
		renderError(w, http.StatusConflict, "storagebot is already set up; this link was used before, and nothing was changed.", "Open the start page to see the App and install it.")
		return
	}
	q := r.URL.Query()
	code, state := q.Get("code"), q.Get("state")
	again := "Start again: open the setup page and click the button. If GitHub created an App on the way, delete it first (on GitHub: the App's settings, Advanced, Delete GitHub App)."
	if !validCode(code) {
		renderError(w, http.StatusBadRequest, "This link carries no valid code from GitHub.", again)
		return
	}
	if !f.knownState(state, time.Now()) {
		log.Warn().Msg("setup callback with an unknown or expired state refused")
		renderError(w, http.StatusBadRequest, "This link did not come from this server's setup page, or it is more than an hour old, so storagebot will not use its code.", again)
		return
	}
	path := f.opts.CredentialsPath
	if err := CheckWritable(path); err != nil {
		log.Error().Err(err).Str("path", path).Msg("setup: the credentials file cannot be written; the code was not exchanged")
		renderError(w, http.StatusInternalServerError,
			fmt.Sprintf("storagebot cannot write its credentials file %s: %v. Nothing was exchanged with GitHub yet.", path, err),
			"Make the file's directory writable for storagebot, or point --credentials-file (STORAGEBOT_CREDENTIALS_FILE) elsewhere and restart, then reload this page: GitHub's code stays valid for an hour.")
		return
	}
	creds, status, err := f.exchangeCode(r.Context(), code)
	if err != nil {
		log.Error().Err(err).Int("status", status).Msg("setup: exchanging the manifest code failed")
		switch status {
		case http.StatusNotFound, http.StatusUnprocessableEntity:
			renderError(w, http.StatusBadRequest, fmt.Sprintf("GitHub refused the code (%d): it was already used, it is more than an hour old, or it comes from another GitHub than %s.", status, f.opts.APIURL), again)
		default:
			renderError(w, http.StatusBadGateway, fmt.Sprintf("storagebot could not exchange the code with GitHub at %s: %v.", f.opts.APIURL, err), "Reload this page to try again: the code stays valid for an hour.")
		}
		return
	}
	if err := creds.Validate(); err != nil {
		renderError(w, http.StatusBadGateway, fmt.Sprintf("GitHub's answer holds no usable App credentials (%v), so nothing was written.", err), again)
		return
	}
	// With an organization configured, only an App that organization owns is taken: whoever reaches this
	// page can register an App, but only the organization's admins can register one for it.
	if f.opts.Org != "" && !strings.EqualFold(creds.Owner, f.opts.Org) {
		log.Warn().Str("owner", creds.Owner).Str("setup_org", f.opts.Org).Msg("setup: an App owned by another account was refused")
		renderError(w, http.StatusForbidden,
			fmt.Sprintf("The App %s belongs to %s, not to the organization %s this server is set up for, so storagebot did not take it and wrote nothing.", creds.Name, creds.Owner, f.opts.Org),
			fmt.Sprintf("Delete that App at %s, then start again from the setup page and register the App for %s.", creds.HTMLURL, f.opts.Org))
		return
	}
	if err := Save(path, creds); err != nil {
		log.Error().Err(err).Str("path", path).Msg("setup: writing the credentials file failed")
		renderError(w, http.StatusInternalServerError,
			fmt.Sprintf("GitHub created the App %s, but its credentials could not be written to %s: %v. GitHub hands out the private key only once.", creds.Name, path, err),
			fmt.Sprintf("Delete the App at %s (Advanced, Delete GitHub App), make %s writable, and start again from the setup page.", creds.HTMLURL, path))
		return
	}
	f.forgetState(state)
	base, _ := f.publicBase(r)
	log.Info().Int64("app_id", creds.AppID).Str("slug", creds.Slug).Str("owner", creds.Owner).Str("path", path).Msg("setup: GitHub App registered, credentials written")
	if err := f.opts.Complete(creds); err != nil {
		log.Error().Err(err).Msg("setup: serving with the new App failed")
		renderError(w, http.StatusInternalServerError,
			fmt.Sprintf("The App %s is registered and its credentials are in %s, but storagebot could not start serving with them: %v.", creds.Name, path, err),
			"Restart storagebot: it reads the credentials file on start.")
		return
	}
	f.mu.Lock()
	f.done = &summary{
		Name: creds.Name, Slug: creds.Slug, Owner: creds.Owner, HTMLURL: creds.HTMLURL, InstallURL: creds.InstallURL(),
		WebhookURL: base + WebhookPath, CredentialsPath: path, AppID: creds.AppID,
	}
	f.mu.Unlock()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// exchangeCode turns the code into credentials (POST /app-manifests/{code}/conversions, no authentication).
// status is GitHub's answer when it answered with an error.
func (f *Flow) exchangeCode(ctx context.Context, code string) (*Credentials, int, error) {
	client := github.NewClient(f.opts.HTTPClient)
	base, err := url.Parse(strings.TrimSuffix(f.opts.APIURL, "/") + "/")
	if err != nil {
		return nil, 0, fmt.Errorf("GitHub API URL: %w", err)
	}
	client.BaseURL = base
	client.UserAgent = "storagebot-setup"
	cfg, _, err := client.Apps.CompleteAppManifest(ctx, code)
	if err != nil {
		var ge *github.ErrorResponse
		if errors.As(err, &ge) && ge.Response != nil {
			return nil, ge.Response.StatusCode, fmt.Errorf("exchange the manifest code: %s", ge.Message)
		}
		return nil, 0, fmt.Errorf("exchange the manifest code: %w", err)
	}
	c := &Credentials{
		AppID: cfg.GetID(), Slug: cfg.GetSlug(), Name: cfg.GetName(), Owner: cfg.GetOwner().GetLogin(),
		HTMLURL: cfg.GetHTMLURL(), ClientID: cfg.GetClientID(), ClientSecret: cfg.GetClientSecret(),
		WebhookSecret: cfg.GetWebhookSecret(), PEM: cfg.GetPEM(), CreatedAt: cfg.GetCreatedAt().Time,
	}
	return c, 0, nil
}

func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	return u.Hostname()
}

// publicHost reports whether GitHub could deliver webhooks to host: not localhost, not a loopback,
// private, link-local or unspecified address.
func publicHost(host string) bool {
	if host == "" || strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return true // a name; whether it resolves publicly is GitHub's to find out
	}
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified())
}

func renderError(w http.ResponseWriter, status int, what, next string) {
	render(w, status, "error", map[string]string{"What": what, "Next": next})
}

func render(w http.ResponseWriter, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store") // the setup page carries a one-time state
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = pages().ExecuteTemplate(w, page, data)
}
