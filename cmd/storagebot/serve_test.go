package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
		{name: "unknown key names it", args: []string{"--config", unknownKey}, want: "unknown.yml:1: field adr not found"},
		{name: "bad flag", args: []string{"--log-format", "xml"}, want: `log format "xml" unknown`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"GITHUB_APP_INTEGRATION_ID", "GITHUB_APP_WEBHOOK_SECRET", "GITHUB_APP_PRIVATE_KEY", "STORAGEBOT_ADDR"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			code := run(context.Background(), append([]string{"serve"}, tc.args...), &bytes.Buffer{}, &stderr)
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
