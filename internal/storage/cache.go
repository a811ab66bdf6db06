package storage

import (
	"context"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheEntries bounds an ObjectCache created with a non-positive size.
const DefaultCacheEntries = 50_000

// ObjectCache keeps git objects read from GitHub by SHA (trees, blobs, commits, merge bases of commit pairs)
// in a bounded LRU. Objects addressed by SHA never change, so entries never expire; keys include the
// repository so that one cache can serve every installation without leaking objects between repositories.
// Concurrent requests for the same missing object share one fetch. It is safe for concurrent use.
type ObjectCache struct {
	lru *lru.Cache[string, any]

	mu       sync.Mutex
	inflight map[string]*fetchCall
}

type fetchCall struct {
	done chan struct{}
	val  any
	err  error
}

// NewObjectCache returns a cache holding at most maxEntries objects (DefaultCacheEntries when maxEntries < 1).
func NewObjectCache(maxEntries int) *ObjectCache {
	if maxEntries < 1 {
		maxEntries = DefaultCacheEntries
	}
	c, err := lru.New[string, any](maxEntries)
	if err != nil {
		// lru.New fails only for a non-positive size, excluded above.
		panic(err)
	}
	return &ObjectCache{lru: c, inflight: map[string]*fetchCall{}}
}

// Len returns the number of cached objects.
func (c *ObjectCache) Len() int { return c.lru.Len() }

// get returns the cached value for key, or calls fetch once (whatever the number of concurrent callers) and
// caches its result when it succeeds.
func (c *ObjectCache) get(ctx context.Context, key string, fetch func() (any, error)) (any, error) {
	if v, ok := c.lru.Get(key); ok {
		return v, nil
	}
	c.mu.Lock()
	if v, ok := c.lru.Get(key); ok {
		c.mu.Unlock()
		return v, nil
	}
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.val, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &fetchCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.mu.Unlock()

	call.val, call.err = fetch()
	c.mu.Lock()
	if call.err == nil {
		c.lru.Add(key, call.val)
	}
	delete(c.inflight, key)
	c.mu.Unlock()
	close(call.done)
	return call.val, call.err
}

// add stores a value learnt as a by-product of another request.
func (c *ObjectCache) add(key string, v any) {
	c.lru.Add(key, v)
}
