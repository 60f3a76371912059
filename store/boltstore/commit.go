package boltstore

import (
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// maxGroup is the most writes one transaction carries.
const maxGroup = 1000

// committer runs every write of the store through one goroutine that puts
// all the writes waiting when it starts a transaction into that transaction:
// one commit, one fsync, for all of them (group commit).
//
// bbolt's DB.Batch does the same but waits up to MaxBatchDelay (10 ms) for
// more writes before it commits, so a lone writer always pays the delay,
// and the delay is a guess at the disk's speed. Here a lone writer commits
// at once, and the writes that arrive while a commit is syncing form the
// next group: the group grows with the load and the disk's latency.
type committer struct {
	db   *bolt.DB
	reqs chan *writeReq
	done chan struct{}

	mu     sync.RWMutex // held for reading while sending on reqs
	closed bool

	commits atomic.Uint64
	writes  atomic.Uint64
}

// writeReq is one write waiting for its group.
type writeReq struct {
	fn  func(*bolt.Tx) error
	err chan error
}

func newCommitter(db *bolt.DB) *committer {
	c := &committer{db: db, reqs: make(chan *writeReq, maxGroup), done: make(chan struct{})}
	go c.loop()
	return c
}

// update runs fn in a write transaction shared with the other writes
// waiting, and returns once that transaction is committed and synced, or
// failed. fn may be called more than once (when another write of its
// group fails, the group is run again without it), so it must only write
// through tx and set its own results. An error fn returns is returned as
// is; fn's writes are then rolled back.
func (c *committer) update(fn func(*bolt.Tx) error) error {
	r := &writeReq{fn: fn, err: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed
	}
	c.reqs <- r
	c.mu.RUnlock()
	return <-r.err
}

// close stops accepting writes and returns once the writes already
// accepted are committed. It reports false if the committer was already
// closed.
func (c *committer) close() bool {
	c.mu.Lock()
	first := !c.closed
	if first {
		c.closed = true
		close(c.reqs)
	}
	c.mu.Unlock()
	<-c.done
	return first
}

func (c *committer) loop() {
	defer close(c.done)
	group := make([]*writeReq, 0, maxGroup)
	for r := range c.reqs {
		group = append(group[:0], r)
	fill:
		for len(group) < maxGroup {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		c.run(group)
	}
}

// run commits group in one transaction. A write that fails is taken out
// and run alone, so that its error is its own and the others still commit.
func (c *committer) run(group []*writeReq) {
	for len(group) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, r := range group {
				if err := call(r.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		c.commits.Add(1)
		if failed >= 0 {
			r := group[failed]
			group = append(group[:failed], group[failed+1:]...)
			r.err <- c.solo(r)
			continue
		}
		c.writes.Add(uint64(len(group)))
		for _, r := range group {
			r.err <- err
		}
		return
	}
}

func (c *committer) solo(r *writeReq) error {
	err := c.db.Update(func(tx *bolt.Tx) error { return call(r.fn, tx) })
	c.commits.Add(1)
	c.writes.Add(1)
	return err
}

// call runs fn, turning a panic into an error so that one bad write cannot
// stop the committer.
func call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return fn(tx)
}
