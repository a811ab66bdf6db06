package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "release", in: "1.2.3"},
		{name: "prerelease", in: "1.0.0-beta.1"},
		{name: "build metadata", in: "1.0.0+build.5"},
		{name: "prerelease and build", in: "1.0.0-rc.1+abc"},
		{name: "zero", in: "0.0.0"},
		{name: "v prefix", in: "v1.0.0", wantErr: true},
		{name: "partial major.minor", in: "1.0", wantErr: true},
		{name: "major only", in: "1", wantErr: true},
		{name: "leading zero", in: "01.0.0", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "words", in: "latest", wantErr: true},
		{name: "four parts", in: "1.0.0.0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVersion(tc.in)
			if (err != nil) != tc.wantErr {
				t.Errorf("ParseVersion(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		name    string
		a, b    string
		want    int
		wantErr bool
	}{
		{name: "patch order", a: "1.0.1", b: "1.0.0", want: 1},
		{name: "numeric not lexical", a: "1.10.0", b: "1.9.0", want: 1},
		{name: "prerelease before release", a: "1.0.0-beta.1", b: "1.0.0", want: -1},
		{name: "prerelease numeric identifiers", a: "1.0.0-beta.2", b: "1.0.0-beta.11", want: -1},
		{name: "build metadata ignored", a: "1.0.0+a", b: "1.0.0+b", want: 0},
		{name: "build metadata against plain", a: "1.0.0+a", b: "1.0.0", want: 0},
		{name: "invalid left", a: "v1.0.0", b: "1.0.0", wantErr: true},
		{name: "invalid right", a: "1.0.0", b: "1.0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CompareVersions(tc.a, tc.b)
			if (err != nil) != tc.wantErr {
				t.Fatalf("CompareVersions(%q, %q) error = %v, want error %v", tc.a, tc.b, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("CompareVersions(%q, %q) mismatch (-want +got):\n%s", tc.a, tc.b, diff)
			}
		})
	}
}
