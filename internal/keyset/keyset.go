// Package keyset answers questions about the key sets of maps. Walking two trees side by side — the
// storage diff, the fake GitHub's diff and three-way merge — starts with every name either side holds.
package keyset

import (
	"maps"
	"slices"
)

// SortedUnion returns every key held by any of ms, once each, sorted.
func SortedUnion[V any](ms ...map[string]V) []string {
	var keys []string
	for _, m := range ms {
		keys = slices.AppendSeq(keys, maps.Keys(m))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
