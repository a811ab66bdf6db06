package server

import "sync"

// byteBudget is a semaphore of bytes: every webhook body the process holds — being read, waiting in the
// queue, being handled — is charged to it, so the memory webhooks can take is bounded whatever the clients
// send and however many connections they open. A request that does not fit is refused at once (503), never
// made to wait: waiting would hold a connection and its goroutine for every refused body.
type byteBudget struct {
	mu    sync.Mutex
	limit int64
	used  int64
}

func newByteBudget(limit int64) *byteBudget { return &byteBudget{limit: limit} }

// tryAcquire charges n bytes and reports whether they fit.
func (b *byteBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// release returns n bytes charged earlier.
func (b *byteBudget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.used < 0 { // a release without its acquire is a bug; never let it grow the budget
		panic("server: byte budget released more than was acquired")
	}
}

// inUse is the number of bytes charged now.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
