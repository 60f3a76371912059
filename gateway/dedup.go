package gateway

import "sync"

// Deduper remembers which events were already handled, so that an event
// Facebook delivers twice is handled once.
type Deduper interface {
	// FirstTime records key and reports whether it had not been seen before.
	FirstTime(key string) bool
}

// MemoryDeduper is a Deduper that remembers at least the last n keys and at
// most 2n, in two generations of n: when the newer generation is full, the
// older one is forgotten.
type MemoryDeduper struct {
	mu        sync.Mutex
	n         int
	cur, prev map[string]struct{}
}

// NewMemoryDeduper returns a Deduper that remembers at least the last n keys.
func NewMemoryDeduper(n int) *MemoryDeduper {
	if n <= 0 {
		n = 1
	}
	return &MemoryDeduper{n: n, cur: make(map[string]struct{}, n)}
}

// FirstTime implements Deduper.
func (d *MemoryDeduper) FirstTime(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.cur[key]; ok {
		return false
	}
	if _, ok := d.prev[key]; ok {
		return false
	}
	if len(d.cur) >= d.n {
		d.prev = d.cur
		d.cur = make(map[string]struct{}, d.n)
	}
	d.cur[key] = struct{}{}
	return true
}
