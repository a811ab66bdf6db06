package storage

import (
	"context"
	"errors"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheEntries bounds an ObjectCache created with a non-positive size.
const DefaultCacheEntries = 50_000

// DefaultReadConcurrency is how many GitHub reads one account's installation has in flight at most, by
// default. GitHub discourages bursts and counts concurrent requests toward its secondary rate limits, so the
// figure stays small: enough to overlap round trips, not to flood.
const DefaultReadConcurrency = 8

// ObjectCache keeps git objects read from GitHub by SHA (trees, blobs, commits, merge bases of commit pairs)
// in a bounded LRU. Objects addressed by SHA never change, so entries never expire; keys include the
// repository so that one cache can serve every installation without leaking objects between repositories.
// Concurrent requests for the same missing object share one fetch. It is safe for concurrent use.
type ObjectCache struct {
	lru *lru.Cache[string, any]

	mu       sync.Mutex
	inflight map[string]*fetchCall

	// The cache is the one thing every GitHub reader of the process shares, so it also holds the read slots
	// that bound concurrent requests per account (an App has one installation per account).
	slotsMu   sync.Mutex
	readLimit int
	slots     map[string]chan struct{}
	// noGraphQL switches batch reads through GitHub's GraphQL API off: every read goes through REST.
	noGraphQL bool
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
	return &ObjectCache{lru: c, inflight: map[string]*fetchCall{}, readLimit: DefaultReadConcurrency, slots: map[string]chan struct{}{}}
}

// SetReadConcurrency bounds the GitHub reads in flight per account through readers sharing this cache
// (DefaultReadConcurrency when n < 1). Call it before the cache is used: accounts that already read keep the
// bound they started with.
func (c *ObjectCache) SetReadConcurrency(n int) {
	if n < 1 {
		n = DefaultReadConcurrency
	}
	c.slotsMu.Lock()
	c.readLimit = n
	c.slotsMu.Unlock()
}

// SetGraphQL switches batch reads through GitHub's GraphQL API on (the default) or off for readers sharing
// this cache; off, every object is read through REST, one call each.
func (c *ObjectCache) SetGraphQL(enabled bool) {
	c.slotsMu.Lock()
	c.noGraphQL = !enabled
	c.slotsMu.Unlock()
}

// GraphQL reports whether batch reads through GraphQL are on.
func (c *ObjectCache) GraphQL() bool {
	c.slotsMu.Lock()
	defer c.slotsMu.Unlock()
	return !c.noGraphQL
}

// ReadConcurrency returns the bound SetReadConcurrency set.
func (c *ObjectCache) ReadConcurrency() int {
	c.slotsMu.Lock()
	defer c.slotsMu.Unlock()
	return c.readLimit
}

// acquire takes one of account's read slots, waiting for one while ctx lasts; release gives it back.
func (c *ObjectCache) acquire(ctx context.Context, account string) (release func(), err error) {
	c.slotsMu.Lock()
	sem, ok := c.slots[account]
	if !ok {
		sem = make(chan struct{}, c.readLimit)
		c.slots[account] = sem
	}
	c.slotsMu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
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
			if call.err != nil && isCancellation(call.err) && ctx.Err() == nil {
				// The fetch belonged to another evaluation that was cancelled (one of its other reads
				// failed); this caller still wants the object, so it fetches it itself.
				return c.get(ctx, key, fetch)
			}
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

func isCancellation(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// add stores a value learnt as a by-product of another request.
func (c *ObjectCache) add(key string, v any) {
	c.lru.Add(key, v)
}
