package storage

import (
	"strings"
	"testing"
)

// FuzzParsePath checks the path classifier on arbitrary paths: a path is a package version's (ok) exactly
// when it rebuilds from its parts, and the parts never hold a separator where they must not.
func FuzzParsePath(f *testing.F) {
	for _, p := range []string{
		"packages/nginx/1.2.3/manifest.yml", "packages/nginx/1.2.3", "packages/nginx", "packages", "packages/",
		"Dockerfile", "docs/packages/nginx/1.2.3", "packages//1.2.3/x", "packages/nginx//x", "packages/a/b/",
		"packages/a/b/c/d/", "packages/\xff/1.0.0/\x00", "packages/a/../b",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		pkg, version, rest, ok := ParsePath(p)
		if !ok {
			if pkg != "" || version != "" || rest != "" {
				t.Fatalf("ParsePath(%q) = (%q, %q, %q, false); want empty parts when not ok", p, pkg, version, rest)
			}
			// Not a version path: it is outside packages/, or it lacks a non-empty package or version segment.
			if after, found := strings.CutPrefix(p, PackagesDir+"/"); found {
				parts := strings.SplitN(after, "/", 3)
				if len(parts) >= 2 && parts[0] != "" && parts[1] != "" {
					t.Fatalf("ParsePath(%q) refused a path with package %q and version %q", p, parts[0], parts[1])
				}
			}
			return
		}
		if pkg == "" || version == "" || strings.Contains(pkg, "/") || strings.Contains(version, "/") {
			t.Fatalf("ParsePath(%q) = package %q, version %q: want non-empty segments without /", p, pkg, version)
		}
		rebuilt := VersionPath(pkg, version)
		if rest != "" || strings.HasSuffix(p, "/") && strings.Count(p, "/") == 3 {
			rebuilt += "/" + rest
		}
		if rebuilt != p {
			t.Fatalf("ParsePath(%q) = (%q, %q, %q), which rebuilds to %q", p, pkg, version, rest, rebuilt)
		}
	})
}
