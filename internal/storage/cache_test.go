package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestObjectCacheSharesOneFetch(t *testing.T) {
	c := NewObjectCache(10)
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func() (any, error) {
		fetches.Add(1)
		<-release
		return "tree", nil
	}
	const callers = 8
	var wg sync.WaitGroup
	results := make([]any, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.get(context.Background(), "k", fetch)
			if err != nil {
				t.Error(err)
			}
			results[i] = v
		}()
	}
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 for %d concurrent callers", n, callers)
	}
	for i, v := range results {
		if v != "tree" {
			t.Errorf("caller %d got %v, want tree", i, v)
		}
	}
}

func TestObjectCache(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		size int
		// keys are fetched in order; fail makes the fetch of that index fail.
		keys        []string
		fail        map[int]bool
		wantFetches int
		wantLen     int
	}{
		{name: "hit after miss", size: 4, keys: []string{"a", "a", "b", "a"}, wantFetches: 2, wantLen: 2},
		{name: "errors are not cached", size: 4, keys: []string{"a", "a"}, fail: map[int]bool{0: true}, wantFetches: 2, wantLen: 1},
		{name: "bounded: least recently used evicted", size: 2, keys: []string{"a", "b", "c", "a"}, wantFetches: 4, wantLen: 2},
		{name: "non-positive size takes the default", size: 0, keys: []string{"a", "b"}, wantFetches: 2, wantLen: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewObjectCache(tc.size)
			fetches := 0
			for i, k := range tc.keys {
				_, err := c.get(context.Background(), k, func() (any, error) {
					fetches++
					if tc.fail[i] {
						return nil, boom
					}
					return k, nil
				})
				if tc.fail[i] != errors.Is(err, boom) {
					t.Errorf("get %d (%s): error = %v", i, k, err)
				}
			}
			if fetches != tc.wantFetches || c.Len() != tc.wantLen {
				t.Errorf("fetches, len = %d, %d; want %d, %d", fetches, c.Len(), tc.wantFetches, tc.wantLen)
			}
		})
	}
}
