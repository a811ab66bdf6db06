package githubfake

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v50/github"
)

// TestRefsMatchAsGitHubDoes: GET git/ref finds one exact branch or tag; GET git/matching-refs lists every
// branch and tag whose name starts with the given string, across slashes and inside a segment, as GitHub's
// "List matching references" does, and an empty list rather than 404 when none does.
func TestRefsMatchAsGitHubDoes(t *testing.T) {
	s, repo := newFake(t)
	head := repo.BranchSHA("snapshot")
	for _, b := range []string{"storagebot/promote/staging/a", "storagebot/remove/snapshot/pr-7", "stage"} {
		if err := repo.CreateBranch(b, head); err != nil {
			t.Fatal(err)
		}
	}
	if err := repo.PushTag("8.12.0", head, "alice"); err != nil {
		t.Fatal(err)
	}
	gh := newClient(t, s, s.PrivateKeyPEM())
	ctx := context.Background()

	tests := []struct {
		prefix string
		want   []string
	}{
		{"heads/storagebot/", []string{"refs/heads/storagebot/promote/staging/a", "refs/heads/storagebot/remove/snapshot/pr-7"}},
		{"heads/storagebot/promote", []string{"refs/heads/storagebot/promote/staging/a"}},
		{"heads/sta", []string{"refs/heads/stage"}},
		{"heads", []string{"refs/heads/snapshot", "refs/heads/stage", "refs/heads/storagebot/promote/staging/a", "refs/heads/storagebot/remove/snapshot/pr-7"}},
		{"tags/8.", []string{"refs/tags/8.12.0"}},
		{"heads/nothing", nil},
	}
	for _, tc := range tests {
		refs, _, err := gh.Git.ListMatchingRefs(ctx, "storage-org", "package-storage", &github.ReferenceListOptions{Ref: tc.prefix})
		if err != nil {
			t.Errorf("matching-refs/%s: %v", tc.prefix, err)
			continue
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.GetRef())
			if r.GetObject().GetSHA() != head {
				t.Errorf("%s points at %s, want %s", r.GetRef(), r.GetObject().GetSHA(), head)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("matching-refs/%s = %v, want %v", tc.prefix, got, tc.want)
		}
	}

	for ref, want := range map[string]int{"heads/storagebot/promote/staging/a": 200, "tags/8.12.0": 200, "heads/storagebot": 404, "tags/8.12": 404} {
		_, _, err := gh.Git.GetRef(ctx, "storage-org", "package-storage", ref)
		var resp *github.ErrorResponse
		switch {
		case want == http.StatusOK && err != nil:
			t.Errorf("ref/%s: %v, want it found", ref, err)
		case want == http.StatusNotFound && (!errors.As(err, &resp) || resp.Response.StatusCode != http.StatusNotFound):
			t.Errorf("ref/%s: %v, want 404 (only an exact name is found)", ref, err)
		}
	}
}
