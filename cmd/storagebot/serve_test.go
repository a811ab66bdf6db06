package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/storagebot/storagebot/internal/storage"
)

// testKey returns a fresh RSA key as PEM text.
func testKey(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func withEnv(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range env {
		if key != k {
			out[key] = val
		}
	}
	return out
}

// leaked returns a 12-character run of secret found in text, or "".
func leaked(text, secret string) string {
	secret = strings.Join(strings.Fields(secret), "")
	text = strings.Join(strings.Fields(text), "")
	for i := 0; i+12 <= len(secret); i += 4 {
		if strings.Contains(text, secret[i:i+12]) {
			return secret[i : i+12]
		}
	}
	return ""
}

// TestServeNeverPrintsTheKeyOrSecret feeds serve each malformed form a private key takes in practice and
// scans everything it prints: the error says what is wrong, and no run of the key material or of the
// webhook secret appears.
func TestServeNeverPrintsTheKeyOrSecret(t *testing.T) {
	pemText := testKey(t)
	lines := strings.Split(strings.TrimSpace(pemText), "\n")
	body := strings.Join(lines[1:len(lines)-1], "\n") // the key material; the BEGIN/END lines are not secret
	b64 := base64.StdEncoding.EncodeToString([]byte(pemText))
	const secret = "webhook-secret-9f8e7d6c5b4a"
	tests := []struct {
		name, key, material, want string
	}{
		{name: "base64 of the PEM", key: b64, material: b64, want: "looks base64-encoded"},
		{name: "base64 of the PEM, wrapped", key: b64[:76] + "\n" + b64[76:], material: b64, want: "looks base64-encoded"},
		{name: "PEM without its BEGIN line", key: strings.Join(lines[1:], "\n"), material: body, want: "without its -----BEGIN line"},
		{name: "PEM body on one line", key: strings.Join(lines[1:len(lines)-1], ""), material: body, want: "neither PEM text nor the path of a readable file"},
		{name: "PEM without its END line", key: strings.Join(lines[:len(lines)-1], "\n"), material: body, want: "no complete PEM block"},
		{name: "PEM with escaped newlines", key: strings.ReplaceAll(pemText, "\n", `\n`), material: body, want: "no complete PEM block"},
		{name: "PEM with a damaged body", key: lines[0] + "\n" + strings.Join(lines[1:4], "\n") + "\n" + lines[len(lines)-1], material: body, want: "does not parse as an RSA private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GITHUB_APP_INTEGRATION_ID", "1")
			t.Setenv("GITHUB_APP_WEBHOOK_SECRET", secret)
			t.Setenv("GITHUB_APP_PRIVATE_KEY", tc.key)
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			code := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "debug"}, &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit = %d, want 2", code)
			}
			out := stdout.String() + stderr.String()
			if !strings.Contains(out, tc.want) {
				t.Errorf("output %q does not say %q", out, tc.want)
			}
			if l := leaked(out, tc.material); l != "" {
				t.Errorf("output quotes key material %q:\n%s", l, out)
			}
			if strings.Contains(out, secret) {
				t.Errorf("output quotes the webhook secret:\n%s", out)
			}
		})
	}
}

// TestRepositoryIsSelfContained: no file of the repository points at a file outside it (a design document
// of the workspace the project was written in, a sibling folder); a clone has only what is in it.
func TestRepositoryIsSelfContained(t *testing.T) {
	root := filepath.Join("..", "..")
	outside := regexp.MustCompile(`\.\./shared|DESIGN(\.md| §)`)
	// Citations of the architecture page name a section that must exist.
	arch, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatalf("the design belongs in the repository: %v", err)
	}
	cite := regexp.MustCompile(`architecture\.md\)? §(\d+)`)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".yml", ".yaml", ".sh", "":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			if loc := outside.FindStringIndex(line); loc != nil && !strings.Contains(line, "outside := regexp") {
				t.Errorf("%s:%d points outside the repository: %s", path, i+1, strings.TrimSpace(line))
			}
			for _, m := range cite.FindAllStringSubmatch(line, -1) {
				if !strings.Contains(string(arch), "\n## "+m[1]+". ") {
					t.Errorf("%s:%d cites docs/architecture.md §%s, which has no such section", path, i+1, m[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestServeRefusesToStart covers the settings serve checks before listening: each failure exits 2 with a
// message naming what to fix.
func TestServeRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(badYAML, []byte("addr: \":1\"\nqueue:\n  size: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknownKey := filepath.Join(dir, "unknown.yml")
	if err := os.WriteFile(unknownKey, []byte("adr: \":1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknownNested := filepath.Join(dir, "nested.yml")
	if err := os.WriteFile(unknownNested, []byte("queue:\n  size: 3\n  sise: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// ok is an environment serve would start with; each case breaks one thing.
	ok := map[string]string{"GITHUB_APP_INTEGRATION_ID": "1", "GITHUB_APP_WEBHOOK_SECRET": "s", "GITHUB_APP_PRIVATE_KEY": testKey(t)}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "no private key", env: map[string]string{"GITHUB_APP_INTEGRATION_ID": "1", "GITHUB_APP_WEBHOOK_SECRET": "s"}, want: "GITHUB_APP_PRIVATE_KEY"},
		{name: "invalid private key", env: map[string]string{"GITHUB_APP_INTEGRATION_ID": "1", "GITHUB_APP_WEBHOOK_SECRET": "s", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"}, want: "GITHUB_APP_PRIVATE_KEY does not parse"},
		{name: "no webhook secret", env: map[string]string{"GITHUB_APP_INTEGRATION_ID": "1"}, want: "--insecure-skip-signature"},
		{name: "invalid YAML names file and line", args: []string{"--config", badYAML}, want: "bad.yml:3: did not find expected node content"},
		{name: "unknown key names its YAML path", args: []string{"--config", unknownKey}, want: "unknown.yml:1: unknown key adr (valid at the top level: addr,"},
		{name: "unknown nested key names its YAML path", args: []string{"--config", unknownNested}, want: "nested.yml:3: unknown key queue.sise (valid under queue: size, workers)"},
		{name: "bad flag", args: []string{"--log-format", "xml"}, want: `log format "xml" unknown`},
		{name: "listen address without a port", env: ok, args: []string{"--addr", "bogus"}, want: `listen address "bogus" is not host:port`},
		{name: "negative shutdown timeout", env: ok, args: []string{"--shutdown-timeout", "-5s"}, want: "shutdown timeout -5s must be positive"},
		{name: "negative reconcile interval", env: ok, args: []string{"--reconcile-interval", "-1m"}, want: "reconcile interval -1m0s must not be negative"},
		{name: "read concurrency below one", env: ok, args: []string{"--github-read-concurrency", "0"}, want: "GitHub read concurrency 0 must be at least 1"},
		{name: "read concurrency from the environment not a number", env: withEnv(ok, "STORAGEBOT_GITHUB_READ_CONCURRENCY", "eight"), want: `STORAGEBOT_GITHUB_READ_CONCURRENCY="eight" is not a number`},
		{name: "negative App ID is not missing", env: withEnv(ok, "GITHUB_APP_INTEGRATION_ID", "-5"), want: `GITHUB_APP_INTEGRATION_ID="-5" is not a valid App ID`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"GITHUB_APP_INTEGRATION_ID", "GITHUB_APP_WEBHOOK_SECRET", "GITHUB_APP_PRIVATE_KEY", "STORAGEBOT_ADDR", "STORAGEBOT_GITHUB_READ_CONCURRENCY"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			// A configuration that wrongly passes would start serving: the deadline makes that a failure
			// (exit 0) instead of a hang.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			code := run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...), &bytes.Buffer{}, &stderr)
			if code != 2 {
				t.Errorf("exit = %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "storagebot dev (commit ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("version = %d %q", code, out.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command = %d %q", code, errb.String())
	}
}

// TestServeReadConcurrency: --github-read-concurrency, STORAGEBOT_GITHUB_READ_CONCURRENCY and
// github_read_concurrency set the read bound, a flag over the environment over the file, default
// storage.DefaultReadConcurrency; below 1 is refused.
func TestServeReadConcurrency(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yml")
	if err := os.WriteFile(file, []byte("github_read_concurrency: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(t.TempDir(), "zero.yml")
	if err := os.WriteFile(zero, []byte("github_read_concurrency: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{"GITHUB_APP_INTEGRATION_ID": "1", "GITHUB_APP_WEBHOOK_SECRET": "s", "GITHUB_APP_PRIVATE_KEY": testKey(t)}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    int
		wantErr string
	}{
		{name: "default", env: creds, want: storage.DefaultReadConcurrency},
		{name: "file", env: creds, args: []string{"--config", file}, want: 3},
		{name: "environment over file", env: withEnv(creds, "STORAGEBOT_GITHUB_READ_CONCURRENCY", "5"), args: []string{"--config", file}, want: 5},
		{name: "flag over environment", env: withEnv(creds, "STORAGEBOT_GITHUB_READ_CONCURRENCY", "5"), args: []string{"--config", file, "--github-read-concurrency", "1"}, want: 1},
		{name: "zero in the file", env: creds, args: []string{"--config", zero}, wantErr: "github_read_concurrency"},
		{name: "negative flag", env: creds, args: []string{"--github-read-concurrency", "-2"}, wantErr: "must be at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STORAGEBOT_GITHUB_READ_CONCURRENCY", "")
			os.Unsetenv("STORAGEBOT_GITHUB_READ_CONCURRENCY")
			for k, v := range tc.env {
				t.Setenv(k, v) // the App's credentials are read from the process environment
			}
			cfg, err := loadServeConfig(tc.args, io.Discard, os.LookupEnv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.GitHubReadConcurrency != tc.want {
				t.Errorf("read concurrency = %d, want %d", cfg.GitHubReadConcurrency, tc.want)
			}
		})
	}
}
