package githubfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-github/v50/github"
)

// TestEditPermissions holds the fake to GitHub's rule: a comment or PR body may be edited by its author or by
// anyone with write access or more, the bot's included; others get a 403. Each edit emits an "edited" event
// whose sender is the editor and whose changes hold the previous body.
func TestEditPermissions(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	repo.SetPermission("alice", "write")
	repo.SetPermission("rita", "read")
	repo.SetPermission("tom", "triage")
	gh := newClient(t, s, s.PrivateKeyPEM())
	if _, err := repo.Commit("add-a", "Add a", map[string]*File{"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\n")}}); err != nil {
		t.Fatal(err)
	}
	pr, err := repo.OpenPullRequest(PROptions{Head: "add-a", Base: "snapshot", Title: "Add a", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	// The bot writes a comment and opens a PR of its own through the API.
	botComment, _, err := gh.Issues.CreateComment(ctx, "storage-org", "package-storage", pr.Number, &github.IssueComment{Body: github.String("bot state")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("storagebot/remove/x", "bot", map[string]*File{"packages/b/1.0.0/manifest.yml": {Content: []byte("name: b\n")}}); err != nil {
		t.Fatal(err)
	}
	botPR, _, err := gh.PullRequests.Create(ctx, "storage-org", "package-storage", &github.NewPullRequest{
		Title: github.String("[snapshot] bot"), Head: github.String("storagebot/remove/x"), Base: github.String("snapshot"), Body: github.String("bot body"),
	})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		edit    func() error
		allowed bool
	}{
		{name: "writer edits the bot's comment", edit: func() error { return repo.EditComment(botComment.GetID(), "alice", "forged") }, allowed: true},
		{name: "reader may not edit the bot's comment", edit: func() error { return repo.EditComment(botComment.GetID(), "rita", "forged") }},
		{name: "triager may not edit the bot's comment", edit: func() error { return repo.EditComment(botComment.GetID(), "tom", "forged") }},
		{name: "stranger may not edit the bot's comment", edit: func() error { return repo.EditComment(botComment.GetID(), "eve", "forged") }},
		{name: "writer edits the bot's PR body", edit: func() error { return repo.EditPullRequestBody(botPR.GetNumber(), "alice", "forged body") }, allowed: true},
		{name: "reader may not edit the bot's PR body", edit: func() error { return repo.EditPullRequestBody(botPR.GetNumber(), "rita", "forged body") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Deliveries())
			err := tc.edit()
			var apiErr *apiError
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("edit refused: %v", err)
			case !tc.allowed && (!errors.As(err, &apiErr) || apiErr.status != http.StatusForbidden):
				t.Fatalf("edit = %v, want a 403", err)
			case !tc.allowed:
				if n := len(s.Deliveries()) - before; n != 0 {
					t.Errorf("a refused edit emitted %d events", n)
				}
			}
		})
	}

	var sawComment, sawPR bool
	for _, d := range s.Deliveries() {
		var p struct {
			Action  string                 `json:"action"`
			Sender  struct{ Login string } `json:"sender"`
			Changes struct {
				Body struct{ From string } `json:"body"`
			} `json:"changes"`
			Comment struct {
				User struct{ Login string } `json:"user"`
				Body string                 `json:"body"`
			} `json:"comment"`
			PullRequest struct {
				User struct{ Login string } `json:"user"`
				Body string                 `json:"body"`
			} `json:"pull_request"`
		}
		if err := json.Unmarshal(d.Body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Action != "edited" {
			continue
		}
		switch d.Event {
		case "issue_comment":
			sawComment = true
			if p.Sender.Login != "alice" || p.Comment.User.Login != appSlug+"[bot]" || p.Changes.Body.From != "bot state" || p.Comment.Body != "forged" {
				t.Errorf("issue_comment.edited: sender %q, author %q, changes.body.from %q, body %q", p.Sender.Login, p.Comment.User.Login, p.Changes.Body.From, p.Comment.Body)
			}
		case "pull_request":
			sawPR = true
			if p.Sender.Login != "alice" || p.PullRequest.User.Login != appSlug+"[bot]" || p.Changes.Body.From != "bot body" || p.PullRequest.Body != "forged body" {
				t.Errorf("pull_request.edited: sender %q, author %q, changes.body.from %q, body %q", p.Sender.Login, p.PullRequest.User.Login, p.Changes.Body.From, p.PullRequest.Body)
			}
		}
	}
	if !sawComment || !sawPR {
		t.Errorf("edited events: comment %v, pull request %v; want both", sawComment, sawPR)
	}
}
