package githubfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v50/github"
)

// newFake starts a fake with a signature-checking webhook receiver and one repository.
func newFake(t *testing.T) (*Server, *Repo) {
	t.Helper()
	s := New(Options{WebhookSecret: "s3cret", Logf: t.Logf})
	t.Cleanup(s.Close)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		m := hmac.New(sha256.New, []byte(s.WebhookSecret()))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Hub-Signature-256"))) ||
			r.Header.Get("X-GitHub-Event") == "" || r.Header.Get("X-GitHub-Delivery") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hook.Close)
	s.SetWebhookURL(hook.URL)
	r := s.CreateRepo("storage-org", "package-storage", "snapshot")
	return s, r
}

// newClient is a go-github client authenticated as the installation through ghinstallation.
func newClient(t *testing.T, s *Server, key []byte) *github.Client {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), key)
	if err != nil {
		t.Fatalf("apps transport: %v", err)
	}
	atr.BaseURL = strings.TrimSuffix(s.URL(), "/")
	itr := ghinstallation.NewFromAppsTransport(atr, s.InstallationID())
	itr.BaseURL = atr.BaseURL
	c := github.NewClient(&http.Client{Transport: itr})
	base, err := url.Parse(s.URL())
	if err != nil {
		t.Fatalf("parse base URL: %v", err)
	}
	c.BaseURL = base
	return c
}

// deliveryKinds lists "event.action" of every delivery.
func deliveryKinds(ds []Delivery) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		k := d.Event
		if d.Action != "" {
			k += "." + d.Action
		}
		out = append(out, k)
	}
	return out
}
