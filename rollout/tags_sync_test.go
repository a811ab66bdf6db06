package rollout

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/policy"
	"github.com/storagebot/storagebot/rollout/rollouttest"
)

const threeDistributions = `
distributions:
  - {name: production, image: ghcr.io/o/production, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: staging, image: ghcr.io/o/staging, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: snapshot, image: ghcr.io/o/snapshot, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
`

// storageOnFake is a storage repository on the fake GitHub with the three channel branches, each holding
// files, and the rollout service's view of it.
type storageOnFake struct {
	s    *githubfake.Server
	repo *githubfake.Repo
	gh   *github.Client
	ghr  *github.Repository
	cfg  *repoconfig.Config
	svc  *Service
}

func newStorageOnFake(t *testing.T, files map[string]string) *storageOnFake {
	t.Helper()
	st := rollouttest.NewStorage(t, rollouttest.Quiet, []string{"production", "staging", "snapshot"}, files)
	s, repo, gh := st.Fake, st.Repo, st.GH
	cfg := rollouttest.Config(t, threeDistributions)
	ghr := &github.Repository{Owner: &github.User{Login: github.String("storage-org")}, Name: github.String("package-storage"),
		FullName: github.String("storage-org/package-storage"), DefaultBranch: github.String("main")}
	return &storageOnFake{s: s, repo: repo, gh: gh, ghr: ghr, cfg: cfg, svc: NewService(context.Background(), &Controller{}, nil)}
}

// stackRuns returns the stack-version check runs on sha.
func (f *storageOnFake) stackRuns(sha string) []githubfake.CheckRun {
	var out []githubfake.CheckRun
	for _, r := range f.repo.CheckRuns(sha) {
		if r.Name == StackVersionCheck {
			out = append(out, r)
		}
	}
	return out
}

// pushTag pushes tag on sha and hands the push event the fake sent to StackTag, as the push handler does.
func (f *storageOnFake) pushTag(t *testing.T, tag, sha string) {
	t.Helper()
	if err := f.repo.PushTag(tag, sha, "alice"); err != nil {
		t.Fatal(err)
	}
	ds := f.s.Deliveries()
	var ev github.PushEvent
	if err := json.Unmarshal(ds[len(ds)-1].Body, &ev); err != nil {
		t.Fatal(err)
	}
	name, ok := strings.CutPrefix(ev.GetRef(), "refs/tags/")
	if !ok || !ev.GetCreated() {
		t.Fatalf("tag push event: ref %q created %v", ev.GetRef(), ev.GetCreated())
	}
	if err := f.svc.StackTag(context.Background(), f.gh, f.ghr, f.cfg, f.s.AppID(), name, ev.GetHeadCommit().GetID()); err != nil {
		t.Fatalf("StackTag(%s): %v", tag, err)
	}
}

func TestStackVersionTags(t *testing.T) {
	f := newStorageOnFake(t, map[string]string{".github/workflows/build.yml": rollouttest.BuildWorkflow("tag")})
	prodHead := f.repo.BranchSHA("production")
	snapOnly, err := f.repo.Commit("snapshot", "snapshot only", map[string]*githubfake.File{"README.md": {Content: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}

	f.pushTag(t, "8.12.0", prodHead)
	f.pushTag(t, "8.13.0-rc1", prodHead)
	f.pushTag(t, "v8.12.1", prodHead)
	f.pushTag(t, "8.14.0", snapOnly)
	f.pushTag(t, "release-notes", prodHead) // no stack version: left alone

	var tags []string
	for _, r := range f.repo.WorkflowRuns() {
		if r.Inputs["distribution"] != "production" || r.Inputs["ref"] != prodHead || r.Branch != "production" {
			t.Errorf("build %q dispatched with inputs %v on %s, want production at %s", r.DisplayTitle, r.Inputs, r.Branch, prodHead)
		}
		tags = append(tags, r.Inputs["tag"])
	}
	if strings.Join(tags, ",") != "8.12.0,8.13.0-rc1" {
		t.Errorf("builds dispatched for tags %v, want 8.12.0 and 8.13.0-rc1", tags)
	}
	want := map[string]string{"8.12.0": "success", "8.13.0-rc1": "success", "v8.12.1": "failure"}
	got := map[string]string{}
	for _, r := range f.stackRuns(prodHead) {
		got[r.ExternalID] = r.Conclusion
		if r.ExternalID == "v8.12.1" && (!strings.Contains(r.Title, "no v") || !strings.Contains(r.Summary, "`8.12.1`")) {
			t.Errorf("refusal of v8.12.1 does not say to drop the v: %q / %q", r.Title, r.Summary)
		}
		if r.ExternalID == "8.12.0" && !strings.Contains(r.Title, "ghcr.io/o/production:8.12.0") {
			t.Errorf("answer to 8.12.0 does not name the image it builds: %q", r.Title)
		}
	}
	if len(got) != len(want) || got["8.12.0"] != want["8.12.0"] || got["8.13.0-rc1"] != want["8.13.0-rc1"] || got["v8.12.1"] != want["v8.12.1"] {
		t.Errorf("stack-version check runs on the production head = %v, want %v", got, want)
	}
	off := f.stackRuns(snapOnly)
	if len(off) != 1 || off[0].Conclusion != "failure" || !strings.Contains(off[0].Title, "is not on production") {
		t.Errorf("tag on a commit production does not hold: runs %+v, want one failure saying so", off)
	}

	// A redelivery of the same push answers nothing twice.
	before := len(f.repo.WorkflowRuns())
	if err := f.svc.StackTag(context.Background(), f.gh, f.ghr, f.cfg, f.s.AppID(), "8.12.0", prodHead); err != nil {
		t.Fatal(err)
	}
	if n := len(f.repo.WorkflowRuns()); n != before || len(f.stackRuns(prodHead)) != 3 {
		t.Errorf("redelivered tag push: %d builds (want %d), %d check runs (want 3)", n, before, len(f.stackRuns(prodHead)))
	}
}

func TestStackVersionTagRefusedWhenTheBuildWorkflowTakesNoTag(t *testing.T) {
	f := newStorageOnFake(t, map[string]string{".github/workflows/build.yml": rollouttest.BuildWorkflow()})
	head := f.repo.BranchSHA("production")
	f.pushTag(t, "8.12.0", head)
	runs := f.stackRuns(head)
	if len(runs) != 1 || runs[0].Conclusion != "failure" || !strings.Contains(runs[0].Summary, "`tag`") {
		t.Errorf("runs %+v, want one failure telling to declare the input tag", runs)
	}
	if n := len(f.repo.WorkflowRuns()); n != 0 {
		t.Errorf("%d runs started, want none", n)
	}
}

const registryGoSum = `github.com/elastic/package-registry v1.20.0 h1:old=
github.com/elastic/package-registry v1.20.0/go.mod h1:oldmod=
gopkg.in/yaml.v3 v3.0.1 h1:yaml=
`

func storageFiles(version, gosum string) map[string]string {
	return map[string]string{
		"Dockerfile": "ARG PACKAGE_REGISTRY=" + version + "\nFROM docker.elastic.co/package-registry/package-registry:${PACKAGE_REGISTRY}\nCOPY packages /packages\n",
		"go.mod":     "module storage\n\ngo 1.22\n\nrequire (\n\tgithub.com/elastic/package-registry " + version + "\n\tgopkg.in/yaml.v3 v3.0.1\n)\n",
		"go.sum":     gosum,
	}
}

// TestRegistryVersionSync changes the registry version on production and has two replicas answer the push
// at once: staging and snapshot each get one PR bringing Dockerfile, go.mod and go.sum to the new version.
func TestRegistryVersionSync(t *testing.T) {
	f := newStorageOnFake(t, storageFiles("v1.20.0", registryGoSum))
	before := f.repo.BranchSHA("production")
	newSum := strings.ReplaceAll(strings.ReplaceAll(registryGoSum, "v1.20.0 h1:old=", "v1.21.0 h1:new="), "v1.20.0/go.mod h1:oldmod=", "v1.21.0/go.mod h1:newmod=")
	changes := map[string]*githubfake.File{}
	for p, c := range storageFiles("v1.21.0", newSum) {
		changes[p] = &githubfake.File{Content: []byte(c)}
	}
	after, err := f.repo.Commit("production", "Update package-registry", changes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := seal.New([]byte("test key material, not a secret"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.svc.RegistrySync(context.Background(), f.gh, f.ghr, f.cfg, key, "production", before, after); err != nil {
				t.Errorf("RegistrySync: %v", err)
			}
		}()
	}
	wg.Wait()
	// A redelivery finds the PRs.
	if err := f.svc.RegistrySync(context.Background(), f.gh, f.ghr, f.cfg, key, "production", before, after); err != nil {
		t.Fatal(err)
	}
	prs := f.repo.PullRequests()
	if len(prs) != 2 {
		t.Fatalf("%d PRs opened, want one for staging and one for snapshot: %+v", len(prs), prs)
	}
	for _, pr := range prs {
		target := pr.Base
		if pr.Title != "["+target+"] Update package-registry to v1.21.0" || pr.Head != RegistrySyncBranch(target, "v1.21.0") {
			t.Errorf("PR #%d: title %q head %q", pr.Number, pr.Title, pr.Head)
		}
		if !strings.Contains(pr.Body, "<!-- storagebot:registry-sync ") || !strings.Contains(pr.Body, `"version":"v1.21.0"`) {
			t.Errorf("PR #%d body has no sealed marker:\n%s", pr.Number, pr.Body)
		}
		dockerfile, _ := f.repo.ReadFile(pr.HeadSHA, "Dockerfile")
		gomod, _ := f.repo.ReadFile(pr.HeadSHA, "go.mod")
		gosum, _ := f.repo.ReadFile(pr.HeadSHA, "go.sum")
		dv, _ := policy.DockerfileRegistryVersion(dockerfile)
		mv, _ := policy.GoModRegistryVersion(gomod)
		if dv != "v1.21.0" || mv != "v1.21.0" {
			t.Errorf("PR #%d: Dockerfile on %q, go.mod on %q, want both v1.21.0", pr.Number, dv, mv)
		}
		if string(gosum) != newSum {
			t.Errorf("PR #%d go.sum:\n%s\nwant:\n%s", pr.Number, gosum, newSum)
		}
	}

	// A push that leaves the version alone opens nothing.
	again, err := f.repo.Commit("production", "Add a package", map[string]*githubfake.File{"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RegistrySync(context.Background(), f.gh, f.ghr, f.cfg, key, "production", after, again); err != nil {
		t.Fatal(err)
	}
	if n := len(f.repo.PullRequests()); n != 2 {
		t.Errorf("%d PRs after a push that kept the version, want 2", n)
	}
}

func TestSetDockerfileRegistryVersion(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"arg", "ARG PACKAGE_REGISTRY=v1.0.0\nFROM x/package-registry:${PACKAGE_REGISTRY}\n", "ARG PACKAGE_REGISTRY=v2.0.0\nFROM x/package-registry:${PACKAGE_REGISTRY}\n"},
		{"from tag", "FROM --platform=linux/amd64 docker.elastic.co/package-registry/package-registry:v1.0.0\nCOPY a b\n", "FROM --platform=linux/amd64 docker.elastic.co/package-registry/package-registry:v2.0.0\nCOPY a b\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := setDockerfileRegistryVersion([]byte(tc.in), "v2.0.0")
			if !ok || string(got) != tc.want {
				t.Errorf("got %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
	if _, ok := setDockerfileRegistryVersion([]byte("FROM alpine:3\n"), "v2.0.0"); ok {
		t.Error("a Dockerfile pinning no registry was changed")
	}
}
