package ghclient

import (
	"container/list"
	"sync"
)

// ByteLRU holds the conditional cache's responses, bounded by the bytes it holds, evicting the least recently
// used response first: a bot that reads many trees would otherwise grow without bound.
type ByteLRU struct {
	mu       sync.Mutex
	maxBytes int
	size     int
	order    *list.List // front = most recently used
	items    map[string]*list.Element
}

type cacheItem struct {
	key   string
	value []byte
}

// NewByteLRU returns a cache holding at most maxBytes of responses.
func NewByteLRU(maxBytes int) *ByteLRU {
	return &ByteLRU{maxBytes: maxBytes, order: list.New(), items: make(map[string]*list.Element)}
}

// Get returns the cached response for key.
func (c *ByteLRU) Get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheItem).value, true
}

// Set stores a response; one larger than the whole cache is not stored.
func (c *ByteLRU) Set(key string, value []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
	if len(value) > c.maxBytes {
		return
	}
	c.items[key] = c.order.PushFront(&cacheItem{key: key, value: value})
	c.size += len(value)
	for c.size > c.maxBytes {
		c.removeElement(c.order.Back())
	}
}

// Delete drops a response.
func (c *ByteLRU) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
}

// Size is the number of bytes held.
func (c *ByteLRU) Size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

func (c *ByteLRU) removeElement(el *list.Element) {
	it := el.Value.(*cacheItem)
	c.order.Remove(el)
	delete(c.items, it.key)
	c.size -= len(it.value)
}
