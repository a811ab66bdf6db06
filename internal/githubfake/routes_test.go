package githubfake

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestRoutesAreRealGitHubEndpoints checks every route against GitHub's endpoint list.
func TestRoutesAreRealGitHubEndpoints(t *testing.T) {
	f, err := os.Open("testdata/endpoints.txt")
	if err != nil {
		t.Fatalf("open endpoint list: %v", err)
	}
	defer f.Close()
	known := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		known[strings.TrimSpace(sc.Text())] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read endpoint list: %v", err)
	}
	s := New(Options{})
	defer s.Close()
	routes := s.Routes()
	if len(routes) < 40 {
		t.Fatalf("Routes() lists %d routes, want every served route", len(routes))
	}
	for _, rt := range routes {
		if rt == GraphQLRoute {
			continue // GitHub's one GraphQL endpoint; endpoints.txt lists the REST API
		}
		if !known[rt] {
			t.Errorf("route %q is not in endpoints.txt", rt)
		}
	}
}

func TestRouteMatching(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	tests := []struct {
		name, method, path, want string
		params                   map[string]string
	}{
		{"ref with slashes", "GET", "/repos/o/r/git/ref/heads/storagebot/promote/x",
			"GET /repos/{owner}/{repo}/git/ref/{ref:.+}", map[string]string{"owner": "o", "repo": "r", "ref": "heads/storagebot/promote/x"}},
		{"check runs beat commit", "GET", "/repos/o/r/commits/abc/check-runs",
			"GET /repos/{owner}/{repo}/commits/{ref}/check-runs", map[string]string{"owner": "o", "repo": "r", "ref": "abc"}},
		{"commit", "GET", "/repos/o/r/commits/abc",
			"GET /repos/{owner}/{repo}/commits/{ref:.+}", map[string]string{"owner": "o", "repo": "r", "ref": "abc"}},
		{"escaped content path", "GET", "/repos/o/r/contents/packages/a%20b/manifest.yml",
			"GET /repos/{owner}/{repo}/contents/{path:.*}", map[string]string{"owner": "o", "repo": "r", "path": "packages/a b/manifest.yml"}},
		{"unknown", "GET", "/repos/o/r/releases", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, params := match(s.routes, tc.method, tc.path)
			got := ""
			if rt != nil {
				got = rt.pattern
			}
			if got != tc.want {
				t.Fatalf("route = %q, want %q", got, tc.want)
			}
			if rt != nil {
				for k, v := range tc.params {
					if params[k] != v {
						t.Errorf("param %s = %q, want %q", k, params[k], v)
					}
				}
			}
		})
	}
}
