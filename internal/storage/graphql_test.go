package storage

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/storagegen"
)

// TestGatherGraphQL checks that the batch reads gather exactly what the REST reads gather, in three GraphQL
// calls and no REST tree or blob read, and that whatever the batches cannot answer is read through REST: a
// refused query, the node limit, a tree deeper than one query lists, a manifest too big for Blob.text.
func TestGatherGraphQL(t *testing.T) {
	tests := []struct {
		name string
		// setup changes the fake before the evaluation.
		setup        func(t *testing.T, s *githubfake.Server, repo *githubfake.Repo)
		wantGraphQL  int  // GraphQL calls; -1: more than the three batches (split for the node limit); 0: any
		wantRESTGit  bool // some tree or blob read through REST
		wantBatchErr bool // the batches failed and the evaluation fell back to REST
	}{
		{name: "batched", wantGraphQL: 3},
		{name: "query refused", wantGraphQL: 1, wantRESTGit: true, wantBatchErr: true,
			setup: func(t *testing.T, s *githubfake.Server, _ *githubfake.Repo) {
				s.InjectFault(githubfake.Fault{Route: githubfake.GraphQLRoute, Status: 502})
			}},
		{name: "node limit: batches split", wantGraphQL: -1,
			setup: func(t *testing.T, s *githubfake.Server, _ *githubfake.Repo) { s.SetGraphQLLimits(30, 0) }},
		{name: "node limit: one object too big", wantGraphQL: 0, wantRESTGit: true, wantBatchErr: true,
			setup: func(t *testing.T, s *githubfake.Server, _ *githubfake.Repo) { s.SetGraphQLLimits(5, 0) }},
		{name: "tree deeper than a query lists", wantGraphQL: 3, wantRESTGit: true,
			setup: func(t *testing.T, s *githubfake.Server, repo *githubfake.Repo) {
				deep := "packages/pkga/2.0.0/" + strings.Repeat("d/", maxBatchDepth+1) + "f.txt"
				if _, err := repo.Commit("pr", "deep", map[string]*githubfake.File{deep: {Content: []byte("deep\n")}}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "manifest past Blob.text", wantGraphQL: 3, wantRESTGit: true,
			setup: func(t *testing.T, s *githubfake.Server, _ *githubfake.Repo) { s.SetGraphQLLimits(0, 10) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, repo, client := fakeStorage(t)
			if tc.setup != nil {
				tc.setup(t, s, repo)
			}
			req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot",
				Head: repo.BranchSHA("pr"), Others: map[string]string{"staging": "staging", "production": "production"}}
			rest, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", restCache()), req)
			if err != nil {
				t.Fatal(err)
			}
			s.ResetCalls()
			got, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", nil), req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(view(rest.Input), view(got.Input), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("gathered input (-REST +GraphQL):\n%s", diff)
			}
			if diff := cmp.Diff(rest.Input.Registry, got.Input.Registry); diff != "" {
				t.Errorf("registry files (-REST +GraphQL):\n%s", diff)
			}
			if got.Head != rest.Head || got.MergeBase != rest.MergeBase || got.Base != rest.Base {
				t.Errorf("commits %s %s %s, want %s %s %s", got.Base, got.Head, got.MergeBase, rest.Base, rest.Head, rest.MergeBase)
			}
			if n := s.Calls(githubfake.GraphQLRoute); tc.wantGraphQL > 0 && n != tc.wantGraphQL || tc.wantGraphQL < 0 && n <= 3 {
				t.Errorf("%d GraphQL calls, want %d (-1: more than 3, the batches split)", n, tc.wantGraphQL)
			}
			restGit := s.Calls(routeTree) + s.Calls(routeBlob) + s.Calls(routeGitCommit)
			if (restGit > 0) != tc.wantRESTGit {
				t.Errorf("%d REST tree, blob and commit reads; want some: %v", restGit, tc.wantRESTGit)
			}
			if (got.BatchErr != nil) != tc.wantBatchErr {
				t.Errorf("BatchErr = %v, want an error: %v", got.BatchErr, tc.wantBatchErr)
			}
			if got.BatchErr != nil && !errors.Is(got.BatchErr, ErrGraphQL) {
				t.Errorf("BatchErr = %v, want ErrGraphQL in its chain", got.BatchErr)
			}
			t.Logf("%d GraphQL calls, %d REST git reads", s.Calls(githubfake.GraphQLRoute), restGit)
		})
	}
}

// TestGatherGraphQLRegistryFiles checks the batch reads the head's Dockerfile and go.mod when a PR touches them.
func TestGatherGraphQLRegistryFiles(t *testing.T) {
	s, repo, client := fakeStorage(t)
	if _, err := repo.Commit("pr", "registry", map[string]*githubfake.File{
		"Dockerfile": {Content: []byte(storagegen.Dockerfile("v1.16.0"))},
		"go.mod":     {Content: []byte(storagegen.GoMod("v1.16.0"))},
	}); err != nil {
		t.Fatal(err)
	}
	req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot",
		Head: repo.BranchSHA("pr"), Others: map[string]string{"staging": "staging", "production": "production"}}
	s.ResetCalls()
	got, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", nil), req)
	if err != nil {
		t.Fatal(err)
	}
	rf := got.Input.Registry
	if !rf.Touched || !strings.Contains(string(rf.Dockerfile), "v1.16.0") || !strings.Contains(string(rf.GoMod), "v1.16.0") {
		t.Errorf("registry files = touched %v, Dockerfile %q, go.mod %q; want both at v1.16.0", rf.Touched, rf.Dockerfile, rf.GoMod)
	}
	if n := s.Calls(routeBlob) + s.Calls(routeTree); n != 0 {
		t.Errorf("%d REST tree and blob reads, want none", n)
	}
}

// TestGatherGraphQLBranchHead checks a head named by branch (resolved through REST) is batched as well.
func TestGatherGraphQLBranchHead(t *testing.T) {
	s, _, client := fakeStorage(t)
	req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot",
		Head: "pr", Others: map[string]string{"staging": "staging", "production": "production"}}
	res, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", nil), req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Input.Changes); n != 2 {
		t.Errorf("%d changes, want 2", n)
	}
	if n, rest := s.Calls(githubfake.GraphQLRoute), s.Calls(routeTree)+s.Calls(routeBlob); n != 3 || rest != 0 {
		t.Errorf("%d GraphQL calls and %d REST tree and blob reads, want 3 and 0", n, rest)
	}
}

// TestGatherGraphQLOff checks that with GraphQL switched off no query is sent.
func TestGatherGraphQLOff(t *testing.T) {
	s, repo, client := fakeStorage(t)
	req := Request{Channel: "snapshot", Channels: storagegen.Channels, Branch: "snapshot", Base: "snapshot",
		Head: repo.BranchSHA("pr"), Others: map[string]string{"staging": "staging", "production": "production"}}
	if _, err := Gather(context.Background(), NewGitHubReader(client, "storage-org", "package-storage", restCache()), req); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls(githubfake.GraphQLRoute); n != 0 {
		t.Errorf("%d GraphQL calls with GraphQL off, want 0", n)
	}
}
