package statustest

import (
	"context"
	"testing"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/seal"
)

// Started is a fake GitHub holding the fixture's repository, and an installation client of it.
type Started struct {
	Fake   *githubfake.Server
	Client *github.Client
	*Fixture
}

// MarkerKey gives the key the fixture seals its PR markers with, for the fake it is built in.
type MarkerKey func(*githubfake.Server) (seal.Key, error)

// FixedKey is a test's own marker key.
func FixedKey(key seal.Key) MarkerKey {
	return func(*githubfake.Server) (seal.Key, error) { return key, nil }
}

// AppKey is the marker key serve derives from the fake App's private key.
func AppKey(s *githubfake.Server) (seal.Key, error) { return seal.FromPrivateKeyPEM(s.PrivateKeyPEM()) }

// Start starts a fake GitHub, closed when tb ends, and builds the fixture in it with the marker key key
// gives for that fake.
func Start(tb testing.TB, key MarkerKey) *Started {
	tb.Helper()
	fake := githubfake.New(githubfake.Options{})
	tb.Cleanup(fake.Close)
	client, err := fake.InstallationClient()
	if err != nil {
		tb.Fatal(err)
	}
	k, err := key(fake)
	if err != nil {
		tb.Fatal(err)
	}
	fix, err := Build(context.Background(), fake, client, k)
	if err != nil {
		tb.Fatal(err)
	}
	return &Started{Fake: fake, Client: client, Fixture: fix}
}
