package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
)

// children finds a metric vector's child for a tuple of label values with
// one read of an immutable map. The vector's own lookup (WithLabelValues)
// hashes the values and takes a lock on every call, and an event makes
// several such calls. A tuple seen for the first time asks the vector and
// replaces the map with a copy that holds it: the tuples are bounded (every
// label value comes from a bounded set), so the copies stop early. The
// vectors cached this way never delete a child, so a cached child is the
// one the registry serves.
type children[K comparable, M any] struct {
	with func(K) M // the vector's lookup

	mu sync.Mutex // serializes the copies
	m  atomic.Pointer[map[K]M]
}

func newChildren[K comparable, M any](with func(K) M) *children[K, M] {
	return &children[K, M]{with: with}
}

// get returns the child for k.
func (c *children[K, M]) get(k K) M {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	v := c.with(k)
	next := map[K]M{}
	if old != nil {
		next = maps.Clone(*old)
	}
	next[k] = v
	c.m.Store(&next)
	return v
}
