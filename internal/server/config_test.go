package server

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "empty file keeps defaults", yaml: "", check: func(t *testing.T, c Config) {
			if diff := cmp.Diff(Default(), c); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		}},
		{name: "values override defaults", yaml: "addr: \":9000\"\nqueue:\n  size: 5\n  workers: 2\nshutdown_timeout: 3s\ngithub_timeout: 5s\ngithub_max_wait: 20s\ngithub_write_settle: 2s\ngithub:\n  app:\n    integration_id: 42\n", check: func(t *testing.T, c Config) {
			if c.GitHubTimeout != 5*time.Second || c.GitHubMaxWait != 20*time.Second || c.GitHubWriteSettle != 2*time.Second {
				t.Errorf("github_timeout, github_max_wait, github_write_settle = %s, %s, %s, want 5s, 20s, 2s", c.GitHubTimeout, c.GitHubMaxWait, c.GitHubWriteSettle)
			}
			if c.Addr != ":9000" || c.Queue.Size != 5 || c.Queue.Workers != 2 || c.ShutdownTimeout != 3*time.Second || c.GitHub.App.IntegrationID != 42 {
				t.Errorf("got %+v", c)
			}
			if c.Log.Format != "json" {
				t.Errorf("unset log format = %q, want default json", c.Log.Format)
			}
		}},
		{name: "unknown key names its YAML path and line", yaml: "addr: x\nqueue:\n  sise: 3\n", wantErr: "config.yml:3: unknown key queue.sise (valid under queue: size, workers)"},
		{name: "unknown nested key", yaml: "github:\n  app:\n    privat_key: x\n", wantErr: "config.yml:3: unknown key github.app.privat_key (valid under github.app: integration_id, webhook_secret, private_key)"},
		{name: "unknown top-level key", yaml: "adr: x\n", wantErr: "config.yml:1: unknown key adr (valid at the top level: addr,"},
		{name: "syntax error names line", yaml: "addr: [\n", wantErr: "config.yml:1: did not find expected node content"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			err := LoadFile(writeFile(t, "config.yml", tc.yaml), &c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestValidate(t *testing.T) {
	key := testKeyPEM(t)
	keyFile := writeFile(t, "app.pem", key)
	good := func() Config {
		c := Default()
		c.GitHub.App.IntegrationID = 7
		c.GitHub.App.PrivateKey = key
		c.GitHub.App.WebhookSecret = "x"
		return c
	}
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string
	}{
		{name: "valid", mutate: func(c *Config) {}},
		{name: "key as a file path", mutate: func(c *Config) { c.GitHub.App.PrivateKey = keyFile }},
		{name: "no secret", mutate: func(c *Config) { c.GitHub.App.WebhookSecret = "" }, wantErr: "GITHUB_APP_WEBHOOK_SECRET"},
		{name: "no secret but insecure flag", mutate: func(c *Config) { c.GitHub.App.WebhookSecret = ""; c.InsecureSkipSignature = true }},
		{name: "no key", mutate: func(c *Config) { c.GitHub.App.PrivateKey = "" }, wantErr: "GITHUB_APP_PRIVATE_KEY"},
		{name: "key file missing", mutate: func(c *Config) { c.GitHub.App.PrivateKey = "/nonexistent/app.pem" }, wantErr: "neither PEM text nor the path of a readable file (no such file or directory)"},
		{name: "garbage PEM", mutate: func(c *Config) {
			c.GitHub.App.PrivateKey = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
		}, wantErr: "does not parse as an RSA private key"},
		{name: "no app id", mutate: func(c *Config) { c.GitHub.App.IntegrationID = 0 }, wantErr: "GitHub App ID missing"},
		{name: "negative app id is invalid, not missing", mutate: func(c *Config) { c.GitHub.App.IntegrationID = -5 }, wantErr: "GitHub App ID -5 is not valid"},
		{name: "listen address without a port", mutate: func(c *Config) { c.Addr = "bogus" }, wantErr: `listen address "bogus" is not host:port`},
		{name: "listen address with a bad port", mutate: func(c *Config) { c.Addr = ":99999" }, wantErr: `listen address ":99999"`},
		{name: "negative shutdown timeout", mutate: func(c *Config) { c.ShutdownTimeout = -time.Second }, wantErr: "shutdown timeout -1s must be positive"},
		{name: "negative reconcile interval", mutate: func(c *Config) { c.ReconcileInterval = -time.Minute }, wantErr: "reconcile interval -1m0s must not be negative"},
		{name: "in-flight budget below the body cap", mutate: func(c *Config) { c.MaxInflightBodyBytes = c.MaxBodyBytes - 1 }, wantErr: "max_inflight_body_bytes"},
		{name: "bad log format", mutate: func(c *Config) { c.Log.Format = "xml" }, wantErr: `log format "xml"`},
		{name: "zero workers", mutate: func(c *Config) { c.Queue.Workers = 0 }, wantErr: "queue.workers"},
		{name: "no GitHub request deadline", mutate: func(c *Config) { c.GitHubTimeout = 0 }, wantErr: "github_timeout"},
		{name: "negative wait budget", mutate: func(c *Config) { c.GitHubMaxWait = -time.Second }, wantErr: "github_max_wait"},
		{name: "no write settle time", mutate: func(c *Config) { c.GitHubWriteSettle = 0 }, wantErr: "github_write_settle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	t.Setenv("GITHUB_APP_INTEGRATION_ID", "99")
	t.Setenv("GITHUB_V3_API_URL", "http://127.0.0.1:1/api/v3/")
	env := map[string]string{"STORAGEBOT_ADDR": ":7000", "GITHUB_APP_INTEGRATION_ID": "99"}
	c := Default()
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7000" || c.GitHub.App.IntegrationID != 99 || c.GitHub.V3APIURL != "http://127.0.0.1:1/api/v3/" {
		t.Errorf("got addr %q id %d api %q", c.Addr, c.GitHub.App.IntegrationID, c.GitHub.V3APIURL)
	}
	env["GITHUB_APP_INTEGRATION_ID"] = "abc"
	for _, bad := range []string{"abc", "-5", "0"} {
		env["GITHUB_APP_INTEGRATION_ID"] = bad
		if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil || !strings.Contains(err.Error(), "is not a valid App ID") {
			t.Errorf("GITHUB_APP_INTEGRATION_ID=%s: err = %v, want an invalid App ID complaint", bad, err)
		}
	}
}

// TestPrivateKeyErrorsNeverQuoteTheKey feeds the malformed forms a key takes in practice and checks the error
// says what is wrong without a single 12-character run of the key material in it.
func TestPrivateKeyErrorsNeverQuoteTheKey(t *testing.T) {
	for _, tc := range malformedKeys(t) {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.GitHub.App.PrivateKey = tc.value
			_, err := c.PrivateKey()
			if err == nil {
				t.Fatal("a malformed key was accepted")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want containing %q", err, tc.wantErr)
			}
			if leak := leakedSecret(err.Error(), tc.material); leak != "" {
				t.Errorf("error quotes key material %q:\n%v", leak, err)
			}
		})
	}
}

// malformedKey is a key value as operators get it wrong, with the key material it must never echo.
type malformedKey struct {
	name     string
	value    string
	material string // the secret part of value: the base64 body of the PEM, or the whole encoded value
	wantErr  string
}

func malformedKeys(t *testing.T) []malformedKey {
	t.Helper()
	pemText := testKeyPEM(t)
	lines := strings.Split(strings.TrimSpace(pemText), "\n")
	body := strings.Join(lines[1:len(lines)-1], "\n")
	b64 := base64.StdEncoding.EncodeToString([]byte(pemText))
	return []malformedKey{
		{name: "base64 of the PEM", value: b64, material: b64, wantErr: "looks base64-encoded"},
		{name: "base64 of the PEM, wrapped", value: wrap(b64, 76), material: b64, wantErr: "looks base64-encoded"},
		{name: "PEM without its BEGIN line", value: strings.Join(lines[1:], "\n"), material: body, wantErr: "without its -----BEGIN line"},
		{name: "PEM body only, one line", value: strings.Join(lines[1:len(lines)-1], ""), material: body, wantErr: "neither PEM text nor the path"},
		{name: "PEM without its END line", value: strings.Join(lines[:len(lines)-1], "\n"), material: body, wantErr: "no complete PEM block"},
		{name: "PEM with a damaged body", value: lines[0] + "\n" + strings.Join(lines[1:4], "\n") + "\n" + lines[len(lines)-1], material: body, wantErr: "does not parse as an RSA private key"},
		{name: "PEM with escaped newlines", value: strings.ReplaceAll(pemText, "\n", `\n`), material: body, wantErr: "no complete PEM block"},
	}
}

func wrap(s string, width int) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + "\n")
		s = s[width:]
	}
	b.WriteString(s)
	return b.String()
}

// leakedSecret returns a 12-character run of material found in text, or "".
func leakedSecret(text, material string) string {
	material = strings.Join(strings.Fields(material), "")
	text = strings.Join(strings.Fields(text), "")
	for i := 0; i+12 <= len(material); i += 4 {
		if strings.Contains(text, material[i:i+12]) {
			return material[i : i+12]
		}
	}
	return ""
}

// TestShippedConfigsLoad: the example and the Kubernetes configuration parse with every key known.
func TestShippedConfigsLoad(t *testing.T) {
	for _, path := range []string{"../../deploy/config.example.yml", "../../deploy/kubernetes/config.yml"} {
		c := Default()
		if err := LoadFile(path, &c); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}
