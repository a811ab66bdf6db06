package githubfake

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v50/github"
)

// TestLengthLimits checks GitHub's 256-character titles and 65,536-character bodies and comments, each
// refused with 422 Validation Failed and one error naming the resource and field.
func TestLengthLimits(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	owner, name := "storage-org", "package-storage"
	if _, err := repo.Commit("snapshot", "base", map[string]*File{"README": {Content: []byte("x\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := repo.CreateBranch("topic", repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("topic", "change", map[string]*File{"README": {Content: []byte("y\n")}}); err != nil {
		t.Fatal(err)
	}
	// Characters, not bytes: 256 two-byte characters are still a valid title.
	okTitle := strings.Repeat("é", MaxTitleLength)
	long := strings.Repeat("a", MaxTitleLength+1)
	longBody := strings.Repeat("b", MaxBodyLength+1)

	wantInvalid := func(t *testing.T, err error, resource, field string) {
		t.Helper()
		var er *github.ErrorResponse
		if !errors.As(err, &er) || er.Response.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("err = %v, want a 422", err)
		}
		want := fmt.Sprintf("%s is too long (maximum is", field)
		if er.Message != "Validation Failed" || len(er.Errors) != 1 || er.Errors[0].Resource != resource ||
			er.Errors[0].Field != field || er.Errors[0].Code != "custom" || !strings.HasPrefix(er.Errors[0].Message, want) {
			t.Fatalf("error = %+v, want Validation Failed with one %s.%s error %q…", er, resource, field, want)
		}
	}

	t.Run("pull request title", func(t *testing.T) {
		_, _, err := gh.PullRequests.Create(ctx, owner, name, &github.NewPullRequest{
			Title: github.String(long), Head: github.String("topic"), Base: github.String("snapshot"),
		})
		wantInvalid(t, err, "Issue", "title")
	})
	t.Run("pull request body", func(t *testing.T) {
		_, _, err := gh.PullRequests.Create(ctx, owner, name, &github.NewPullRequest{
			Title: github.String("ok"), Head: github.String("topic"), Base: github.String("snapshot"), Body: github.String(longBody),
		})
		wantInvalid(t, err, "Issue", "body")
	})
	var number int
	t.Run("at the limit", func(t *testing.T) {
		pr, _, err := gh.PullRequests.Create(ctx, owner, name, &github.NewPullRequest{
			Title: github.String(okTitle), Head: github.String("topic"), Base: github.String("snapshot"),
			Body: github.String(strings.Repeat("b", MaxBodyLength)),
		})
		if err != nil {
			t.Fatalf("a title of %d characters and a body of %d: %v", MaxTitleLength, MaxBodyLength, err)
		}
		number = pr.GetNumber()
	})
	t.Run("pull request edit", func(t *testing.T) {
		_, _, err := gh.PullRequests.Edit(ctx, owner, name, number, &github.PullRequest{Title: github.String(long)})
		wantInvalid(t, err, "Issue", "title")
		if got := repo.PullRequest(number).Title; got != okTitle {
			t.Errorf("title after a refused edit = %q, want it unchanged", got)
		}
	})
	t.Run("issue edit", func(t *testing.T) {
		issue := repo.OpenIssue("t", "", "alice")
		_, _, err := gh.Issues.Edit(ctx, owner, name, issue, &github.IssueRequest{Body: github.String(longBody)})
		wantInvalid(t, err, "Issue", "body")
	})
	t.Run("comment", func(t *testing.T) {
		_, _, err := gh.Issues.CreateComment(ctx, owner, name, number, &github.IssueComment{Body: github.String(longBody)})
		wantInvalid(t, err, "IssueComment", "body")
		c, _, err := gh.Issues.CreateComment(ctx, owner, name, number, &github.IssueComment{Body: github.String("fine")})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = gh.Issues.EditComment(ctx, owner, name, c.GetID(), &github.IssueComment{Body: github.String(longBody)})
		wantInvalid(t, err, "IssueComment", "body")
	})
	t.Run("test API", func(t *testing.T) {
		if err := repo.EditPullRequestTitle(number, long); err == nil || !strings.Contains(err.Error(), "title is too long") {
			t.Errorf("EditPullRequestTitle with %d characters: err = %v, want title is too long", len(long), err)
		}
	})
}

// TestCreateTreeRefusesNullSHAForDirectory: "sha": null is documented for files only; a directory entry
// with it is an invalid tree entry (422), whether the mode says so or the base tree does.
func TestCreateTreeRefusesNullSHAForDirectory(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	owner, name := "storage-org", "package-storage"
	if _, err := repo.Commit("snapshot", "two versions", map[string]*File{
		"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\nversion: 1.0.0\n")},
		"packages/a/2.0.0/manifest.yml": {Content: []byte("name: a\nversion: 2.0.0\n")},
	}); err != nil {
		t.Fatal(err)
	}
	root, _ := repo.TreeSHA("snapshot", "")
	tests := []struct {
		name  string
		entry *github.TreeEntry
		ok    bool
	}{
		{"directory by mode", &github.TreeEntry{Path: github.String("packages/a/1.0.0"), Mode: github.String("040000"), Type: github.String("tree")}, false},
		{"directory by base tree", &github.TreeEntry{Path: github.String("packages/a/1.0.0"), Mode: github.String("100644"), Type: github.String("blob")}, false},
		{"file", &github.TreeEntry{Path: github.String("packages/a/1.0.0/manifest.yml"), Mode: github.String("100644"), Type: github.String("blob")}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree, _, err := gh.Git.CreateTree(ctx, owner, name, root, []*github.TreeEntry{tc.entry})
			if tc.ok {
				if err != nil {
					t.Fatalf("deleting a file with a null sha: %v", err)
				}
				return
			}
			var er *github.ErrorResponse
			if !errors.As(err, &er) || er.Response.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("err = %v (tree %v), want 422", err, tree.GetSHA())
			}
		})
	}
}

// TestContentsListsAtMost1000Entries: the contents API stops at 1,000 entries of a directory; the git
// trees API lists them all.
func TestContentsListsAtMost1000Entries(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	owner, name := "storage-org", "package-storage"
	files := map[string]*File{}
	for i := 0; i < 1005; i++ {
		files[fmt.Sprintf("packages/a/1.0.%d/manifest.yml", i)] = &File{Content: []byte(fmt.Sprintf("version: 1.0.%d\n", i))}
	}
	if _, err := repo.Commit("snapshot", "many versions", files); err != nil {
		t.Fatal(err)
	}
	_, dir, _, err := gh.Repositories.GetContents(ctx, owner, name, "packages/a", &github.RepositoryContentGetOptions{Ref: "snapshot"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dir) != 1000 {
		t.Errorf("contents listed %d entries, want GitHub's cap of 1000", len(dir))
	}
	sha, _ := repo.TreeSHA("snapshot", "packages/a")
	tree, _, err := gh.Git.GetTree(ctx, owner, name, sha, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Entries) != 1005 {
		t.Errorf("git tree listed %d entries, want all 1005", len(tree.Entries))
	}
}

// TestRebaseMerge: each commit is replayed onto the base, there is no merge commit, and merge_commit_sha
// is the last rebased commit, whose parent is the rebased commit before it.
func TestRebaseMerge(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	owner, name := "storage-org", "package-storage"
	if _, err := repo.Commit("snapshot", "base", map[string]*File{"README": {Content: []byte("x\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := repo.CreateBranch("topic", repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"one", "two", "three"} {
		if _, err := repo.Commit("topic", "add "+f, map[string]*File{f: {Content: []byte(f + "\n")}}); err != nil {
			t.Fatal(err)
		}
	}
	// The base moves on after the branch was cut: a rebase replays onto the new head.
	if _, err := repo.Commit("snapshot", "other", map[string]*File{"other": {Content: []byte("o\n")}}); err != nil {
		t.Fatal(err)
	}
	before := repo.BranchSHA("snapshot")
	pr, err := repo.OpenPullRequest(PROptions{Head: "topic", Base: "snapshot", Title: "t", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := gh.PullRequests.Merge(ctx, owner, name, pr.Number, "", &github.PullRequestOptions{MergeMethod: "rebase"})
	if err != nil {
		t.Fatalf("rebase merge: %v", err)
	}
	got, _, err := gh.PullRequests.Get(ctx, owner, name, pr.Number)
	if err != nil {
		t.Fatal(err)
	}
	last := got.GetMergeCommitSHA()
	if !got.GetMerged() || last != res.GetSHA() || last != repo.BranchSHA("snapshot") {
		t.Fatalf("merged=%v merge_commit_sha=%s answer sha=%s branch=%s", got.GetMerged(), last, res.GetSHA(), repo.BranchSHA("snapshot"))
	}
	messages := []string{}
	sha := last
	for sha != before {
		c, _, err := gh.Git.GetCommit(ctx, owner, name, sha)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Parents) != 1 {
			t.Fatalf("rebased commit %s has %d parents, want 1", sha, len(c.Parents))
		}
		messages = append(messages, c.GetMessage())
		sha = c.Parents[0].GetSHA()
	}
	if want := []string{"add three", "add two", "add one"}; strings.Join(messages, "|") != strings.Join(want, "|") {
		t.Errorf("rebased commits newest first = %q, want %q", messages, want)
	}
	for _, f := range []string{"one", "two", "three", "other", "README"} {
		if sha, _ := repo.TreeSHA("snapshot", f); sha == "" {
			t.Errorf("%s missing after the rebase merge", f)
		}
	}
}
