package keyset

import (
	"slices"
	"testing"
)

func TestSortedUnion(t *testing.T) {
	for _, tc := range []struct {
		name string
		ms   []map[string]int
		want []string
	}{
		{"none", nil, nil},
		{"one", []map[string]int{{"b": 1, "a": 2}}, []string{"a", "b"}},
		{"overlapping", []map[string]int{{"b": 1, "c": 1}, {"a": 1, "c": 2}, {"c": 3, "d": 0}}, []string{"a", "b", "c", "d"}},
		{"an empty side", []map[string]int{{}, {"x": 1}}, []string{"x"}},
	} {
		if got := SortedUnion(tc.ms...); !slices.Equal(got, tc.want) {
			t.Errorf("%s: SortedUnion = %q, want %q", tc.name, got, tc.want)
		}
	}
}
