package githubfake

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v50/github"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

const testManifest = `{"name":"storagebot","url":"https://example.com/storagebot","hook_attributes":{"url":"http://127.0.0.1:1/api/github/hook"},
"redirect_url":"http://127.0.0.1:1/setup/callback?keep=1","public":false,"default_permissions":{"checks":"write","metadata":"read"},"default_events":["pull_request"]}`

// register runs the browser's half of the manifest flow: the form POST, then the creation page's confirm.
// It returns the redirect's Location.
func register(t *testing.T, s *Server, org, name, manifest, state string) (int, string, string) {
	t.Helper()
	prefix := s.WebURL()
	if org != "" {
		prefix += "organizations/" + org + "/"
	}
	resp, err := http.PostForm(prefix+"settings/apps/new?state="+url.QueryEscape(state), url.Values{"manifest": {manifest}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, "", string(page)
	}
	if !strings.Contains(string(page), `id="create"`) {
		t.Fatalf("the creation page has no create button:\n%s", page)
	}
	resp, err = noRedirect.PostForm(prefix+"settings/apps?state="+url.QueryEscape(state), url.Values{"manifest": {manifest}, "name": {name}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

func convert(t *testing.T, s *Server, code string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(s.URL()+"app-manifests/"+code+"/conversions", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("conversion answer: %v", err)
	}
	return resp.StatusCode, out
}

// TestManifestFlow: the form POST, the redirect with code and state, one exchange of the code for a working
// App (its JWT and installation tokens accepted), a second exchange refused.
func TestManifestFlow(t *testing.T) {
	s := New(Options{Unregistered: true, Logf: t.Logf})
	t.Cleanup(s.Close)
	s.CreateRepo("storage-org", "package-storage", "main")
	if _, _, err := mustClient(t, s).Apps.Get(context.Background(), ""); err == nil {
		t.Fatal("GET /app with the JWT of an App not registered yet: no error, want 401")
	}

	status, location, body := register(t, s, "storage-org", "storagebot", testManifest, "st4te")
	if status != http.StatusFound {
		t.Fatalf("create = %d, want 302:\n%s", status, body)
	}
	loc, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	if loc.Path != "/setup/callback" || loc.Query().Get("state") != "st4te" || loc.Query().Get("keep") != "1" || len(loc.Query().Get("code")) != 40 {
		t.Fatalf("redirect to %s: want the redirect_url with its query, state=st4te and a 40-hex code", location)
	}
	code := loc.Query().Get("code")

	status, app := convert(t, s, code)
	if status != http.StatusCreated {
		t.Fatalf("conversion = %d %v, want 201", status, app)
	}
	for _, k := range []string{"client_id", "client_secret", "webhook_secret", "pem", "html_url", "slug", "name"} {
		if v, _ := app[k].(string); v == "" {
			t.Errorf("conversion answer has no %s", k)
		}
	}
	if id, _ := app["id"].(float64); int64(id) != s.AppID() {
		t.Errorf("id = %v, want %d", app["id"], s.AppID())
	}
	if owner, _ := app["owner"].(map[string]any); owner["login"] != "storage-org" || owner["type"] != "Organization" {
		t.Errorf("owner = %v, want the organization storage-org", app["owner"])
	}
	if app["webhook_secret"] != s.WebhookSecret() {
		t.Error("webhook_secret is not the secret the fake signs webhooks with")
	}

	// The App works: a JWT from the returned key and an installation token.
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, int64(app["id"].(float64)), []byte(app["pem"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	atr.BaseURL = strings.TrimSuffix(s.URL(), "/")
	itr := ghinstallation.NewFromAppsTransport(atr, s.InstallationID())
	itr.BaseURL = atr.BaseURL
	if _, err := itr.Token(context.Background()); err != nil {
		t.Errorf("installation token with the converted App's key: %v", err)
	}

	if status, out := convert(t, s, code); status != http.StatusNotFound {
		t.Errorf("second exchange of the same code = %d %v, want 404", status, out)
	}
	if status, _, body := register(t, s, "", "storagebot", testManifest, ""); status != http.StatusUnprocessableEntity || !strings.Contains(body, "already in use") {
		t.Errorf("registering the same name again = %d, want 422 'already in use':\n%s", status, body)
	}
}

func TestManifestRefusals(t *testing.T) {
	t.Run("expired code", func(t *testing.T) {
		s := New(Options{Unregistered: true})
		t.Cleanup(s.Close)
		status, location, body := register(t, s, "", "storagebot", testManifest, "")
		if status != http.StatusFound {
			t.Fatalf("create = %d:\n%s", status, body)
		}
		loc, _ := url.Parse(location)
		if loc.Query().Has("state") {
			t.Errorf("redirect %s carries a state nobody sent", location)
		}
		s.ExpireManifestCodes()
		if status, out := convert(t, s, loc.Query().Get("code")); status != http.StatusNotFound {
			t.Errorf("expired code = %d %v, want 404", status, out)
		}
	})
	t.Run("unknown code", func(t *testing.T) {
		s := New(Options{Unregistered: true})
		t.Cleanup(s.Close)
		if status, out := convert(t, s, "0123456789abcdef0123456789abcdef01234567"); status != http.StatusNotFound {
			t.Errorf("unknown code = %d %v, want 404", status, out)
		}
	})
	bad := []struct{ name, manifest, appName, want string }{
		{name: "not JSON", manifest: "{", appName: "storagebot", want: "not valid JSON"},
		{name: "no homepage", manifest: `{"name":"storagebot","redirect_url":"http://127.0.0.1:1/cb"}`, appName: "storagebot", want: "url (the App&#39;s homepage) is required"},
		{name: "unknown field", manifest: `{"name":"storagebot","url":"https://e.com","permissions":{}}`, appName: "storagebot", want: "unknown field"},
		{name: "bad access", manifest: `{"url":"https://e.com","default_permissions":{"checks":"all"}}`, appName: "storagebot", want: "not read, write or admin"},
		{name: "blank name", manifest: testManifest, appName: " ", want: "Name can&#39;t be blank"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Unregistered: true})
			t.Cleanup(s.Close)
			status, _, body := register(t, s, "", tc.appName, tc.manifest, "")
			if status != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) {
				t.Errorf("= %d, want 422 saying %q:\n%s", status, tc.want, body)
			}
			if s.AppRegistered() || s.ManifestCodesPending() != 0 {
				t.Error("a refused registration registered the App")
			}
		})
	}
}

func mustClient(t *testing.T, s *Server) *github.Client {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), s.PrivateKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	atr.BaseURL = strings.TrimSuffix(s.URL(), "/")
	c := github.NewClient(&http.Client{Transport: atr})
	c.BaseURL, _ = url.Parse(s.URL())
	return c
}
