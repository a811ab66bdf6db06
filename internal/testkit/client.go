package testkit

import (
	"testing"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/storagebot/storagebot/internal/ghclient"
)

// FakeApp is what ServeClient needs of a fake GitHub: where it answers and the App it stands for.
// *githubfake.Server has it; the interface keeps this package free of the fake, whose own tests use it.
type FakeApp interface {
	URL() string
	AppID() int64
	PrivateKeyPEM() []byte
	InstallationID() int64
}

// ServeClient is an installation client on app built the way serve builds it: ghclient's creator, with its
// retries, per-installation rate-limit gate and ETag cache, configured by opts. An empty opts.UserAgent
// becomes "storagebot-test".
func ServeClient(tb testing.TB, app FakeApp, opts ghclient.Options) *github.Client {
	tb.Helper()
	var cfg githubapp.Config
	cfg.V3APIURL = app.URL()
	cfg.V4APIURL = app.URL() + "graphql"
	cfg.App.IntegrationID = app.AppID()
	if opts.UserAgent == "" {
		opts.UserAgent = "storagebot-test"
	}
	cc, err := ghclient.NewClientCreator(cfg, app.PrivateKeyPEM(), opts)
	if err != nil {
		tb.Fatalf("client creator: %v", err)
	}
	client, err := cc.NewInstallationClient(app.InstallationID())
	if err != nil {
		tb.Fatalf("installation client: %v", err)
	}
	return client
}
