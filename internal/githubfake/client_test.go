package githubfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
)

// TestGoGitHubFlow drives the fake with a real go-github client through ghinstallation: it builds a
// commit with the Git Data API, opens a PR, checks it, comments, reacts, reads a permission and
// merges.
func TestGoGitHubFlow(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	repo.SetPermission("alice", "maintain")
	gh := newClient(t, s, s.PrivateKeyPEM())
	owner, name := "storage-org", "package-storage"

	r, _, err := gh.Repositories.Get(ctx, owner, name)
	if err != nil {
		t.Fatalf("get repository: %v", err)
	}
	if r.GetDefaultBranch() != "snapshot" {
		t.Fatalf("default_branch = %q, want snapshot", r.GetDefaultBranch())
	}
	ref, _, err := gh.Git.GetRef(ctx, owner, name, "heads/snapshot")
	if err != nil {
		t.Fatalf("get ref: %v", err)
	}
	base := ref.GetObject().GetSHA()
	blob, _, err := gh.Git.CreateBlob(ctx, owner, name, &github.Blob{Content: github.String("name: a\nversion: 1.0.0\n"), Encoding: github.String("utf-8")})
	if err != nil {
		t.Fatalf("create blob: %v", err)
	}
	baseCommit, _, err := gh.Git.GetCommit(ctx, owner, name, base)
	if err != nil {
		t.Fatalf("get commit: %v", err)
	}
	tree, _, err := gh.Git.CreateTree(ctx, owner, name, baseCommit.GetTree().GetSHA(), []*github.TreeEntry{
		{Path: github.String("packages/a/1.0.0/manifest.yml"), Mode: github.String("100644"), Type: github.String("blob"), SHA: blob.SHA},
	})
	if err != nil {
		t.Fatalf("create tree: %v", err)
	}
	commit, _, err := gh.Git.CreateCommit(ctx, owner, name, &github.Commit{
		Message: github.String("Add a 1.0.0"), Tree: &github.Tree{SHA: tree.SHA}, Parents: []*github.Commit{{SHA: github.String(base)}},
	})
	if err != nil {
		t.Fatalf("create commit: %v", err)
	}
	if _, _, err := gh.Git.CreateRef(ctx, owner, name, &github.Reference{Ref: github.String("refs/heads/add-a"), Object: &github.GitObject{SHA: commit.SHA}}); err != nil {
		t.Fatalf("create ref: %v", err)
	}
	_, _, err = gh.Git.CreateRef(ctx, owner, name, &github.Reference{Ref: github.String("refs/heads/add-a"), Object: &github.GitObject{SHA: commit.SHA}})
	if status := errorStatus(err); status != http.StatusUnprocessableEntity {
		t.Fatalf("creating an existing ref: status %d (%v), want 422", status, err)
	}
	recursive, _, err := gh.Git.GetTree(ctx, owner, name, "add-a", true)
	if err != nil {
		t.Fatalf("get tree by branch: %v", err)
	}
	var paths []string
	for _, e := range recursive.Entries {
		paths = append(paths, e.GetPath())
	}
	if diff := cmp.Diff([]string{"README.md", "packages", "packages/a", "packages/a/1.0.0", "packages/a/1.0.0/manifest.yml"}, paths); diff != "" {
		t.Errorf("recursive tree paths (-want +got):\n%s", diff)
	}

	pr, _, err := gh.PullRequests.Create(ctx, owner, name, &github.NewPullRequest{
		Title: github.String("[snapshot] Add a 1.0.0"), Head: github.String("add-a"), Base: github.String("snapshot"),
	})
	if err != nil {
		t.Fatalf("create PR: %v", err)
	}
	if pr.GetHead().GetSHA() != commit.GetSHA() || pr.GetBase().GetRef() != "snapshot" {
		t.Fatalf("PR head/base = %s/%s, want %s/snapshot", pr.GetHead().GetSHA(), pr.GetBase().GetRef(), commit.GetSHA())
	}
	files, _, err := gh.PullRequests.ListFiles(ctx, owner, name, pr.GetNumber(), nil)
	if err != nil {
		t.Fatalf("list PR files: %v", err)
	}
	if len(files) != 1 || files[0].GetFilename() != "packages/a/1.0.0/manifest.yml" || files[0].GetStatus() != "added" {
		t.Fatalf("PR files = %v, want one added manifest", files)
	}
	bare, _, err := gh.PullRequests.List(ctx, owner, name, &github.PullRequestListOptions{Head: "no-such-branch"})
	if err != nil || len(bare) != 1 {
		t.Fatalf("list PRs with a bare head: %d PRs (%v), want the filter ignored (1 PR)", len(bare), err)
	}
	scoped, _, err := gh.PullRequests.List(ctx, owner, name, &github.PullRequestListOptions{Head: owner + ":no-such-branch"})
	if err != nil || len(scoped) != 0 {
		t.Fatalf("list PRs with owner:branch head: %d PRs (%v), want 0", len(scoped), err)
	}

	run, _, err := gh.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: "storage-policy", HeadSHA: commit.GetSHA(), Status: github.String("in_progress"),
	})
	if err != nil {
		t.Fatalf("create check run: %v", err)
	}
	tooMany := make([]*github.CheckRunAnnotation, 51)
	for i := range tooMany {
		tooMany[i] = &github.CheckRunAnnotation{Path: github.String("a"), StartLine: github.Int(1), EndLine: github.Int(1), AnnotationLevel: github.String("failure"), Message: github.String("m")}
	}
	_, _, err = gh.Checks.UpdateCheckRun(ctx, owner, name, run.GetID(), github.UpdateCheckRunOptions{
		Name: "storage-policy", Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Annotations: tooMany},
	})
	if status := errorStatus(err); status != http.StatusUnprocessableEntity {
		t.Fatalf("51 annotations: status %d (%v), want 422", status, err)
	}
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, owner, name, run.GetID(), github.UpdateCheckRunOptions{
		Name: "storage-policy", Conclusion: github.String("failure"),
		Output: &github.CheckRunOutput{Title: github.String("1 error"), Summary: github.String("bad"), Annotations: tooMany[:50]},
	}); err != nil {
		t.Fatalf("complete check run: %v", err)
	}
	runs, _, err := gh.Checks.ListCheckRunsForRef(ctx, owner, name, commit.GetSHA(), &github.ListCheckRunsOptions{CheckName: github.String("storage-policy")})
	if err != nil || runs.GetTotal() != 1 || runs.CheckRuns[0].GetConclusion() != "failure" {
		t.Fatalf("list check runs: %+v (%v), want one failed run", runs, err)
	}
	if got := repo.CheckRuns(commit.GetSHA()); len(got) != 1 || len(got[0].Annotations) != 50 {
		t.Fatalf("stored check runs = %+v, want one with 50 annotations", got)
	}

	comment, _, err := gh.Issues.CreateComment(ctx, owner, name, pr.GetNumber(), &github.IssueComment{Body: github.String("Promoted.")})
	if err != nil {
		t.Fatalf("create comment: %v", err)
	}
	if comment.GetUser().GetType() != "Bot" {
		t.Errorf("comment user type = %q, want Bot", comment.GetUser().GetType())
	}
	if _, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, owner, name, comment.GetID(), "eyes"); err != nil {
		t.Fatalf("react: %v", err)
	}
	if diff := cmp.Diff([]string{"eyes"}, repo.Reactions(comment.GetID())); diff != "" {
		t.Errorf("reactions (-want +got):\n%s", diff)
	}
	if _, _, err := gh.Issues.AddLabelsToIssue(ctx, owner, name, pr.GetNumber(), []string{"promotion"}); err != nil {
		t.Fatalf("add labels: %v", err)
	}
	if diff := cmp.Diff([]string{"promotion"}, repo.Labels(pr.GetNumber())); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	perm, _, err := gh.Repositories.GetPermissionLevel(ctx, owner, name, "alice")
	if err != nil {
		t.Fatalf("get permission: %v", err)
	}
	if perm.GetPermission() != "write" || !perm.GetUser().GetPermissions()["maintain"] || perm.GetUser().GetPermissions()["admin"] {
		t.Errorf("permission = %q %v, want legacy write with maintain true and admin false", perm.GetPermission(), perm.GetUser().GetPermissions())
	}
	_, _, err = gh.Repositories.GetPermissionLevel(ctx, owner, name, "stranger")
	if status := errorStatus(err); status != http.StatusNotFound {
		t.Errorf("stranger's permission: status %d, want 404", status)
	}

	merged, _, err := gh.PullRequests.Merge(ctx, owner, name, pr.GetNumber(), "", &github.PullRequestOptions{MergeMethod: "merge"})
	if err != nil || !merged.GetMerged() {
		t.Fatalf("merge: %+v (%v)", merged, err)
	}
	if got := repo.BranchSHA("snapshot"); got != merged.GetSHA() {
		t.Errorf("snapshot head = %s, want merge commit %s", got, merged.GetSHA())
	}
	content, _, _, err := gh.Repositories.GetContents(ctx, owner, name, "packages/a/1.0.0/manifest.yml", &github.RepositoryContentGetOptions{Ref: "snapshot"})
	if err != nil {
		t.Fatalf("get contents: %v", err)
	}
	text, err := content.GetContent()
	if err != nil || text != "name: a\nversion: 1.0.0\n" {
		t.Errorf("contents = %q (%v)", text, err)
	}
	_, _, _, err = gh.Repositories.GetContents(ctx, owner, name, "packages/missing", nil)
	if status := errorStatus(err); status != http.StatusNotFound {
		t.Errorf("absent contents: status %d, want 404", status)
	}
}

func TestBadCredentialsAreRejected(t *testing.T) {
	s, _ := newFake(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})
	tests := []struct {
		name string
		do   func() error
	}{
		{"JWT signed with another key", func() error {
			_, _, err := newClient(t, s, otherPEM).Repositories.Get(context.Background(), "storage-org", "package-storage")
			return err
		}},
		{"no credentials", func() error {
			gh := github.NewClient(nil)
			gh.BaseURL = newClient(t, s, s.PrivateKeyPEM()).BaseURL
			_, _, err := gh.Repositories.Get(context.Background(), "storage-org", "package-storage")
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil {
				t.Fatal("call succeeded, want 401")
			}
			var ghErr *github.ErrorResponse
			if errors.As(err, &ghErr) && ghErr.Response.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", ghErr.Response.StatusCode)
			}
		})
	}
	if n := s.Calls("POST /app/installations/{installation_id}/access_tokens"); n == 0 {
		t.Errorf("the bad JWT never reached the token endpoint")
	}
}

func errorStatus(err error) int {
	var ghErr *github.ErrorResponse
	if errors.As(err, &ghErr) && ghErr.Response != nil {
		return ghErr.Response.StatusCode
	}
	return 0
}
