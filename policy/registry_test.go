package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDockerfileRegistryVersion(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		want       string
		wantOK     bool
	}{
		{
			name:       "ARG wins over FROM tag",
			dockerfile: "ARG PACKAGE_REGISTRY=v1.15.0\nFROM docker.elastic.co/package-registry/package-registry:${PACKAGE_REGISTRY}\n",
			want:       "v1.15.0", wantOK: true,
		},
		{
			name:       "ARG declared after FROM",
			dockerfile: "FROM docker.elastic.co/package-registry/package-registry:v1.0.0\nARG PACKAGE_REGISTRY=v1.2.0\n",
			want:       "v1.2.0", wantOK: true,
		},
		{
			name:       "FROM tag",
			dockerfile: "# build the distribution\nFROM docker.elastic.co/package-registry/package-registry:v1.9.1\nCOPY packages /packages\n",
			want:       "v1.9.1", wantOK: true,
		},
		{
			name:       "FROM with platform flag, digest and stage name",
			dockerfile: "from --platform=linux/amd64 docker.elastic.co/package-registry/package-registry:v1.9.2@sha256:abcd AS base\n",
			want:       "v1.9.2", wantOK: true,
		},
		{
			name:       "quoted ARG",
			dockerfile: "ARG PACKAGE_REGISTRY=\"v2.0.0\"\n",
			want:       "v2.0.0", wantOK: true,
		},
		{
			name:       "FROM tag from another argument",
			dockerfile: "ARG VERSION=v1\nFROM docker.elastic.co/package-registry/package-registry:${VERSION}\n",
		},
		{name: "other image", dockerfile: "FROM alpine:3.19\n"},
		{name: "untagged registry image", dockerfile: "FROM docker.elastic.co/package-registry/package-registry\n"},
		{name: "ARG without value", dockerfile: "ARG PACKAGE_REGISTRY\nFROM alpine:3\n"},
		{name: "absent", dockerfile: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := DockerfileRegistryVersion([]byte(tc.dockerfile))
			if diff := cmp.Diff([2]any{tc.want, tc.wantOK}, [2]any{got, ok}); diff != "" {
				t.Errorf("DockerfileRegistryVersion mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGoModRegistryVersion(t *testing.T) {
	tests := []struct {
		name   string
		gomod  string
		want   string
		wantOK bool
	}{
		{
			name:  "single line",
			gomod: "module github.com/elastic/package-storage\n\ngo 1.17\n\nrequire github.com/elastic/package-registry v1.15.0\n",
			want:  "v1.15.0", wantOK: true,
		},
		{
			name: "block form with comments",
			gomod: "module x\n\nrequire (\n\tgithub.com/magefile/mage v1.11.0\n" +
				"\tgithub.com/elastic/package-registry v1.16.3 // indirect\n)\n",
			want: "v1.16.3", wantOK: true,
		},
		{
			name:  "similar module name is not it",
			gomod: "module x\nrequire github.com/elastic/package-registry-tools v1.0.0\n",
		},
		{
			name:  "replace directive is not a require",
			gomod: "module x\nreplace github.com/elastic/package-registry v1.0.0 => ../registry\n",
		},
		{
			name:  "commented out require",
			gomod: "module x\n// require github.com/elastic/package-registry v1.0.0\n",
		},
		{name: "absent", gomod: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := GoModRegistryVersion([]byte(tc.gomod))
			if diff := cmp.Diff([2]any{tc.want, tc.wantOK}, [2]any{got, ok}); diff != "" {
				t.Errorf("GoModRegistryVersion mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
