package githubfake

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v50/github"
)

// InstallationClient returns a go-github client authenticated as the fake's installation through
// ghinstallation, the way the bot's own clients authenticate, for tests that drive the fake directly.
func (s *Server) InstallationClient() (*github.Client, error) {
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID(), s.PrivateKeyPEM())
	if err != nil {
		return nil, fmt.Errorf("apps transport: %w", err)
	}
	atr.BaseURL = strings.TrimSuffix(s.URL(), "/")
	itr := ghinstallation.NewFromAppsTransport(atr, s.InstallationID())
	itr.BaseURL = atr.BaseURL
	c := github.NewClient(&http.Client{Transport: itr})
	base, err := url.Parse(s.URL())
	if err != nil {
		return nil, fmt.Errorf("parse base URL: %w", err)
	}
	c.BaseURL = base
	return c, nil
}
