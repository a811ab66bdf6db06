// Package server is the wiring of `storagebot serve`: server configuration, the webhook endpoint (go-githubapp's
// EventDispatcher behind a bounded queue), health and metrics endpoints, and graceful shutdown.
package server

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"gopkg.in/yaml.v3"
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
	// MaxBodyBytes caps a webhook body; GitHub caps payloads at 25 MB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// InsecureSkipSignature accepts unsigned webhooks; only for local experiments.
	InsecureSkipSignature bool      `yaml:"insecure_skip_signature"`
	Log                   LogConfig `yaml:"log"`
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
		MaxBodyBytes:      25 << 20,
		Log:               LogConfig{Level: "info", Format: "json"},
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

// LoadFile reads a YAML configuration file over the defaults. Unknown keys are errors, so a typo never
// silently falls back to a default.
func LoadFile(path string, into *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		if errors.Is(err, io.EOF) { // an empty file keeps the defaults
			return nil
		}
		return &ConfigError{File: path, Line: yamlErrorLine(err), Msg: yamlErrorMessage(err)}
	}
	return nil
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
	if v, ok := lookup("GITHUB_APP_INTEGRATION_ID"); ok {
		// SetValuesFromEnv ignores an unparsable number silently; say so instead.
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("GITHUB_APP_INTEGRATION_ID=%q is not a number: set it to the App ID shown on the App's settings page", v)
		}
	}
	return nil
}

// Validate checks everything `serve` needs before it starts, naming the setting to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.GitHub.App.IntegrationID <= 0 {
		errs = append(errs, errors.New("GitHub App ID missing: set GITHUB_APP_INTEGRATION_ID or github.app.integration_id"))
	}
	if _, err := c.PrivateKey(); err != nil {
		errs = append(errs, err)
	}
	if c.GitHub.App.WebhookSecret == "" && !c.InsecureSkipSignature {
		errs = append(errs, errors.New("webhook secret missing: set GITHUB_APP_WEBHOOK_SECRET or github.app.webhook_secret (or pass --insecure-skip-signature for local experiments only)"))
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
	if c.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("max_body_bytes (%d) must be positive", c.MaxBodyBytes))
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

// PrivateKey returns the App's private key PEM. GITHUB_APP_PRIVATE_KEY (or github.app.private_key) holds either
// the PEM text or the path of a PEM file; either way the key must parse as RSA.
func (c *Config) PrivateKey() ([]byte, error) {
	v := strings.TrimSpace(c.GitHub.App.PrivateKey)
	if v == "" {
		return nil, errors.New("GitHub App private key missing: set GITHUB_APP_PRIVATE_KEY (PEM text or the path of a PEM file) or github.app.private_key")
	}
	data := []byte(v)
	if !strings.HasPrefix(v, "-----BEGIN") {
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY is neither PEM text nor a readable file: %w", err)
		}
		data = b
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("GITHUB_APP_PRIVATE_KEY holds no PEM block: paste the .pem file GitHub generated for the App")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		k, err8 := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err8 != nil {
			return nil, fmt.Errorf("GITHUB_APP_PRIVATE_KEY does not parse as an RSA private key: %w", err)
		}
		if _, ok := k.(*rsa.PrivateKey); !ok {
			return nil, errors.New("GITHUB_APP_PRIVATE_KEY is not an RSA key: GitHub Apps sign with RSA")
		}
	}
	return data, nil
}
