package setup

import (
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
)

// env is a setup flow served on loopback against a fake GitHub whose App is not registered yet.
type env struct {
	t        *testing.T
	fake     *githubfake.Server
	srv      *httptest.Server
	flow     *Flow
	path     string
	mu       sync.Mutex
	complete []*Credentials
	fail     error
}

func newEnv(t *testing.T, path string) *env {
	t.Helper()
	e := &env{t: t, fake: githubfake.New(githubfake.Options{Unregistered: true, Logf: t.Logf}), path: path}
	t.Cleanup(e.fake.Close)
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.flow = New(Options{
		WebURL: e.fake.WebURL(), APIURL: e.fake.URL(), PublicURL: e.srv.URL, Org: "storage-org", CredentialsPath: path,
		Complete: func(c *Credentials) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.complete = append(e.complete, c)
			return e.fail
		},
	})
	e.flow.Mount(mux)
	return e
}

var (
	actionRE   = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	manifestRE = regexp.MustCompile(`name="manifest" value="([^"]+)"`)
)

func get(t *testing.T, client *http.Client, u string) (int, string, *http.Response) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), resp
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// toCallback loads the setup page, posts its form to the fake GitHub, confirms there, and returns the callback
// URL GitHub redirects to (not yet followed).
func (e *env) toCallback() string {
	e.t.Helper()
	status, page, _ := get(e.t, http.DefaultClient, e.srv.URL+"/")
	if status != http.StatusOK {
		e.t.Fatalf("setup page = %d:\n%s", status, page)
	}
	am, mm := actionRE.FindStringSubmatch(page), manifestRE.FindStringSubmatch(page)
	if am == nil || mm == nil {
		e.t.Fatalf("setup page has no manifest form:\n%s", page)
	}
	action, manifest := html.UnescapeString(am[1]), html.UnescapeString(mm[1])
	if !strings.HasPrefix(action, e.fake.WebURL()+"organizations/storage-org/settings/apps/new?state=") {
		e.t.Fatalf("form posts to %s, want the organization's new-App page with a state", action)
	}
	resp, err := http.PostForm(action, url.Values{"manifest": {manifest}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GitHub's creation page = %d", resp.StatusCode)
	}
	state := strings.SplitN(action, "state=", 2)[1]
	create := e.fake.WebURL() + "organizations/storage-org/settings/apps?state=" + state
	resp, err = noRedirect.PostForm(create, url.Values{"manifest": {manifest}, "name": {"storagebot"}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("create = %d, want a redirect", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

func TestSetupFlowRegistersTheApp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conf", "github-app.json")
	e := newEnv(t, path)
	callback := e.toCallback()
	if !strings.HasPrefix(callback, e.srv.URL+CallbackPath+"?") {
		t.Fatalf("GitHub redirects to %s, want this server's callback", callback)
	}
	status, page, resp := get(t, http.DefaultClient, callback) // follows the redirect to the done page
	if status != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("callback = %d at %s:\n%s", status, resp.Request.URL, page)
	}
	install := e.fake.WebURL() + "apps/storagebot/installations/new"
	if !strings.Contains(page, `href="`+install+`"`) || !strings.Contains(page, "storagebot is set up") {
		t.Errorf("done page has no install link to %s:\n%s", install, page)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode = %v, want 0600", st.Mode().Perm())
	}
	creds, err := Load(path)
	if err != nil || creds == nil {
		t.Fatalf("Load = %v, %v", creds, err)
	}
	if creds.AppID != e.fake.AppID() || creds.WebhookSecret != e.fake.WebhookSecret() || creds.PEM != string(e.fake.PrivateKeyPEM()) || creds.Owner != "storage-org" {
		t.Errorf("written credentials are not the App GitHub created (app %d, owner %s)", creds.AppID, creds.Owner)
	}
	if len(e.complete) != 1 || e.complete[0].AppID != e.fake.AppID() {
		t.Errorf("Complete ran %d times, want once with the new App", len(e.complete))
	}
	if strings.Contains(page, creds.WebhookSecret) || strings.Contains(page, "PRIVATE KEY") || strings.Contains(page, creds.ClientSecret) {
		t.Error("the done page shows key material")
	}

	// The same callback again: nothing exchanged, nothing written, a page that says so.
	before, _ := os.ReadFile(path)
	status, page, _ = get(t, noRedirect, callback)
	if status != http.StatusConflict || !strings.Contains(page, "already set up") {
		t.Errorf("replayed callback = %d:\n%s", status, page)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) || len(e.complete) != 1 {
		t.Error("a replayed callback changed the credentials or completed again")
	}
}

func TestSetupFlowRefusals(t *testing.T) {
	// Each refused callback answers with a page saying why, and writes and completes nothing.
	for _, tc := range []struct {
		name string
		// callback prepares the refusal and returns the callback URL to follow.
		callback   func(t *testing.T, e *env) string
		wantStatus int
		wantPage   []string
		// after checks what else the refusal must leave as it was.
		after func(t *testing.T, e *env)
	}{
		{
			name: "state not from this server",
			callback: func(t *testing.T, e *env) string {
				u, _ := url.Parse(e.toCallback())
				q := u.Query()
				q.Set("state", "0123456789abcdef0123456789abcdef")
				u.RawQuery = q.Encode()
				return u.String()
			},
			wantStatus: http.StatusBadRequest,
			wantPage:   []string{"did not come from this server", "Start again"},
			after: func(t *testing.T, e *env) {
				if e.fake.ManifestCodesPending() != 1 {
					t.Error("the code was exchanged despite a forged state")
				}
			},
		},
		{
			name: "code already used",
			callback: func(t *testing.T, e *env) string {
				callback := e.toCallback()
				u, _ := url.Parse(callback)
				resp, err := http.Post(e.fake.URL()+"app-manifests/"+u.Query().Get("code")+"/conversions", "application/json", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close() // someone else exchanged it first
				return callback
			},
			wantStatus: http.StatusBadRequest,
			wantPage:   []string{"GitHub refused the code (404)", "delete it first"},
		},
		{
			name: "expired code",
			callback: func(t *testing.T, e *env) string {
				callback := e.toCallback()
				e.fake.ExpireManifestCodes()
				return callback
			},
			wantStatus: http.StatusBadRequest,
			wantPage:   []string{"more than an hour old"},
		},
		{
			name: "malformed code",
			callback: func(t *testing.T, e *env) string {
				return e.srv.URL + CallbackPath + "?code=..%2F..%2Fapp&state=x"
			},
			wantStatus: http.StatusBadRequest,
			wantPage:   []string{"no valid code"},
		},
		{
			name: "App owned by another account than the organization",
			callback: func(t *testing.T, e *env) string {
				// The page's state, but the manifest posted to a personal account's new-App page.
				status, page, _ := get(t, http.DefaultClient, e.srv.URL+"/")
				if status != http.StatusOK {
					t.Fatal(page)
				}
				action := html.UnescapeString(actionRE.FindStringSubmatch(page)[1])
				manifest := html.UnescapeString(manifestRE.FindStringSubmatch(page)[1])
				state := strings.SplitN(action, "state=", 2)[1]
				resp, err := noRedirect.PostForm(e.fake.WebURL()+"settings/apps?state="+state, url.Values{"manifest": {manifest}, "name": {"storagebot"}})
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.Header.Get("Location")
			},
			wantStatus: http.StatusForbidden,
			wantPage:   []string{"belongs to storage-admin, not to the organization storage-org"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "github-app.json")
			e := newEnv(t, path)
			status, page, _ := get(t, noRedirect, tc.callback(t, e))
			if status != tc.wantStatus || !containsAll(page, tc.wantPage) {
				t.Errorf("callback = %d, want %d saying %q:\n%s", status, tc.wantStatus, tc.wantPage, page)
			}
			if tc.after != nil {
				tc.after(t, e)
			}
			assertNothingWritten(t, e, path)
		})
	}
	t.Run("credentials file cannot be written, then can", func(t *testing.T) {
		dir := t.TempDir()
		blocker := filepath.Join(dir, "conf")
		if err := os.WriteFile(blocker, []byte("a file where a directory should be"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(blocker, "github-app.json")
		e := newEnv(t, path)
		callback := e.toCallback()
		status, page, _ := get(t, noRedirect, callback)
		if status != http.StatusInternalServerError || !strings.Contains(page, "cannot write its credentials file "+path) || !strings.Contains(page, "reload this page") {
			t.Errorf("unwritable file = %d:\n%s", status, page)
		}
		if e.fake.ManifestCodesPending() != 1 || e.flow.Done() || len(e.complete) != 0 {
			t.Fatal("the code was exchanged although the credentials had nowhere to go")
		}
		// Fixed: the same link works, as the page says.
		if err := os.Remove(blocker); err != nil {
			t.Fatal(err)
		}
		status, page, _ = get(t, noRedirect, callback)
		if status != http.StatusSeeOther {
			t.Fatalf("reload after the fix = %d:\n%s", status, page)
		}
		if c, err := Load(path); err != nil || c == nil {
			t.Errorf("credentials after the fix: %v, %v", c, err)
		}
	})
	t.Run("serving with the new App fails", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "github-app.json")
		e := newEnv(t, path)
		e.fail = errors.New("queue exploded")
		status, page, _ := get(t, noRedirect, e.toCallback())
		if status != http.StatusInternalServerError || !strings.Contains(page, "queue exploded") || !strings.Contains(page, "Restart storagebot") {
			t.Errorf("failed start = %d:\n%s", status, page)
		}
		if c, err := Load(path); err != nil || c == nil {
			t.Errorf("the credentials must stay on disk for the next start: %v, %v", c, err)
		}
		if e.flow.Done() {
			t.Error("the flow says done although serving failed")
		}
	})
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func assertNothingWritten(t *testing.T, e *env, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("credentials file exists after a refused callback (%v)", err)
	}
	if len(e.complete) != 0 || e.flow.Done() {
		t.Error("a refused callback completed the setup")
	}
}

func TestSetupPageWarnsAboutUnreachableURLs(t *testing.T) {
	f := New(Options{WebURL: "https://github.com", APIURL: "https://api.github.com/", CredentialsPath: "/x/github-app.json"})
	mux := http.NewServeMux()
	f.Mount(mux)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/", nil)
	mux.ServeHTTP(rec, req)
	page := rec.Body.String()
	for _, want := range []string{"No public URL is set", "127.0.0.1 is not one", "https://github.com/settings/apps/new?state=", "http://127.0.0.1:8080/api/github/hook", "pull_requests"} {
		if !strings.Contains(page, want) {
			t.Errorf("setup page does not say %q", want)
		}
	}
	f2 := New(Options{WebURL: "https://github.com", PublicURL: "https://bot.example.com", CredentialsPath: "/x"})
	mux2 := http.NewServeMux()
	f2.Mount(mux2)
	rec = httptest.NewRecorder()
	mux2.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080/", nil))
	if strings.Contains(rec.Body.String(), `class="warn"`) {
		t.Errorf("a public URL on the internet still warns:\n%s", rec.Body.String())
	}
}

func TestLoadRefusesUnusableFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if c, err := Load(filepath.Join(dir, "absent.json")); c != nil || err != nil {
		t.Errorf("absent file = %v, %v; want nothing and no error (setup mode)", c, err)
	}
	secret := "whsec-do-not-print"
	tests := []struct{ name, content, want string }{
		{name: "not JSON", content: `{"app_id": 1, "webhook_secret": "` + secret + `"`, want: "not valid JSON"},
		{name: "unknown field", content: `{"app_id": 1, "private_key": "` + secret + `"}`, want: "does not hold storagebot credentials"},
		{name: "no key", content: `{"app_id": 1, "webhook_secret": "` + secret + `"}`, want: "pem: no PEM block"},
		{name: "no app id", content: `{"webhook_secret": "` + secret + `"}`, want: "app_id is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "-")+".json", tc.content)
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("Load = %v, want an error naming %s and saying %q", err, p, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error quotes the file's secret: %v", err)
			}
		})
	}
}
