package prcheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

func TestIsFork(t *testing.T) {
	repo := func(id int64, full string) *github.Repository { return &github.Repository{ID: &id, FullName: &full} }
	pr := func(head, base *github.Repository) *github.PullRequest {
		return &github.PullRequest{Head: &github.PullRequestBranch{Repo: head}, Base: &github.PullRequestBranch{Repo: base}}
	}
	tests := []struct {
		name string
		pr   *github.PullRequest
		want bool
	}{
		{"same repository", pr(repo(1, "o/r"), repo(1, "o/r")), false},
		{"fork", pr(repo(2, "m/r"), repo(1, "o/r")), true},
		{"deleted fork (head.repo null)", pr(nil, repo(1, "o/r")), true},
		{"no IDs, same name", pr(&github.Repository{FullName: github.String("O/R")}, &github.Repository{FullName: github.String("o/r")}), false},
		{"no IDs, other name", pr(&github.Repository{FullName: github.String("m/r")}, &github.Repository{FullName: github.String("o/r")}), true},
	}
	for _, tc := range tests {
		if got := IsFork(tc.pr); got != tc.want {
			t.Errorf("%s: IsFork = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCheckPRIfStale: the reconciler's entry point evaluates only when this App's newest run on the head is
// missing or stuck, whatever other Apps' runs say, and every evaluation is a new run.
func TestCheckPRIfStale(t *testing.T) {
	ctx := context.Background()
	fake := githubfake.New(githubfake.Options{})
	t.Cleanup(fake.Close)
	repo := fake.CreateRepo("storage-org", "package-storage", "main")
	for _, ch := range []string{"snapshot", "staging", "production"} {
		if _, err := repo.Commit(ch, "init", map[string]*githubfake.File{"README.md": {Content: []byte(ch)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.CreateBranch("add-a", repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("add-a", "a", map[string]*githubfake.File{"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\nversion: 1.0.0\n")}}); err != nil {
		t.Fatal(err)
	}
	opened, err := repo.OpenPullRequest(githubfake.PROptions{Head: "add-a", Base: "snapshot", Title: "[snapshot] Add a", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := fake.InstallationClient()
	if err != nil {
		t.Fatal(err)
	}
	pr, _, err := client.PullRequests.Get(ctx, "storage-org", "package-storage", opened.Number)
	if err != nil {
		t.Fatal(err)
	}
	gh := githubapi.New(client, storage.NewObjectCache(0))
	ghRepo, err := repoctx.Load(ctx, gh, pr.GetBase().GetRepo())
	if err != nil {
		t.Fatal(err)
	}

	unknown := &Service{Cache: storage.NewObjectCache(0)}
	if _, _, err := unknown.CheckPRIfStale(ctx, gh, ghRepo, pr, time.Minute); err == nil || !strings.Contains(err.Error(), "GITHUB_APP_INTEGRATION_ID") {
		t.Errorf("without an App ID: %v, want an error saying how to set it", err)
	}

	if _, err := repo.CreateCheckRunAs(githubfake.OtherApp{ID: fake.AppID() + 1, Slug: "ci"}, githubfake.CheckRunOptions{
		Name: policy.CheckName, HeadSHA: opened.HeadSHA, Conclusion: "success", Summary: "another App's",
	}); err != nil {
		t.Fatal(err)
	}
	svc := &Service{Cache: storage.NewObjectCache(0), AppID: fake.AppID(),
		BotLogin: func(context.Context) (string, error) { return "storagebot[bot]", nil }}
	out, ran, err := svc.CheckPRIfStale(ctx, gh, ghRepo, pr, time.Minute)
	if err != nil || !ran || out.Conclusion != "success" {
		t.Fatalf("with only another App's run: ran=%v %+v %v, want an evaluation", ran, out, err)
	}
	if _, ran, err := svc.CheckPRIfStale(ctx, gh, ghRepo, pr, time.Minute); err != nil || ran {
		t.Errorf("after this App's run completed: ran=%v %v, want no second evaluation", ran, err)
	}
	if _, err := svc.CheckPR(ctx, gh, ghRepo, pr); err != nil {
		t.Fatal(err)
	}
	var ours []githubfake.CheckRun
	for _, r := range repo.CheckRuns(opened.HeadSHA) {
		if r.AppID == fake.AppID() {
			ours = append(ours, r)
		}
	}
	if len(ours) != 2 || ours[0].ID == ours[1].ID || ours[1].Status != "completed" {
		t.Errorf("this App's runs = %+v, want two completed runs, one per evaluation", ours)
	}
	latest, err := svc.LatestRun(ctx, gh, "storage-org", "package-storage", opened.HeadSHA)
	if err != nil || latest.GetID() != ours[len(ours)-1].ID {
		t.Errorf("LatestRun = %d (%v), want the newest of this App's runs %d", latest.GetID(), err, ours[len(ours)-1].ID)
	}

	// A run completed because reading the change failed is no verdict: the reconciler evaluates again.
	if _, _, err := client.Checks.CreateCheckRun(ctx, "storage-org", "package-storage", github.CreateCheckRunOptions{
		Name: policy.CheckName, HeadSHA: opened.HeadSHA, Status: github.String("completed"), Conclusion: github.String("failure"),
		Output: &github.CheckRunOutput{Title: github.String(CouldNotEvaluateTitle), Summary: github.String("Reading the change failed: 502")},
	}); err != nil {
		t.Fatal(err)
	}
	out, ran, err = svc.CheckPRIfStale(ctx, gh, ghRepo, pr, time.Minute)
	if err != nil || !ran || out.Conclusion != "success" {
		t.Errorf("after a could-not-evaluate run: ran=%v %+v %v, want a new evaluation", ran, out, err)
	}
}
