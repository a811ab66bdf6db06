package storage

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePath(t *testing.T) {
	type parsed struct {
		Pkg, Version, Rest string
		OK                 bool
	}
	tests := []struct {
		name string
		path string
		want parsed
	}{
		{name: "file in version", path: "packages/nginx/1.2.3/manifest.yml", want: parsed{"nginx", "1.2.3", "manifest.yml", true}},
		{name: "nested file", path: "packages/nginx/1.2.3/data_stream/access/fields/base.yml", want: parsed{"nginx", "1.2.3", "data_stream/access/fields/base.yml", true}},
		{name: "version directory", path: "packages/nginx/1.2.3", want: parsed{"nginx", "1.2.3", "", true}},
		{name: "package directory", path: "packages/nginx", want: parsed{}},
		{name: "packages directory", path: "packages", want: parsed{}},
		{name: "root file", path: "Dockerfile", want: parsed{}},
		{name: "other tree", path: "docs/packages/nginx/1.2.3", want: parsed{}},
		{name: "empty package", path: "packages//1.2.3/x", want: parsed{}},
		{name: "empty version", path: "packages/nginx//x", want: parsed{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got parsed
			got.Pkg, got.Version, got.Rest, got.OK = ParsePath(tc.path)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParsePath(%q) (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}
