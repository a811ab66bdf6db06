// Package setup is storagebot's setup mode: with no GitHub App configured, `serve` shows a page whose button
// registers the App on GitHub from its manifest (GitHub's App manifest flow), exchanges the code GitHub
// returns for the App's credentials, writes them to a file only the owner can read, and hands them to the
// server, which starts serving webhooks without a restart. Later starts read the same file.
package setup

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Credentials are what GitHub returns for an App registered from a manifest, as the credentials file holds
// them. PEM and the secrets are key material: never logged, never shown.
type Credentials struct {
	AppID         int64     `json:"app_id"`
	Slug          string    `json:"slug"`
	Name          string    `json:"name"`
	Owner         string    `json:"owner"`
	HTMLURL       string    `json:"html_url"`
	ClientID      string    `json:"client_id"`
	ClientSecret  string    `json:"client_secret"`
	WebhookSecret string    `json:"webhook_secret"`
	PEM           string    `json:"pem"`
	CreatedAt     time.Time `json:"created_at"`
}

// InstallURL is the App's installation page, where its owner picks the repositories it may see.
func (c *Credentials) InstallURL() string { return c.HTMLURL + "/installations/new" }

// Validate checks that the credentials can run the App, naming the field at fault and never its value.
func (c *Credentials) Validate() error {
	var errs []error
	if c.AppID <= 0 {
		errs = append(errs, errors.New("app_id is missing or not positive"))
	}
	if c.WebhookSecret == "" {
		errs = append(errs, errors.New("webhook_secret is missing"))
	}
	if err := checkRSAKey(c.PEM); err != nil {
		errs = append(errs, fmt.Errorf("pem: %w", err))
	}
	return errors.Join(errs...)
}

// checkRSAKey reports whether pemText holds an RSA private key, without quoting it.
func checkRSAKey(pemText string) error {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return errors.New("no PEM block")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return errors.New("not an RSA private key")
	}
	if _, ok := k.(*rsa.PrivateKey); !ok {
		return errors.New("not an RSA private key")
	}
	return nil
}

// DefaultPath is where the credentials file lives when no path is configured: storagebot/github-app.json
// in the user's configuration directory ($XDG_CONFIG_HOME, else ~/.config on Linux).
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no default place for the credentials file (%w): set --credentials-file, STORAGEBOT_CREDENTIALS_FILE or credentials_file", err)
	}
	return filepath.Join(dir, "storagebot", "github-app.json"), nil
}

// Load reads the credentials file at path. A file that does not exist is (nil, nil): no App yet. A file that
// exists but cannot be read or holds unusable credentials is an error naming the file and the field.
func Load(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the credentials file: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("credentials file %s is not valid JSON: fix it or delete it to register the App again", path)
	}
	var c Credentials
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		// The decoder's message may quote a piece of the file: not shown.
		return nil, fmt.Errorf("credentials file %s does not hold storagebot credentials: fix it or delete it to register the App again", path)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("credentials file %s: %w; fix it or delete it to register the App again", path, err)
	}
	return &c, nil
}

// CheckWritable makes sure the credentials file can be written at path before a code is exchanged: GitHub
// gives the App's private key once, so it must have somewhere to go. It creates the directory (0700) and a
// probe file beside the target, and removes the probe.
func CheckWritable(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the directory of the credentials file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".github-app-*.probe")
	if err != nil {
		return fmt.Errorf("write in the directory of the credentials file: %w", err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("remove the probe file %s: %w", name, err)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("credentials file %s is a directory", path)
	}
	return nil
}

// Save writes the credentials to path with mode 0600, atomically: a temporary file in the same directory,
// synced, then renamed over path, so a crash never leaves half a key behind.
func Save(path string, c *Credentials) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the credentials: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the directory of the credentials file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".github-app-*.tmp") // created 0600
	if err != nil {
		return fmt.Errorf("create the credentials file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("restrict the credentials file to its owner: %w", err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write the credentials file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync the credentials file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close the credentials file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("put the credentials file in place: %w", err)
	}
	return nil
}
