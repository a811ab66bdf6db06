// Package rollouttest builds, in the fake GitHub, the storage repository the rollout tests drive: channel
// branches holding the build and deploy workflows a storage repository calls, and its configuration. Only
// tests import it.
package rollouttest

import (
	"strings"
	"testing"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
)

// The storage repository's coordinates on the fake.
const (
	Owner = "storage-org"
	Name  = "package-storage"
)

// BuildWorkflow is a storage repository's distribution build workflow: a workflow_dispatch trigger declaring
// the inputs rollout dispatches it with (distribution, ref, base_image, build_key) and, optional, each of
// extraInputs, calling the reusable build workflow.
func BuildWorkflow(extraInputs ...string) string {
	var extra strings.Builder
	for _, in := range extraInputs {
		extra.WriteString("      " + in + ": {required: false}\n")
	}
	return `name: distribution
run-name: storagebot build ${{ inputs.build_key }}
on:
  workflow_dispatch:
    inputs:
      distribution: {required: true}
      ref: {required: true}
      base_image: {required: false}
      build_key: {required: true}
` + extra.String() + `jobs:
  build:
    uses: storagebot/storagebot/.github/workflows/distribution-build.yml@main
    with: {ref: "${{ inputs.ref }}", base_image: "${{ inputs.base_image }}"}
`
}

// DeployWorkflow is a storage repository's deploy workflow, with the inputs rollout dispatches it with.
const DeployWorkflow = `name: deploy
run-name: storagebot deploy ${{ inputs.deployment_id }}
on:
  workflow_dispatch:
    inputs:
      distribution: {required: true}
      image: {required: true}
      deployment_id: {required: true}
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps: [{run: "echo deploy"}]
`

// Storage is a fake GitHub holding the storage repository, and an installation client of it.
type Storage struct {
	Fake *githubfake.Server
	Repo *githubfake.Repo
	GH   *github.Client
}

// NewStorage starts a fake GitHub, closed when tb ends and logging to logf, holding the storage repository
// with a main branch and each of branches, every one of those holding files (path → content).
func NewStorage(tb testing.TB, logf func(string, ...any), branches []string, files map[string]string) *Storage {
	tb.Helper()
	s := githubfake.New(githubfake.Options{Logf: logf})
	tb.Cleanup(s.Close)
	repo := s.CreateRepo(Owner, Name, "main")
	changes := map[string]*githubfake.File{}
	for p, c := range files {
		changes[p] = &githubfake.File{Content: []byte(c)}
	}
	for _, b := range branches {
		if err := repo.CreateBranch(b, repo.BranchSHA("main")); err != nil {
			tb.Fatal(err)
		}
		if len(changes) == 0 {
			continue
		}
		if _, err := repo.Commit(b, "storage files", changes); err != nil {
			tb.Fatal(err)
		}
	}
	gh, err := s.InstallationClient()
	if err != nil {
		tb.Fatal(err)
	}
	return &Storage{Fake: s, Repo: repo, GH: gh}
}

// Config parses a .github/storagebot.yml a test states, failing the test when it is invalid.
func Config(tb testing.TB, text string) *repoconfig.Config {
	tb.Helper()
	cfg, err := repoconfig.Parse([]byte(text))
	if err != nil {
		tb.Fatalf("parse config: %v", err)
	}
	return cfg
}

// Quiet is a logf that drops the fake's logs, for tests whose failures say enough.
func Quiet(string, ...any) {}
