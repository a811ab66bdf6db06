package handlers

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/rollout"
)

// fuzzEnv is a fake GitHub holding a storage repository, the handlers wired to it as serve wires them, and
// the webhooks a short flow made the fake emit for that repository (schema-valid payloads the handlers can
// act on, with this fake's installation ID).
type fuzzEnv struct {
	app      *App
	recorded map[string][][]byte
}

var (
	fuzzOnce sync.Once
	fuzzE    *fuzzEnv
	fuzzErr  error
)

// sharedFuzzEnv starts one fake for the whole test binary: fuzz workers call a target many times, and the
// fake's state only grows.
func sharedFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	fuzzOnce.Do(func() { fuzzE, fuzzErr = newFuzzEnv() })
	if fuzzErr != nil {
		tb.Fatalf("fuzz environment: %v", fuzzErr)
	}
	return fuzzE
}

func newFuzzEnv() (*fuzzEnv, error) {
	fake := githubfake.New(githubfake.Options{}) // no webhook URL: deliveries are recorded, not sent
	repo := fake.CreateRepo("storage-org", "package-storage", "main")
	// Distributions built and deployed by workflows, so push, workflow_run and deployment_status payloads
	// reach the rollout service's reads rather than stopping at "no rollout configured".
	if _, err := repo.Commit("main", "config", map[string]*githubfake.File{".github/storagebot.yml": {Content: []byte(fuzzConfigYAML)}}); err != nil {
		return nil, err
	}
	for _, ch := range []string{"snapshot", "staging", "production"} {
		if _, err := repo.Commit(ch, "init "+ch, map[string]*githubfake.File{"README.md": {Content: []byte(ch)}}); err != nil {
			return nil, err
		}
	}
	repo.SetPermission("alice", "maintain")
	if _, err := repo.Commit("add-a", "a", map[string]*githubfake.File{
		"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\nversion: 1.0.0\n")},
	}); err != nil {
		return nil, err
	}
	pr, err := repo.OpenPullRequest(githubfake.PROptions{Head: "add-a", Base: "snapshot", Title: "Add a", User: "alice"})
	if err != nil {
		return nil, err
	}
	title := "[snapshot] Add a"
	if err := repo.EditPullRequest(pr.Number, "alice", githubfake.PREdit{Title: &title}); err != nil {
		return nil, err
	}
	if _, err := repo.Comment(pr.Number, "alice", "/recheck"); err != nil {
		return nil, err
	}
	client, err := fake.InstallationClient()
	if err != nil {
		return nil, err
	}
	run, _, err := client.Checks.CreateCheckRun(context.Background(), "storage-org", "package-storage", github.CreateCheckRunOptions{
		Name: "storage-policy", HeadSHA: pr.HeadSHA, Conclusion: github.String("success"),
		Output: &github.CheckRunOutput{Title: github.String("ok"), Summary: github.String("ok")},
	})
	if err != nil {
		return nil, err
	}
	if err := repo.RerequestCheckRun(run.GetID()); err != nil {
		return nil, err
	}
	clients, err := githubapp.NewDefaultCachingClientCreator(fuzzConfig(fake))
	if err != nil {
		return nil, err
	}
	// Rollout passes run in the background for the life of the test binary, as in serve.
	targets := &rollout.Targets{}
	rollouts := rollout.NewService(context.Background(), &rollout.Controller{Target: targets.For}, nil)
	e := &fuzzEnv{app: New(Deps{Clients: clients, AppID: fake.AppID(), Rollouts: rollouts}), recorded: map[string][][]byte{}}
	for _, d := range fake.Deliveries() {
		e.recorded[d.Event] = append(e.recorded[d.Event], d.Body)
	}
	return e, nil
}

const fuzzConfigYAML = `distributions:
  - {name: production, image: ghcr.io/o/production, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: staging, image: ghcr.io/o/staging, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: snapshot, image: ghcr.io/o/snapshot, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
`

func fuzzConfig(fake *githubfake.Server) githubapp.Config {
	var c githubapp.Config
	c.V3APIURL = fake.URL()
	c.App.IntegrationID = fake.AppID()
	c.App.PrivateKey = string(fake.PrivateKeyPEM())
	return c
}

// schemaInvalid are payloads GitHub never sends: broken JSON, wrong types, and objects missing what each
// event is about. Every handler must refuse or ignore them, never panic.
var schemaInvalid = []string{
	``, `{`, `null`, `[]`, `"x"`, `42`, `{}`,
	`{"action":"opened"}`, `{"action":"opened","pull_request":null}`, `{"action":"opened","pull_request":"x"}`,
	`{"action":"edited","pull_request":{"number":1},"repository":{"name":"r"}}`,
	`{"action":"edited","changes":null,"pull_request":{},"repository":{}}`,
	`{"action":"closed","pull_request":{"merged":true},"repository":{}}`,
	`{"action":"rerequested"}`, `{"action":"rerequested","check_run":null}`,
	`{"action":"rerequested","check_run":{"name":"storage-policy"}}`,
	`{"action":"rerequested","check_run":{"name":"storage-policy","pull_requests":[null]},"repository":{}}`,
	`{"action":"rerequested","check_suite":null}`, `{"action":"rerequested","check_suite":{"pull_requests":[null]}}`,
	`{"action":"completed"}`, `{"action":"completed","check_suite":{"pull_requests":[null,{}]},"repository":{}}`,
	`{"action":"created"}`, `{"action":"created","comment":null,"issue":null}`,
	`{"action":"created","comment":{"body":"/recheck"},"issue":{"number":1}}`,
	`{"action":"created","comment":{"body":"/promote a@1.0.0"},"issue":{"pull_request":{}},"repository":{"owner":{}}}`,
	`{"action":"deleted","installation":null}`, `{"action":"created","repositories":[null]}`,
	`{"installation":{"id":"x"}}`, `{"action":["opened"]}`,
	`{"ref":"refs/tags/8.12.0","created":true}`, `{"ref":"refs/tags/8.12.0","created":true,"repository":{}}`,
	`{"ref":"refs/heads/production","commits":[null,{"modified":null}],"repository":{"owner":null}}`,
	`{"ref":"refs/heads/production","commits":[{"modified":["Dockerfile"]}],"repository":{"name":"package-storage","owner":{"login":"storage-org"}}}`,
	`{"ref":"refs/tags/8.12.0","created":true,"head_commit":null,"after":"","repository":{"name":"package-storage","owner":{"login":"storage-org"}},"installation":{"id":1}}`,
	`{"action":"completed","workflow_run":null}`, `{"action":"completed","workflow_run":{"event":"workflow_dispatch"}}`,
	`{"action":"completed","workflow_run":{"event":"workflow_dispatch"},"repository":null,"installation":{"id":1}}`,
	`{"deployment_status":null}`, `{"deployment_status":{"state":"success"},"deployment":null,"repository":null}`,
	`{"deployment_status":{"state":"failure"},"deployment":{"id":"x"}}`,
}

// fuzzHandler runs h on every seed and on whatever the fuzzer derives from them: it must return an error or
// nil, never panic, and must refuse a body that is not JSON.
func fuzzHandler(f *testing.F, event string, h githubapp.EventHandler) {
	e := sharedFuzzEnv(f)
	for _, p := range schemaInvalid {
		f.Add([]byte(p))
	}
	for _, p := range e.recorded[event] {
		f.Add(p)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", event, "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := h.Handle(ctx, event, "fuzz-delivery", payload)
		if !json.Valid(payload) && err == nil {
			t.Errorf("%s handler accepted a body that is not JSON: %q", event, payload)
		}
	})
}

func FuzzPullRequestHandler(f *testing.F) {
	fuzzHandler(f, "pull_request", &PullRequest{app: sharedFuzzEnv(f).app})
}

func FuzzIssueCommentHandler(f *testing.F) {
	fuzzHandler(f, "issue_comment", &IssueComment{app: sharedFuzzEnv(f).app})
}

func FuzzCheckRunHandler(f *testing.F) {
	fuzzHandler(f, "check_run", &CheckRun{app: sharedFuzzEnv(f).app})
}

func FuzzCheckSuiteHandler(f *testing.F) {
	fuzzHandler(f, "check_suite", &CheckSuite{app: sharedFuzzEnv(f).app})
}

func FuzzInstallationHandler(f *testing.F) {
	fuzzHandler(f, "installation", &Installation{})
}

func FuzzPushHandler(f *testing.F) {
	fuzzHandler(f, "push", &Push{app: sharedFuzzEnv(f).app})
}

func FuzzWorkflowRunHandler(f *testing.F) {
	fuzzHandler(f, "workflow_run", &WorkflowRun{app: sharedFuzzEnv(f).app})
}

func FuzzDeploymentStatusHandler(f *testing.F) {
	fuzzHandler(f, "deployment_status", &DeploymentStatus{app: sharedFuzzEnv(f).app})
}

// TestFuzzSeedsCoverEveryHandler keeps the seed corpus honest: each handler gets GitHub's own example payloads
// and ones the fake emitted for a repository the handlers can reach.
func TestFuzzSeedsCoverEveryHandler(t *testing.T) {
	e := sharedFuzzEnv(t)
	for _, event := range []string{"pull_request", "issue_comment", "check_run", "check_suite", "installation", "push", "workflow_run", "deployment_status"} {
		files, err := filepath.Glob(filepath.Join("testdata", "webhooks", event, "*.json"))
		if err != nil || len(files) == 0 {
			t.Errorf("no example payloads for %s in testdata/webhooks (%v)", event, err)
		}
	}
	for _, event := range []string{"pull_request", "issue_comment", "check_run"} {
		if len(e.recorded[event]) == 0 {
			t.Errorf("the fake emitted no %s payload to seed with", event)
		}
	}
}
