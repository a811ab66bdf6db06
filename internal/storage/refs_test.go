package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackedRefsMapped looks names up in packed-refs files of the shapes git writes and a few it does not:
// the file is mapped, so the last line without a newline and an empty file must be handled without the
// copy that used to add the newline.
func TestPackedRefsMapped(t *testing.T) {
	const (
		a = "1111111111111111111111111111111111111111"
		b = "2222222222222222222222222222222222222222"
		c = "3333333333333333333333333333333333333333"
	)
	full := "# pack-refs with: peeled fully-peeled sorted \n" +
		a + " refs/heads/production\n" +
		b + " refs/pull/1/head\n" +
		"^" + c + "\n" +
		c + " refs/tags/v1\n"
	tests := []struct {
		name   string
		packed *string // nil: no packed-refs file
		ref    string
		want   string // "" when the name must not be found
	}{
		{name: "first line", packed: &full, ref: "refs/heads/production", want: a},
		{name: "last line", packed: &full, ref: "refs/tags/v1", want: c},
		{name: "peeled line is not a name", packed: &full, ref: "refs/pull/1/head", want: b},
		{name: "prefix of a name", packed: &full, ref: "refs/heads/prod"},
		{name: "suffix of a name", packed: &full, ref: "refs/pull/1"},
		{name: "last line without newline", packed: ptr(strings.TrimSuffix(full, "\n")), ref: "refs/tags/v1", want: c},
		{name: "empty file", packed: ptr(""), ref: "refs/heads/production"},
		{name: "no file", ref: "refs/heads/production"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.packed != nil {
				if err := os.WriteFile(filepath.Join(dir, "packed-refs"), []byte(*tc.packed), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := &refStore{g: &gitDir{dir: dir, commonDir: dir}}
			h, _, found, err := s.resolve(tc.ref)
			if err != nil {
				t.Fatalf("resolve %s: %v", tc.ref, err)
			}
			got := ""
			if found {
				got = h.String()
			}
			if got != tc.want {
				t.Errorf("resolve %s = %q (found %v), want %q", tc.ref, got, found, tc.want)
			}
			if err := s.close(); err != nil {
				t.Errorf("close: %v", err)
			}
			if err := s.close(); err != nil {
				t.Errorf("second close: %v", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
