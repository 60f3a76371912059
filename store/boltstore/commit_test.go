package boltstore

import (
	"errors"
	"github.com/threadgate/threadgate/internal/poll"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCommitterGroupsWaitingWrites holds the committer inside one write
// while ten more arrive, then checks that the ten share the next commit,
// and that a write failing among them fails alone.
func TestCommitterGroupsWaitingWrites(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := newCommitter(db)
	defer c.close()
	if err := c.update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	c0 := c.commits.Load()

	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- c.update(func(tx *bolt.Tx) error {
			select {
			case <-started: // run again: not the first time
			default:
				close(started)
			}
			<-release
			return nil
		})
	}()
	<-started
	const n = 10
	refused := errors.New("refused")
	results := make(chan error, n)
	for i := range n {
		go func() {
			results <- c.update(func(tx *bolt.Tx) error {
				if i == 3 {
					if err := tx.Bucket([]byte("b")).Put([]byte("bad"), []byte("x")); err != nil {
						return err
					}
					return refused // its Put must be rolled back
				}
				return tx.Bucket([]byte("b")).Put([]byte{byte(i)}, []byte("x"))
			})
		}()
	}
	poll.Until(t, "the ten writes to queue behind the held one", func() bool { return len(c.reqs) >= n })
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first write: %v", err)
	}
	for range n {
		if err := <-results; err != nil && !errors.Is(err, refused) {
			t.Errorf("write: %v", err)
		}
	}
	// One commit for the first write; for the ten: one attempt that the
	// refused write rolled back, its solo run, and one for the nine others.
	if got := c.commits.Load() - c0; got != 4 {
		t.Errorf("%d commits for 11 writes, want 4", got)
	}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		if b.Get([]byte("bad")) != nil {
			t.Error("the refused write's Put was committed")
		}
		for i := range n {
			if got := b.Get([]byte{byte(i)}) != nil; got != (i != 3) {
				t.Errorf("write %d committed = %v", i, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
