package keylock

import (
	"sync"
	"testing"
)

// TestLockSerialisesOneKey: holders of one key never overlap, whatever the number of goroutines.
func TestLockSerialisesOneKey(t *testing.T) {
	var s Striped
	var wg sync.WaitGroup
	inside, maxInside := 0, 0
	var mu sync.Mutex
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := s.Lock("o/r@abc")
			defer unlock()
			mu.Lock()
			inside++
			if inside > maxInside {
				maxInside = inside
			}
			mu.Unlock()
			mu.Lock()
			inside--
			mu.Unlock()
		}()
	}
	wg.Wait()
	if maxInside != 1 {
		t.Errorf("%d holders of one key at once, want 1", maxInside)
	}
	// Another key is free while one is held.
	unlock := s.Lock("a")
	done := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			key := string(rune('b' + i))
			if &s.mus[index(key)] != &s.mus[index("a")] {
				s.Lock(key)()
				close(done)
				return
			}
		}
	}()
	<-done
	unlock()
}
