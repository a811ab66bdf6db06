package server

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
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
		{name: "values override defaults", yaml: "addr: \":9000\"\nqueue:\n  size: 5\n  workers: 2\nshutdown_timeout: 3s\ngithub_timeout: 5s\ngithub_max_wait: 20s\ngithub:\n  app:\n    integration_id: 42\n", check: func(t *testing.T, c Config) {
			if c.GitHubTimeout != 5*time.Second || c.GitHubMaxWait != 20*time.Second {
				t.Errorf("github_timeout, github_max_wait = %s, %s, want 5s, 20s", c.GitHubTimeout, c.GitHubMaxWait)
			}
			if c.Addr != ":9000" || c.Queue.Size != 5 || c.Queue.Workers != 2 || c.ShutdownTimeout != 3*time.Second || c.GitHub.App.IntegrationID != 42 {
				t.Errorf("got %+v", c)
			}
			if c.Log.Format != "json" {
				t.Errorf("unset log format = %q, want default json", c.Log.Format)
			}
		}},
		{name: "unknown key names key and line", yaml: "addr: x\nqueue:\n  sise: 3\n", wantErr: "config.yml:3: field sise not found"},
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
		{name: "key file missing", mutate: func(c *Config) { c.GitHub.App.PrivateKey = "/nonexistent/app.pem" }, wantErr: "neither PEM text nor a readable file"},
		{name: "garbage PEM", mutate: func(c *Config) {
			c.GitHub.App.PrivateKey = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
		}, wantErr: "does not parse as an RSA private key"},
		{name: "no app id", mutate: func(c *Config) { c.GitHub.App.IntegrationID = 0 }, wantErr: "GITHUB_APP_INTEGRATION_ID"},
		{name: "bad log format", mutate: func(c *Config) { c.Log.Format = "xml" }, wantErr: `log format "xml"`},
		{name: "zero workers", mutate: func(c *Config) { c.Queue.Workers = 0 }, wantErr: "queue.workers"},
		{name: "no GitHub request deadline", mutate: func(c *Config) { c.GitHubTimeout = 0 }, wantErr: "github_timeout"},
		{name: "negative wait budget", mutate: func(c *Config) { c.GitHubMaxWait = -time.Second }, wantErr: "github_max_wait"},
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
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("err = %v, want a non-number complaint", err)
	}
}
