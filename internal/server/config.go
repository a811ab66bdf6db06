// Package server is the wiring of `storagebot serve`: server configuration, the webhook intake (bounded in
// the bytes it holds, routing to go-githubapp event handlers through a bounded queue), health and metrics
// endpoints, and graceful shutdown.
package server

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"gopkg.in/yaml.v3"

	"github.com/storagebot/storagebot/internal/storage"
)

// Config is the server configuration: YAML file < environment < flags (see Load and the cmd flags).
type Config struct {
	// Addr is the listen address (--addr, STORAGEBOT_ADDR).
	Addr string `yaml:"addr"`
	// GitHub holds the App credentials and URLs, as go-githubapp reads them; its environment variables
	// (GITHUB_APP_INTEGRATION_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_WEBHOOK_SECRET, GITHUB_WEB_URL,
	// GITHUB_V3_API_URL) override the file.
	GitHub githubapp.Config `yaml:"github"`
	// Queue bounds the work waiting for a handler: a full queue answers 503 so GitHub shows the failure.
	Queue QueueConfig `yaml:"queue"`
	// ShutdownTimeout is how long SIGTERM waits for queued events to finish.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReconcileInterval is how often the reconciler looks for missed work (0 disables the periodic run).
	ReconcileInterval time.Duration `yaml:"reconcile_interval"`
	// ReconcileGrace leaves PRs updated less than this long ago to their webhook: the reconciler evaluates a
	// PR with no check only once its delivery had time to arrive, so the two never both evaluate it.
	ReconcileGrace time.Duration `yaml:"reconcile_grace"`
	// GitHubTimeout bounds each request to GitHub (token, connection, answer); a request that times out is
	// retried only when it changes nothing (a GET, PUT or DELETE), since a write may have been applied.
	GitHubTimeout time.Duration `yaml:"github_timeout"`
	// GitHubMaxWait is how long one request may wait for retries and rate limits; a limit lasting longer
	// fails the event at once, which is queued again for when the limit ends.
	GitHubMaxWait time.Duration `yaml:"github_max_wait"`
	// GitHubWriteSettle is how long after it was sent a write whose answer was lost may still land on GitHub
	// (which ends a request after 10 s): the bot watches for a comment that long before posting again, and
	// for the run of a build dispatch before failing the build.
	GitHubWriteSettle time.Duration `yaml:"github_write_settle"`
	// GitHubReadConcurrency bounds the GitHub reads in flight at once per account (installation): reads that
	// do not depend on each other overlap within it (--github-read-concurrency,
	// STORAGEBOT_GITHUB_READ_CONCURRENCY); 1 reads one after another. GitHub counts concurrent requests
	// toward its secondary rate limits, so it stays small.
	GitHubReadConcurrency int `yaml:"github_read_concurrency"`
	// MaxBodyBytes caps a webhook body; GitHub caps payloads at 25 MB. pull_request, issue_comment and
	// check_run bodies have a smaller cap of their own (2 MiB), since GitHub bounds what they hold.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxInflightBodyBytes bounds the webhook bodies held in memory at once, being read, queued or handled;
	// a delivery that does not fit is refused with 503. It bounds the intake's memory whatever clients send.
	MaxInflightBodyBytes int64 `yaml:"max_inflight_body_bytes"`
	// InsecureSkipSignature accepts unsigned webhooks; only for local experiments.
	InsecureSkipSignature bool `yaml:"insecure_skip_signature"`
	// LeaderElect makes replicas elect a leader through a Kubernetes Lease; only the leader runs the periodic
	// reconcile and rollout passes (--leader-elect).
	LeaderElect bool      `yaml:"leader_elect"`
	Log         LogConfig `yaml:"log"`
	// PublicURL is where GitHub and people reach this server (https://storagebot.example.com); the setup page
	// derives the App's webhook and redirect URLs from it (--public-url, STORAGEBOT_PUBLIC_URL).
	PublicURL string `yaml:"public_url"`
	// CredentialsFile is where setup mode writes the App's credentials (mode 0600) and where serve reads them
	// when no App credential is set otherwise (--credentials-file, STORAGEBOT_CREDENTIALS_FILE); "" is
	// storagebot/github-app.json in the user's configuration directory.
	CredentialsFile string `yaml:"credentials_file"`
	// SetupOrg registers the App under this organization in setup mode instead of the person's own account
	// (--setup-org, STORAGEBOT_SETUP_ORG).
	SetupOrg string `yaml:"setup_org"`
}

// QueueConfig sizes the asynchronous event queue.
type QueueConfig struct {
	Size    int `yaml:"size"`
	Workers int `yaml:"workers"`
}

// LogConfig selects the log level (debug, info, warn, error) and format (json, text).
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Default returns the configuration used where nothing else is set.
func Default() Config {
	c := Config{
		Addr:              ":8080",
		Queue:             QueueConfig{Size: 1000, Workers: 8},
		ShutdownTimeout:   30 * time.Second,
		ReconcileInterval: 10 * time.Minute,
		ReconcileGrace:    5 * time.Minute,
		GitHubTimeout:     30 * time.Second,
		GitHubMaxWait:     time.Minute,
		GitHubWriteSettle: 12 * time.Second,
		// The object cache's own default: the figure the latency benchmarks were measured at.
		GitHubReadConcurrency: storage.DefaultReadConcurrency,
		MaxBodyBytes:          25 << 20,
		// Room for two deliveries at GitHub's 25 MB cap, or thousands of ordinary ones (tens of KB).
		MaxInflightBodyBytes: 64 << 20,
		Log:                  LogConfig{Level: "info", Format: "json"},
	}
	c.GitHub.WebURL = "https://github.com"
	c.GitHub.V3APIURL = "https://api.github.com/"
	return c
}

// ConfigError is an invalid configuration file, with the position of the problem.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadFile reads a YAML configuration file over the defaults. Unknown keys are errors naming the key by its
// YAML path (queue.sise), so a typo never silently falls back to a default.
func LoadFile(path string, into *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &ConfigError{File: path, Line: yamlErrorLine(err), Msg: yamlErrorMessage(err)}
	}
	if len(doc.Content) == 0 { // an empty file keeps the defaults
		return nil
	}
	if err := unknownKeys(path, doc.Content[0], reflect.TypeOf(*into), ""); err != nil {
		return err
	}
	if err := doc.Content[0].Decode(into); err != nil {
		return &ConfigError{File: path, Line: yamlErrorLine(err), Msg: yamlErrorMessage(err)}
	}
	return nil
}

// unknownKeys walks a YAML mapping against the struct type it decodes into and reports the first key the
// type does not have, by its dotted path and with the keys that would be valid there. yaml.v3's own
// KnownFields error names the Go type instead ("field sise not found in type server.QueueConfig"), which
// tells an operator nothing.
func unknownKeys(file string, n *yaml.Node, t reflect.Type, prefix string) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	keyed, isMapping := fileFields(t)
	if n.Kind != yaml.MappingNode || !isMapping {
		return nil // a type mismatch is reported by Decode, with its line
	}
	fields := map[string]reflect.Type{}
	var names []string
	for _, f := range keyed {
		fields[f.key] = f.typ
		names = append(names, f.key)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		ft, ok := fields[key.Value]
		if !ok {
			where := "at the top level"
			if prefix != "" {
				where = "under " + prefix
			}
			return &ConfigError{File: file, Line: key.Line, Msg: fmt.Sprintf("unknown key %s%s (valid %s: %s)", prefix+dot(prefix), key.Value, where, strings.Join(names, ", "))}
		}
		if err := unknownKeys(file, value, ft, prefix+dot(prefix)+key.Value); err != nil {
			return err
		}
	}
	return nil
}

// fileField is a field of a configuration struct, by the key it has in the configuration file.
type fileField struct {
	key string
	typ reflect.Type
}

// fileFields lists the keys type t accepts in the configuration file, in field order, named as yaml.v3 names
// them (the yaml tag, else the lowercased field name); isMapping is false when t (through pointers) is read
// from a scalar or a list instead: a leaf.
func fileFields(t reflect.Type) (fields []fileField, isMapping bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Duration(0)) {
		return nil, false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields = append(fields, fileField{key: name, typ: f.Type})
	}
	return fields, true
}

// FileKeys lists every key path the configuration file accepts, leaves only ("queue.size",
// "github.app.private_key"): what the README's Server configuration section must document.
func FileKeys() []string { return leafKeys(reflect.TypeOf(Config{}), "") }

func leafKeys(t reflect.Type, prefix string) []string {
	fields, isMapping := fileFields(t)
	if !isMapping {
		return []string{prefix}
	}
	var out []string
	for _, f := range fields {
		out = append(out, leafKeys(f.typ, prefix+dot(prefix)+f.key)...)
	}
	return out
}

func dot(prefix string) string {
	if prefix == "" {
		return ""
	}
	return "."
}

// yamlErrorLine extracts the line number yaml.v3 puts in its messages ("yaml: line 3: ...").
func yamlErrorLine(err error) int {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	rest := msg[i+len("line "):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(rest[:j])
	return n
}

// yamlErrorMessage drops yaml.v3's "yaml: line N:" prefix, since ConfigError prints the position itself.
func yamlErrorMessage(err error) string {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for i, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if strings.HasPrefix(m, "line ") {
			if j := strings.Index(m, ": "); j > 0 {
				m = m[j+2:]
			}
		}
		msgs[i] = m
	}
	return strings.Join(msgs, "; ")
}

// ApplyEnv overrides c with the environment: go-githubapp's variables, then STORAGEBOT_* ones.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	c.GitHub.SetValuesFromEnv("")
	if v, ok := lookup("STORAGEBOT_ADDR"); ok {
		c.Addr = v
	}
	if v, ok := lookup("STORAGEBOT_LOG_LEVEL"); ok {
		c.Log.Level = v
	}
	if v, ok := lookup("STORAGEBOT_LOG_FORMAT"); ok {
		c.Log.Format = v
	}
	if v, ok := lookup("STORAGEBOT_PUBLIC_URL"); ok {
		c.PublicURL = v
	}
	if v, ok := lookup("STORAGEBOT_CREDENTIALS_FILE"); ok {
		c.CredentialsFile = v
	}
	if v, ok := lookup("STORAGEBOT_SETUP_ORG"); ok {
		c.SetupOrg = v
	}
	if v, ok := lookup("STORAGEBOT_GITHUB_READ_CONCURRENCY"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("STORAGEBOT_GITHUB_READ_CONCURRENCY=%q is not a number: set it to how many GitHub reads may be in flight at once per account (default %d, 1 reads one after another)", v, storage.DefaultReadConcurrency)
		}
		c.GitHubReadConcurrency = n
	}
	if v, ok := lookup("GITHUB_APP_INTEGRATION_ID"); ok && v != "" {
		// SetValuesFromEnv ignores an unparsable number silently; say so instead.
		if id, err := strconv.ParseInt(v, 10, 64); err != nil || id <= 0 {
			return fmt.Errorf("GITHUB_APP_INTEGRATION_ID=%q is not a valid App ID: set it to the positive number shown on the App's settings page", v)
		}
	}
	return nil
}

// HasAppCredentials reports whether any App credential (ID, private key, webhook secret) is set. With none,
// serve reads the credentials file, and without one starts in setup mode.
func (c *Config) HasAppCredentials() bool {
	a := c.GitHub.App
	return a.IntegrationID != 0 || strings.TrimSpace(a.PrivateKey) != "" || a.WebhookSecret != ""
}

// Validate checks everything `serve` needs before it starts, naming the setting to fix.
func (c *Config) Validate() error {
	var errs []error
	switch id := c.GitHub.App.IntegrationID; {
	case id == 0:
		errs = append(errs, errors.New("GitHub App ID missing: set GITHUB_APP_INTEGRATION_ID or github.app.integration_id"))
	case id < 0:
		errs = append(errs, fmt.Errorf("GitHub App ID %d is not valid: set GITHUB_APP_INTEGRATION_ID or github.app.integration_id to the positive number shown on the App's settings page", id))
	}
	if _, err := c.PrivateKey(); err != nil {
		errs = append(errs, err)
	}
	if c.GitHub.App.WebhookSecret == "" && !c.InsecureSkipSignature {
		errs = append(errs, errors.New("webhook secret missing: set GITHUB_APP_WEBHOOK_SECRET or github.app.webhook_secret (or pass --insecure-skip-signature for local experiments only)"))
	}
	if err := c.ValidateServer(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateServer checks every setting but the App credentials: what setup mode, which has none yet, needs.
func (c *Config) ValidateServer() error {
	var errs []error
	if err := validateAddr(c.Addr); err != nil {
		errs = append(errs, err)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("public URL %q is not an http(s) URL without query (e.g. https://storagebot.example.com): set --public-url, STORAGEBOT_PUBLIC_URL or public_url", c.PublicURL))
		}
	}
	if c.GitHub.WebURL == "" {
		errs = append(errs, errors.New("GitHub web URL missing: set GITHUB_WEB_URL or github.web_url"))
	}
	if c.GitHub.V3APIURL == "" {
		errs = append(errs, errors.New("GitHub API URL missing: set GITHUB_V3_API_URL or github.v3_api_url"))
	}
	if c.Queue.Size < 1 || c.Queue.Workers < 1 {
		errs = append(errs, fmt.Errorf("queue.size (%d) and queue.workers (%d) must be at least 1", c.Queue.Size, c.Queue.Workers))
	}
	if c.ReconcileGrace < 0 {
		errs = append(errs, fmt.Errorf("reconcile_grace (%s) must not be negative", c.ReconcileGrace))
	}
	if c.GitHubTimeout <= 0 || c.GitHubMaxWait <= 0 {
		errs = append(errs, fmt.Errorf("github_timeout (%s) and github_max_wait (%s) must be positive", c.GitHubTimeout, c.GitHubMaxWait))
	}
	if c.GitHubWriteSettle <= 0 {
		errs = append(errs, fmt.Errorf("github_write_settle (%s) must be positive", c.GitHubWriteSettle))
	}
	if c.GitHubReadConcurrency < 1 {
		errs = append(errs, fmt.Errorf("GitHub read concurrency %d must be at least 1 (1 reads one after another; default %d): set --github-read-concurrency, "+
			"STORAGEBOT_GITHUB_READ_CONCURRENCY or github_read_concurrency", c.GitHubReadConcurrency, storage.DefaultReadConcurrency))
	}
	if c.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("max_body_bytes (%d) must be positive", c.MaxBodyBytes))
	}
	if c.MaxInflightBodyBytes < c.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("max_inflight_body_bytes (%d) must be at least max_body_bytes (%d), or a delivery at the cap could never be accepted", c.MaxInflightBodyBytes, c.MaxBodyBytes))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout %s must be positive: it is how long SIGTERM waits for queued events (--shutdown-timeout, shutdown_timeout)", c.ShutdownTimeout))
	}
	if c.ReconcileInterval < 0 {
		errs = append(errs, fmt.Errorf("reconcile interval %s must not be negative: use 0 to reconcile only at start (--reconcile-interval, reconcile_interval)", c.ReconcileInterval))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log format %q unknown: use json or text", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q unknown: use debug, info, warn or error", c.Log.Level))
	}
	return errors.Join(errs...)
}

// validateAddr checks a listen address the way net.Listen will read it, so a typo is a configuration error
// (exit 2) and not a failure to listen.
func validateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return fmt.Errorf("listen address %q is not host:port (e.g. :8080 or 127.0.0.1:8080): set --addr, STORAGEBOT_ADDR or addr: %w", addr, err)
	}
	return nil
}

// PrivateKey returns the App's private key PEM. GITHUB_APP_PRIVATE_KEY (or github.app.private_key) holds either
// the PEM text or the path of a PEM file; either way the key must parse as RSA. No error ever quotes the
// value: what looks like a path may be a mangled key.
func (c *Config) PrivateKey() ([]byte, error) {
	const fix = "set GITHUB_APP_PRIVATE_KEY (or github.app.private_key) to the .pem file GitHub generated for the App, or to its path (the value is not shown: it may be key material)"
	v := strings.TrimSpace(c.GitHub.App.PrivateKey)
	if v == "" {
		return nil, errors.New("GitHub App private key missing: set GITHUB_APP_PRIVATE_KEY (PEM text or the path of a PEM file) or github.app.private_key")
	}
	data := []byte(v)
	if !strings.HasPrefix(v, "-----BEGIN") {
		switch {
		case looksBase64PEM(v):
			return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY looks base64-encoded: decode it (base64 -d) first; %s", fix)
		case strings.Contains(v, "-----END"), strings.ContainsAny(v, "\n\r"):
			// A path holds no line break; text that does is a PEM missing its first line.
			return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY looks like PEM text without its -----BEGIN line: %s", fix)
		}
		b, err := os.ReadFile(v)
		if err != nil {
			// The *PathError would quote the value; keep only its cause (no such file, permission denied).
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY is neither PEM text nor the path of a readable file (%w): %s", err, fix)
		}
		data = b
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY holds no complete PEM block (-----BEGIN … -----END lines): %s", fix)
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		k, err8 := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err8 != nil {
			return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY does not parse as an RSA private key (%w): %s", err, fix)
		}
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return nil, errors.New("GITHUB_APP_PRIVATE_KEY is not an RSA key: GitHub Apps sign with RSA; " + fix)
		}
	}
	return data, nil
}

// looksBase64PEM reports whether v is base64 of PEM text ("-----BEGIN" encodes to "LS0tLS1CRUdJTi").
func looksBase64PEM(v string) bool {
	if strings.HasPrefix(v, "LS0tLS1CRUdJTi") {
		return true
	}
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
	return err == nil && bytes.Contains(b, []byte("-----BEGIN"))
}
