package policy

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// aliasBomb builds a "billion laughs" document: each level refers to the previous one ten times.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("name: foo\nversion: 1.0.0\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat("*a"+strconv.Itoa(i-1)+", ", 10), ", ")
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [" + refs + "]\n")
	}
	return b.String()
}

func TestReadManifest(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		want      ManifestFields
		wantErr   error  // a sentinel the error must match
		wantInErr string // else a substring of the error
	}{
		{
			name: "name and version",
			data: "format_version: 1.0.0\nname: nginx\ntitle: Nginx\nversion: 1.2.3\n",
			want: ManifestFields{Name: "nginx", Version: "1.2.3"},
		},
		{
			name: "values through aliases",
			data: "x: &n nginx\nname: *n\nversion: 0.1.0\n",
			want: ManifestFields{Name: "nginx", Version: "0.1.0"},
		},
		{name: "missing version", data: "name: nginx\n", wantInErr: "no version field"},
		{name: "missing name", data: "version: 1.0.0\n", wantInErr: "no name field"},
		{name: "name is a list", data: "name: [a]\nversion: 1.0.0\n", wantInErr: "line 1: name must be a string"},
		{name: "version is null", data: "name: a\nversion:\n", wantInErr: "line 2: version must be a string"},
		{name: "not a mapping", data: "- a\n- b\n", wantInErr: "must be a YAML mapping"},
		{name: "empty", data: "", wantInErr: "parse YAML"},
		{name: "broken YAML", data: "name: [unclosed\n", wantInErr: "parse YAML"},
		{name: "alias bomb", data: aliasBomb(9), wantErr: ErrManifestTooComplex},
		{name: "recursive alias", data: "name: a\nversion: 1.0.0\nx: &x [*x]\n", wantErr: ErrManifestTooComplex},
		{name: "over 1 MiB", data: "name: a\nversion: 1.0.0\n#" + strings.Repeat("x", MaxManifestSize), wantErr: ErrManifestTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadManifest([]byte(tc.data))
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReadManifest error = %v, want %v", err, tc.wantErr)
				}
			case tc.wantInErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
					t.Fatalf("ReadManifest error = %v, want one containing %q", err, tc.wantInErr)
				}
			case err != nil:
				t.Fatalf("ReadManifest: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadManifest mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzReadManifest(f *testing.F) {
	f.Add([]byte("name: nginx\nversion: 1.2.3\n"))
	f.Add([]byte("x: &n nginx\nname: *n\nversion: 0.1.0\n"))
	f.Add([]byte("x: &x [*x]\n"))
	f.Add([]byte(aliasBomb(4)))
	f.Add([]byte("<<: {name: a}\nversion: 1.0.0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadManifest(data)
		if err != nil && m != (ManifestFields{}) {
			t.Errorf("ReadManifest returned fields %+v with error %v", m, err)
		}
	})
}
