package memstore

import (
	"cmp"
	"hash/maphash"
	"slices"
)

// dedupSet holds dedup keys by a 128-bit hash of each, with its expiry in
// Unix nanoseconds. Nothing in it is a pointer, so the garbage collector
// never scans it: a busy gateway remembers the 200,000 keys of the last
// day, and keeping them as strings behind pointers made the collector
// trace every one of them on every cycle. Two distinct keys share a hash
// with a probability of about n²/2¹²⁹ (10⁻²⁹ for 200,000 keys).
//
// byExp is a min-heap of expiries that may hold stale items: when a key's
// expiry is extended, a new item is pushed and the old one is left behind;
// an item counts only while the map holds the same expiry for its hash.
type dedupSet struct {
	seeds [2]maphash.Seed
	exp   map[keyHash]int64
	byExp []dedupItem
}

// keyHash is a dedup key's 128-bit hash.
type keyHash [2]uint64

// dedupItem is a key's expiry in byExp.
type dedupItem struct {
	exp  int64
	hash keyHash
}

func newDedupSet() dedupSet {
	return dedupSet{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, exp: map[keyHash]int64{}}
}

func (d *dedupSet) hash(key string) keyHash {
	return keyHash{maphash.String(d.seeds[0], key), maphash.String(d.seeds[1], key)}
}

// len returns how many keys the set holds.
func (d *dedupSet) len() int { return len(d.exp) }

// seen reports whether key is held with an expiry after now.
func (d *dedupSet) seen(key string, now int64) bool {
	exp, ok := d.exp[d.hash(key)]
	return ok && exp > now
}

// remember holds key until exp, or keeps its later expiry, then forgets
// the keys closest to expiry while more than max are held.
func (d *dedupSet) remember(key string, exp int64, max int) {
	h := d.hash(key)
	if old, ok := d.exp[h]; ok && old >= exp {
		return
	}
	d.exp[h] = exp
	d.push(dedupItem{exp: exp, hash: h})
	for len(d.exp) > max {
		d.popLive()
	}
	if len(d.byExp) > 2*len(d.exp)+1024 {
		d.compact()
	}
}

// expire forgets the keys whose expiry is at or before now and returns how
// many it forgot.
func (d *dedupSet) expire(now int64) int {
	n := 0
	for len(d.byExp) > 0 && d.byExp[0].exp <= now {
		if d.popLive() {
			n++
		}
	}
	return n
}

// popLive removes byExp's first item and, if it is live, its key; it
// reports whether a key was forgotten.
func (d *dedupSet) popLive() bool {
	it := d.pop()
	if exp, ok := d.exp[it.hash]; ok && exp == it.exp {
		delete(d.exp, it.hash)
		return true
	}
	return false
}

// compact rebuilds byExp from the live keys, dropping the stale items.
func (d *dedupSet) compact() {
	d.byExp = d.byExp[:0]
	for h, exp := range d.exp {
		d.byExp = append(d.byExp, dedupItem{exp: exp, hash: h})
	}
	slices.SortFunc(d.byExp, func(a, b dedupItem) int { return cmp.Compare(a.exp, b.exp) }) // a sorted slice is a heap
	d.byExp = slices.Clip(d.byExp)
}

func (d *dedupSet) push(it dedupItem) {
	h := append(d.byExp, it)
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].exp <= it.exp {
			break
		}
		h[i] = h[parent]
		i = parent
	}
	h[i] = it
	d.byExp = h
}

func (d *dedupSet) pop() dedupItem {
	h := d.byExp
	top := h[0]
	last := h[len(h)-1]
	h = h[:len(h)-1]
	n := len(h)
	i := 0
	for n > 0 {
		child := 2*i + 1
		if child >= n {
			break
		}
		if r := child + 1; r < n && h[r].exp < h[child].exp {
			child = r
		}
		if last.exp <= h[child].exp {
			break
		}
		h[i] = h[child]
		i = child
	}
	if n > 0 {
		h[i] = last
	}
	d.byExp = h
	return top
}
