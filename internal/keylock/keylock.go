// Package keylock serialises work on one key (a commit, a merged PR) inside this process, with a bounded
// amount of memory whatever the number of keys. It only saves work: correctness across replicas rests on
// GitHub (deterministic names, refs created once), never on these locks.
package keylock

import (
	"hash/fnv"
	"sync"
)

// Striped is a fixed set of mutexes; a key hashes to one of them, so two keys may share a mutex (and wait for
// each other) but one key always gets the same. The zero value is ready to use.
type Striped struct {
	mus [64]sync.Mutex
}

// Lock locks key's mutex and returns the function that unlocks it.
func (s *Striped) Lock(key string) (unlock func()) {
	mu := &s.mus[index(key)]
	mu.Lock()
	return mu.Unlock
}

// index is the stripe of key.
func index(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(Striped{}.mus)))
}
