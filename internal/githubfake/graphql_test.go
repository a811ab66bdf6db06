package githubfake

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// postGraphQL sends query with the installation client and decodes the answer; it returns the HTTP status.
func postGraphQL(t *testing.T, s *Server, query string) (int, map[string]any, http.Header) {
	t.Helper()
	gh := newClient(t, s, s.PrivateKeyPEM())
	req, err := gh.NewRequest(http.MethodPost, "graphql", map[string]string{"query": query})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	resp, err := gh.Do(context.Background(), req, &buf)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("decode answer %q: %v", buf.String(), err)
	}
	return resp.StatusCode, out, resp.Header
}

// graphqlRepo commits a small storage and returns the fake, the repository and the commit.
func graphqlRepo(t *testing.T) (*Server, *Repo, string) {
	t.Helper()
	s, repo := newFake(t)
	head, err := repo.Commit("snapshot", "storage", map[string]*File{
		"packages/a/1.0.0/manifest.yml":      {Content: []byte("name: a\nversion: 1.0.0\n")},
		"packages/a/1.0.0/docs/README.md":    {Content: []byte("# a\n")},
		"packages/a/1.0.0/img/logo.png":      {Content: []byte{0x89, 'P', 'N', 'G', 0, 1, 2}},
		"packages/a/1.0.0/bin/run.sh":        {Content: []byte("#!/bin/sh\n"), Mode: "100755"},
		"packages/b/2.0.0/manifest.yml":      {Content: []byte("name: b\nversion: 2.0.0\n")},
		"Dockerfile":                         {Content: []byte("ARG PACKAGE_REGISTRY=v1.0.0\n")},
		"packages/a/1.0.0/docs/deep/x/y.txt": {Content: []byte("deep\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, repo, head
}

// TestGraphQLAnswersTreesFromGitObjects checks the query shape the bot sends: aliases, object(oid:) and
// object(expression:), inline fragments on Commit, Tree and Blob, and named fragments nesting entries, against
// the same trees read through REST.
func TestGraphQLAnswersTreesFromGitObjects(t *testing.T) {
	s, repo, head := graphqlRepo(t)
	rest := newClient(t, s, s.PrivateKeyPEM())
	commit, _, err := rest.Git.GetCommit(context.Background(), "storage-org", "package-storage", head)
	if err != nil {
		t.Fatal(err)
	}
	root := commit.GetTree().GetSHA()
	query := `query {
  repository(owner: "storage-org", name: "package-storage") {
    c: object(oid: "` + head + `") { ... on Commit { oid tree { ...L1 } } }
    r: object(oid: "` + root + `") { ... on Tree { ...L1 } }
    m: object(expression: "` + head + `:packages/a/1.0.0/manifest.yml") { ... on Blob { oid text byteSize isTruncated } }
    png: object(expression: "snapshot:packages/a/1.0.0/img/logo.png") { ... on Blob { text byteSize isBinary } }
  }
}
fragment L0 on Tree { oid entries { name type mode oid } }
fragment L1 on Tree { oid entries { name type mode oid object { ...L0 } } }
`
	status, out, hdr := postGraphQL(t, s, query)
	if status != http.StatusOK || out["errors"] != nil {
		t.Fatalf("status %d, errors %v", status, out["errors"])
	}
	if got := hdr.Get("X-RateLimit-Resource"); got != "graphql" {
		t.Errorf("X-RateLimit-Resource = %q, want graphql (its own budget of points)", got)
	}
	data := out["data"].(map[string]any)["repository"].(map[string]any)
	c := data["c"].(map[string]any)
	if c["oid"] != head || c["tree"].(map[string]any)["oid"] != root {
		t.Errorf("commit answer %v; want oid %s with tree %s", c, head, root)
	}
	if diff := cmp.Diff(data["r"], c["tree"]); diff != "" {
		t.Errorf("the root tree by oid and through the commit differ (-oid +commit):\n%s", diff)
	}
	// The root's entries match REST's listing, modes as GitHub's Int (0o100644 = 33188).
	restRoot, _, err := rest.Git.GetTree(context.Background(), "storage-org", "package-storage", root, false)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, e := range restRoot.Entries {
		want = append(want, e.GetPath()+" "+e.GetType()+" "+e.GetMode()+" "+e.GetSHA())
	}
	for _, e := range data["r"].(map[string]any)["entries"].([]any) {
		m := e.(map[string]any)
		mode := int(m["mode"].(float64))
		got = append(got, m["name"].(string)+" "+m["type"].(string)+" "+octal(mode)+" "+m["oid"].(string))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("root entries (-REST +GraphQL):\n%s", diff)
	}
	// One level below the root is listed (packages/), and no further: L0 asks for no object.
	for _, e := range data["r"].(map[string]any)["entries"].([]any) {
		m := e.(map[string]any)
		if m["name"] != "packages" {
			continue
		}
		pk := m["object"].(map[string]any)["entries"].([]any)
		if len(pk) != 2 || pk[0].(map[string]any)["name"] != "a" || pk[0].(map[string]any)["object"] != nil {
			t.Errorf("packages/ entries = %v; want a and b, unexpanded", pk)
		}
	}
	manifest := data["m"].(map[string]any)
	if manifest["text"] != "name: a\nversion: 1.0.0\n" || manifest["byteSize"] != float64(23) || manifest["isTruncated"] != false {
		t.Errorf("manifest answer %v", manifest)
	}
	if png := data["png"].(map[string]any); png["text"] != nil || png["isBinary"] != true || png["byteSize"] != float64(7) {
		t.Errorf("binary blob answer %v; want text null, isBinary true, byteSize 7", png)
	}
	if n := s.Calls(GraphQLRoute); n != 1 {
		t.Errorf("Calls(%q) = %d, want 1", GraphQLRoute, n)
	}
	if s.GraphQLPoints() != 1 {
		t.Errorf("GraphQLPoints = %d, want 1", s.GraphQLPoints())
	}
	_ = repo
}

func octal(mode int) string {
	const digits = "01234567"
	out := []byte("000000")
	for i := 5; i >= 0; i-- {
		out[i] = digits[mode%8]
		mode /= 8
	}
	return string(out)
}

// TestGraphQLErrors checks the fake refuses what GitHub refuses, in GitHub's error shapes.
func TestGraphQLErrors(t *testing.T) {
	s, _, head := graphqlRepo(t)
	repoSel := func(body string) string {
		return `query { repository(owner: "storage-org", name: "package-storage") { ` + body + ` } }`
	}
	tests := []struct {
		name      string
		query     string
		nodeLimit int
		wantData  bool   // data present (execution errors) or absent (validation errors)
		wantType  string // errors[0].type
		wantMsg   string // in errors[0].message
		wantNull  string // alias answered null
	}{
		{name: "unknown field", query: repoSel(`o: object(oid: "` + head + `") { ... on Commit { message } }`), wantMsg: "Field 'message' doesn't exist on type 'Commit'"},
		{name: "unknown root field", query: `query { viewer { login } }`, wantMsg: "Field 'viewer' doesn't exist on type 'Query'"},
		{name: "missing object", query: repoSel(`o: object(expression: "` + head + `:packages/zzz") { ... on Tree { oid } }`), wantData: true, wantType: "NOT_FOUND", wantMsg: "Could not resolve to a GitObject", wantNull: "o"},
		{name: "missing repository", query: `query { repository(owner: "storage-org", name: "nope") { o: object(oid: "` + head + `") { ... on Commit { oid } } } }`, wantData: true, wantType: "NOT_FOUND", wantMsg: "Could not resolve to a Repository"},
		{name: "unused fragment", query: repoSel(`o: object(oid: "`+head+`") { oid }`) + ` fragment X on Tree { oid }`, wantMsg: "Fragment X was defined, but not used"},
		{name: "undefined fragment", query: repoSel(`o: object(oid: "` + head + `") { ...Y }`), wantMsg: "Fragment Y was used, but not defined"},
		{name: "variables", query: `query($o: String!) { repository(owner: $o, name: "x") { id } }`, wantMsg: "Variables are not supported"},
		{name: "parse error", query: repoSel(`o: object(oid: "` + head + `") { oid `), wantMsg: "Parse error"},
		{name: "mutation", query: `mutation { addStar(input: {}) { clientMutationId } }`, wantMsg: "queries only"},
		{name: "node limit", nodeLimit: 2, query: repoSel(`o: object(expression: "` + head + `:") { ... on Tree { entries { name oid } } }`), wantData: true, wantType: "RESOURCE_LIMITS_EXCEEDED", wantMsg: "more than 2 nodes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.SetGraphQLLimits(tc.nodeLimit, 0)
			defer s.SetGraphQLLimits(0, 0)
			status, out, _ := postGraphQL(t, s, tc.query)
			if status != http.StatusOK {
				t.Errorf("status %d, want 200 (GraphQL errors come in the body)", status)
			}
			errs, _ := out["errors"].([]any)
			if len(errs) == 0 {
				t.Fatalf("answer %v has no errors", out)
			}
			first := errs[0].(map[string]any)
			if msg, _ := first["message"].(string); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.wantMsg)
			}
			if typ, _ := first["type"].(string); typ != tc.wantType {
				t.Errorf("type %q, want %q", typ, tc.wantType)
			}
			_, hasData := out["data"]
			if hasData != tc.wantData {
				t.Errorf("data present = %v, want %v (answer %v)", hasData, tc.wantData, out)
			}
			if tc.wantNull != "" {
				repo := out["data"].(map[string]any)["repository"].(map[string]any)
				if v, ok := repo[tc.wantNull]; !ok || v != nil {
					t.Errorf("%s = %v, want null", tc.wantNull, v)
				}
				if path, _ := first["path"].([]any); len(path) != 2 || path[1] != tc.wantNull {
					t.Errorf("path %v, want [repository %s]", first["path"], tc.wantNull)
				}
			}
		})
	}
}

// TestGraphQLNeedsInstallationToken checks GraphQL is refused without an installation token, like REST.
func TestGraphQLNeedsInstallationToken(t *testing.T) {
	s, _ := newFake(t)
	resp, err := http.Post(s.URL()+"graphql", "application/json", strings.NewReader(`{"query":"query { repository(owner: \"storage-org\", name: \"package-storage\") { nameWithOwner } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d without a token, want 401", resp.StatusCode)
	}
	if n := s.Calls(GraphQLRoute); n != 1 {
		t.Errorf("Calls(%q) = %d, want the refused call counted", GraphQLRoute, n)
	}
}
