package promotion

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/commandparse"
	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
)

// testSeal is the marker key every Service in these tests shares, as replicas holding one App key do.
var testSeal = func() seal.Key {
	k, err := seal.New([]byte("promotion test key"))
	if err != nil {
		panic(err)
	}
	return k
}()

const (
	owner = "storage-org"
	name  = "package-storage"
	// tokenRoute is ghinstallation's token exchange: authentication, not work, so not counted as an API call.
	tokenRoute = "POST /app/installations/{installation_id}/access_tokens"
)

// env is a fake GitHub with a storage repository holding the three default channels, and a Service.
type env struct {
	fake *githubfake.Server
	repo *githubfake.Repo
	svc  *Service
	r    Repo
	// gh is the go-github client under r.Client, for what the tests do as a person would.
	gh *github.Client
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	s := githubfake.New(githubfake.Options{})
	tb.Cleanup(s.Close)
	repo := s.CreateRepo(owner, name, "snapshot")
	head := repo.BranchSHA("snapshot")
	for _, b := range []string{"staging", "production"} {
		if err := repo.CreateBranch(b, head); err != nil {
			tb.Fatalf("create branch %s: %v", b, err)
		}
	}
	cache := storage.NewObjectCache(0)
	gh := newClient(tb, s)
	return &env{fake: s, repo: repo, svc: &Service{Cache: cache, Seal: testSeal, AppID: s.AppID()}, gh: gh,
		r: Repo{Client: githubapi.New(gh, cache), Owner: owner, Name: name, Config: repoconfig.Default()}}
}

// promoteAndMerge promotes versions from snapshot to staging, merges the PR and returns its number.
func (e *env) promoteAndMerge(tb testing.TB, list ...string) int {
	tb.Helper()
	res, err := e.svc.Promote(context.Background(), e.r, PromoteRequest{Versions: refs(list...), Target: "staging"})
	if err != nil || len(res.Refusals) > 0 {
		tb.Fatalf("promote: %v %+v", err, res.Refusals)
	}
	if _, err := e.repo.MergePullRequest(res.PR.Number, "merge"); err != nil {
		tb.Fatalf("merge #%d: %v", res.PR.Number, err)
	}
	return res.PR.Number
}

// checkMergeGate runs MergeRemovalIfReady on removal PR number and checks what it says and what GitHub holds.
func (e *env) checkMergeGate(t *testing.T, number int, wantMerged bool, wantReason string) {
	t.Helper()
	merged, reason, err := e.svc.MergeRemovalIfReady(context.Background(), e.r, number)
	if err != nil {
		t.Fatalf("MergeRemovalIfReady: %v", err)
	}
	if merged != wantMerged || !strings.Contains(reason, wantReason) {
		t.Errorf("merged=%v reason=%q, want merged=%v reason containing %q", merged, reason, wantMerged, wantReason)
	}
	if got := e.repo.PullRequest(number).Merged; got != wantMerged {
		t.Errorf("PR merged = %v, want %v", got, wantMerged)
	}
}

// checkAddedBy checks the versions AddedBy finds in merged PR pr.
func (e *env) checkAddedBy(t *testing.T, pr *github.PullRequest, want ...string) {
	t.Helper()
	got, err := e.svc.AddedBy(context.Background(), e.r, pr)
	if err != nil {
		t.Fatalf("AddedBy: %v", err)
	}
	if diff := cmp.Diff(refs(want...), got); diff != "" {
		t.Errorf("added by #%d (-want +got):\n%s", pr.GetNumber(), diff)
	}
}

// backlog is n versions of 40 packages, enough to pass GitHub's limits on one title or body.
func backlog(n int) []string {
	var list []string
	for i := 0; i < n; i++ {
		list = append(list, fmt.Sprintf("pkg_%03d@1.%d.0", i%40, i))
	}
	return list
}

// restarted is the repository as a fresh process (a restart, another replica) sees it: the same installation,
// an empty object cache.
func (e *env) restarted() Repo {
	r := e.r
	r.Client = githubapi.New(e.gh, storage.NewObjectCache(0))
	return r
}

// newClient is a go-github client authenticated as the installation through ghinstallation.
func newClient(tb testing.TB, s *githubfake.Server) *github.Client {
	tb.Helper()
	c, err := s.InstallationClient()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// version returns the files of a package version: its manifest plus extra-1 documentation files, with a
// salt in every file so that two copies can be made to differ.
func version(pkg, v string, files int, salt string) map[string]*githubfake.File {
	dir := storage.VersionPath(pkg, v)
	out := map[string]*githubfake.File{
		dir + "/manifest.yml": {Content: []byte(fmt.Sprintf("name: %s\nversion: %s\n", pkg, v))},
	}
	for i := 1; i < files; i++ {
		out[fmt.Sprintf("%s/docs/file-%04d.md", dir, i)] = &githubfake.File{Content: []byte(fmt.Sprintf("%s %s file %d %s\n", pkg, v, i, salt))}
	}
	return out
}

// put commits versions (each "pkg@version") to a channel branch.
func (e *env) put(tb testing.TB, branch string, files int, salt string, refs ...string) {
	tb.Helper()
	all := map[string]*githubfake.File{}
	for _, ref := range refs {
		pkg, v, _ := strings.Cut(ref, "@")
		for p, f := range version(pkg, v, files, salt) {
			all[p] = f
		}
	}
	if _, err := e.repo.Commit(branch, "add "+strings.Join(refs, " "), all); err != nil {
		tb.Fatalf("commit to %s: %v", branch, err)
	}
}

// treeAt is the tree SHA of packages/<pkg>/<v> on a branch ("" when absent).
func (e *env) treeAt(tb testing.TB, branch, ref string) string {
	tb.Helper()
	pkg, v, _ := strings.Cut(ref, "@")
	sha, err := e.repo.TreeSHA(branch, storage.VersionPath(pkg, v))
	if err != nil {
		return ""
	}
	return sha
}

// apiCalls counts the requests made since the last ResetCalls, authentication aside.
func (e *env) apiCalls() int {
	n := 0
	for route, c := range e.fake.CallCounts() {
		if route != tokenRoute {
			n += c
		}
	}
	return n
}

// branches lists the bot's branches whose name starts with prefix.
func (e *env) prsFrom(prefix string) []githubfake.PullRequest {
	var out []githubfake.PullRequest
	for _, pr := range e.repo.PullRequests() {
		if strings.HasPrefix(pr.Head, prefix) {
			out = append(out, pr)
		}
	}
	return out
}

func refs(list ...string) []commandparse.VersionRef {
	out := make([]commandparse.VersionRef, len(list))
	for i, s := range list {
		p, v, _ := strings.Cut(s, "@")
		out[i] = commandparse.VersionRef{Package: p, Version: v}
	}
	return out
}

// pr reads a PR through the API, as a handler would receive it.
func (e *env) pr(tb testing.TB, number int) *github.PullRequest {
	tb.Helper()
	pr, _, err := e.gh.PullRequests.Get(context.Background(), owner, name, number)
	if err != nil {
		tb.Fatalf("get PR #%d: %v", number, err)
	}
	return pr
}
