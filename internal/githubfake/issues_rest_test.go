package githubfake

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v50/github"
)

// TestCreateIssueLimits: creating an issue needs a title, and titles over 256 characters or bodies over
// 65,536 are refused with 422 as on GitHub; nothing is created then.
func TestCreateIssueLimits(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	owner, name := "storage-org", "package-storage"
	tests := []struct {
		name  string
		req   github.IssueRequest
		field string
	}{
		{"no title", github.IssueRequest{Body: github.String("b")}, ""},
		{"title too long", github.IssueRequest{Title: github.String(strings.Repeat("t", MaxTitleLength+1))}, "title"},
		{"body too long", github.IssueRequest{Title: github.String("t"), Body: github.String(strings.Repeat("b", MaxBodyLength+1))}, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := gh.Issues.Create(ctx, owner, name, &tc.req)
			var er *github.ErrorResponse
			if !errors.As(err, &er) || er.Response.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("err = %v, want 422", err)
			}
			if tc.field != "" && (len(er.Errors) != 1 || er.Errors[0].Field != tc.field) {
				t.Errorf("errors = %+v, want one on %s", er.Errors, tc.field)
			}
		})
	}
	if n := len(repo.Issues()); n != 0 {
		t.Errorf("%d issues created by refused requests", n)
	}
	// At the limits exactly, it is created (characters, not bytes).
	is, _, err := gh.Issues.Create(ctx, owner, name, &github.IssueRequest{
		Title: github.String(strings.Repeat("é", MaxTitleLength)), Body: github.String(strings.Repeat("é", MaxBodyLength)),
	})
	if err != nil || is.GetUser().GetLogin() != appSlug+"[bot]" {
		t.Fatalf("issue at the limits: %v, by %s", err, is.GetUser().GetLogin())
	}
	if _, _, err := gh.Issues.Edit(ctx, owner, name, is.GetNumber(), &github.IssueRequest{Body: github.String(strings.Repeat("b", MaxBodyLength+1))}); err == nil {
		t.Error("an edit past the body limit was accepted")
	}
}

// TestListIssues: the listing holds issues and PRs, filtered by state, every label named, and creator.
func TestListIssues(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	owner, name := "storage-org", "package-storage"
	mine, _, err := gh.Issues.Create(ctx, owner, name, &github.IssueRequest{Title: github.String("mine"), Labels: &[]string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	theirs := repo.OpenIssue("theirs", "", "someone")
	closed, _, err := gh.Issues.Create(ctx, owner, name, &github.IssueRequest{Title: github.String("closed"), Labels: &[]string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := gh.Issues.Edit(ctx, owner, name, closed.GetNumber(), &github.IssueRequest{State: github.String("closed")}); err != nil {
		t.Fatal(err)
	}
	numbers := func(opts *github.IssueListByRepoOptions) []int {
		t.Helper()
		list, _, err := gh.Issues.ListByRepo(ctx, owner, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, is := range list {
			out = append(out, is.GetNumber())
		}
		return out
	}
	tests := []struct {
		name string
		opts github.IssueListByRepoOptions
		want []int
	}{
		{"open by default, newest first", github.IssueListByRepoOptions{}, []int{theirs, mine.GetNumber()}},
		{"all, oldest first", github.IssueListByRepoOptions{State: "all", Direction: "asc"}, []int{mine.GetNumber(), theirs, closed.GetNumber()}},
		{"every label named", github.IssueListByRepoOptions{State: "all", Labels: []string{"a", "B"}}, []int{mine.GetNumber()}},
		{"creator", github.IssueListByRepoOptions{Creator: "someone"}, []int{theirs}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := numbers(&tc.opts)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
