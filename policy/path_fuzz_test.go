package policy

import (
	"strings"
	"testing"
)

// FuzzDevPrefix checks the dev-files classifier: a path is a development file exactly when a segment below
// packages/ starts with "_", and the prefix reported ends at the first such segment.
func FuzzDevPrefix(f *testing.F) {
	for _, p := range []string{
		"packages/nginx/1.2.3/_dev/build/build.yml", "packages/nginx/1.2.3/manifest.yml", "packages/_x",
		"_dev/packages/a", "packages/a/1.0.0/docs/_b/_c", "packages/", "packages//_", "packages/a/1.0.0/x_y",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		prefix, ok := devPrefix(p)
		rest, under := strings.CutPrefix(p, "packages/")
		var firstDev = -1
		segs := strings.Split(rest, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, "_") {
				firstDev = i
				break
			}
		}
		if !under || firstDev < 0 {
			if ok || prefix != "" {
				t.Fatalf("devPrefix(%q) = %q, true; the path has no segment below packages/ starting with _", p, prefix)
			}
			return
		}
		if want := "packages/" + strings.Join(segs[:firstDev+1], "/"); !ok || prefix != want {
			t.Fatalf("devPrefix(%q) = %q, %v; want %q, true", p, prefix, ok, want)
		}
		if !strings.HasPrefix(p, prefix) {
			t.Fatalf("devPrefix(%q) = %q, which is not a prefix of the path", p, prefix)
		}
	})
}

// FuzzRegistryVersions feeds the Dockerfile and go.mod readers of the registry-version rule arbitrary files:
// they never panic, report a version only with ok, and a version never holds white space (it came from one
// field) or a build-argument reference.
func FuzzRegistryVersions(f *testing.F) {
	f.Add([]byte("ARG PACKAGE_REGISTRY=v1.2.3\nFROM docker.elastic.co/package-registry/package-registry:${PACKAGE_REGISTRY}\n"),
		[]byte("module x\n\nrequire github.com/elastic/package-registry v1.2.3\n"))
	f.Add([]byte("FROM --platform=linux/amd64 docker.elastic.co/package-registry/package-registry:v1.9.0@sha256:abc\n"),
		[]byte("require (\n\t\"github.com/elastic/package-registry\" v1.9.0 // indirect\n)\n"))
	f.Add([]byte("from x/package-registry:$TAG\nARG PACKAGE_REGISTRY=\"\"\n"), []byte("require(\ngithub.com/elastic/package-registry\n)"))
	f.Add([]byte("FROM :\n"), []byte(")\nrequire"))
	f.Fuzz(func(t *testing.T, dockerfile, gomod []byte) {
		if v, ok := DockerfileRegistryVersion(dockerfile); ok != (v != "") || strings.ContainsAny(v, " \t\n\r") || strings.Contains(v, "$") && !strings.Contains(string(dockerfile), "ARG") {
			t.Fatalf("DockerfileRegistryVersion(%q) = %q, %v", dockerfile, v, ok)
		}
		if v, ok := GoModRegistryVersion(gomod); ok != (v != "") || strings.ContainsAny(v, " \t\n\r") {
			t.Fatalf("GoModRegistryVersion(%q) = %q, %v", gomod, v, ok)
		}
	})
}
