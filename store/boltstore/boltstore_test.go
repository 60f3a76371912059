package boltstore_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/boltstore"
	"github.com/threadgate/threadgate/store/storetest"
)

func open(t testing.TB, dir string, o store.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(dir, boltstore.Options{Options: o, LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T, o store.Options) store.Store { return open(t, t.TempDir(), o) },
		Reopen: func(t *testing.T, s store.Store, o store.Options) store.Store {
			dir := filepath.Dir(s.(*boltstore.Store).Path())
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, dir, o)
		},
	})
}

// TestOpenRefuses checks that every data dir that cannot be used gives an
// error naming the path and the cause, and nothing is opened instead.
func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) (dir string)
		want  error
		says  string
	}{
		{
			name: "locked by another opener",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				s := open(t, dir, store.Options{})
				t.Cleanup(func() { s.Close() })
				return dir
			},
			want: boltstore.ErrLocked,
			says: "another threadgate",
		},
		{
			name: "parent is a regular file",
			setup: func(t *testing.T) string {
				f := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(f, "data")
			},
			want: boltstore.ErrUnwritable,
			says: "write",
		},
		{
			name: "database path is a directory",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				if err := os.Mkdir(filepath.Join(dir, boltstore.FileName), 0o700); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: boltstore.ErrUnwritable,
			says: "write access",
		},
		{
			name: "garbage",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				garbage := []byte(strings.Repeat("not a database, just garbage. ", 1000))
				if err := os.WriteFile(filepath.Join(dir, boltstore.FileName), garbage, 0o600); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: boltstore.ErrCorrupt,
			says: "move it aside",
		},
		{
			name: "damaged meta pages",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				s := open(t, dir, store.Options{})
				s.Close()
				path := filepath.Join(dir, boltstore.FileName)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for i := 32; i < 64; i++ { // the first meta page, inside its checksum
					b[i] ^= 0xff
				}
				for i := os.Getpagesize() + 32; i < os.Getpagesize()+64; i++ { // the second one
					b[i] ^= 0xff
				}
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: boltstore.ErrCorrupt,
			says: "restore it from a backup",
		},
		{
			name: "a bbolt file of something else",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: boltstore.ErrCorrupt,
			says: "without threadgate's meta bucket",
		},
		{
			name: "a newer format",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				open(t, dir, store.Options{}).Close()
				db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("2")) }); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			want: boltstore.ErrUnknownFormat,
			says: `format "2", this threadgate reads format 1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			s, err := boltstore.Open(dir, boltstore.Options{LockTimeout: 100 * time.Millisecond})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Open: %v\nwant an error wrapping %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Open: %v\nwant the path %s and %q in it", err, dir, tt.says)
			}
		})
	}
}

// TestOpenRefusesReadOnlyDir uses permissions, which root bypasses; the
// regular-file parent case above covers root.
func TestOpenRefusesReadOnlyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		t.Skip("permissions are not enforced for this user (root)")
	}
	_, err := boltstore.Open(dir, boltstore.Options{})
	if !errors.Is(err, boltstore.ErrUnwritable) {
		t.Errorf("Open of a read-only dir: %v, want ErrUnwritable", err)
	}
}

// TestFailingWriteLeavesItsGroupCommitted checks that a write refused
// (ErrFull) inside a group does not fail the other writes of the group.
func TestFailingWriteLeavesItsGroupCommitted(t *testing.T) {
	s := open(t, t.TempDir(), store.Options{Limits: store.Limits{MaxPendingBytes: 100}})
	defer s.Close()
	var wg sync.WaitGroup
	results := make([]error, 40)
	for i := range results {
		wg.Go(func() {
			body := []byte("x")
			if i%2 == 0 {
				body = make([]byte, 200) // never fits
			}
			_, results[i] = s.Append(context.Background(), []store.NewEvent{{Lane: "p/u", Body: body}})
		})
	}
	wg.Wait()
	for i, err := range results {
		if i%2 == 0 && !errors.Is(err, store.ErrFull) {
			t.Errorf("append %d (too big): %v, want ErrFull", i, err)
		}
		if i%2 == 1 && err != nil {
			t.Errorf("append %d: %v", i, err)
		}
	}
	st, err := s.Stats(context.Background())
	if err != nil || st.Pending != 20 || st.PendingBytes != 20 {
		t.Errorf("Stats = %+v, %v; want 20 pending of 1 byte", st, err)
	}
}

const crashChildEnv = "THREADGATE_BOLTSTORE_CRASH_CHILD"

// TestCrashKeepsAcknowledged runs a child process that appends events from
// several goroutines and prints each sequence number once Append returned
// (the acknowledgement), completing every third one, until it is killed
// with SIGKILL. After a reopen, every acknowledged event must be pending
// unless its completion had started, and no completed one may be.
func TestCrashKeepsAcknowledged(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKeepsAcknowledged$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read until 300 acknowledgements, kill, then read what the child
	// wrote before it died.
	acked, completing, completed := map[uint64]bool{}, map[uint64]bool{}, map[uint64]bool{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		kind, n, ok := strings.Cut(sc.Text(), " ")
		seq, err := strconv.ParseUint(n, 10, 64)
		if !ok || err != nil {
			continue
		}
		switch kind {
		case "acked":
			acked[seq] = true
		case "completing":
			completing[seq] = true
		case "completed":
			completed[seq] = true
		}
		if !killed && len(acked) >= 300 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("the child acknowledged only %d events before it stopped", len(acked))
	}

	s := open(t, dir, store.Options{})
	defer s.Close()
	pending, err := s.Pending(context.Background())
	if err != nil {
		t.Fatalf("Pending after the crash: %v", err)
	}
	have := map[uint64]bool{}
	for _, ev := range pending {
		have[ev.Seq] = true
		if completed[ev.Seq] {
			t.Errorf("event %d was completed before the crash but is pending after it", ev.Seq)
		}
	}
	lost := 0
	for seq := range acked {
		if !have[seq] && !completing[seq] { // an event being completed at the kill may be either
			lost++
		}
	}
	t.Logf("%d acknowledged (%d completed) before kill -9; %d pending after reopen", len(acked), len(completed), len(pending))
	if lost > 0 {
		t.Errorf("%d acknowledged events lost in the crash", lost)
	}
}

func crashChild(dir string) {
	s, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				evs, err := s.Append(context.Background(), []store.NewEvent{{Lane: fmt.Sprintf("p/u%d", w), Body: []byte("event")}})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("acked %d\n", evs[0].Seq)
				mu.Unlock()
				if i%3 == 0 {
					mu.Lock()
					fmt.Printf("completing %d\n", evs[0].Seq)
					mu.Unlock()
					if err := s.Complete(context.Background(), evs[0].Seq, store.Completion{}); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					mu.Lock()
					fmt.Printf("completed %d\n", evs[0].Seq)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := open(b, b.TempDir(), store.Options{Limits: store.Limits{MaxPending: 1 << 30, MaxPendingBytes: 1 << 40}})
			defer s.Close()
			c0, w0 := s.Commits()
			storetest.BenchmarkAppend(b, s, writers)
			c1, w1 := s.Commits()
			b.ReportMetric(float64(w1-w0)/float64(c1-c0), "appends/commit")
		})
	}
}

// TestCorruptRecord checks that a record that cannot be decoded gives
// ErrCorrupt naming the record, not a panic or a wrong event.
func TestCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, store.Options{})
	evs, err := s.Append(context.Background(), []store.NewEvent{{Lane: "p/u", Body: []byte("body")}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(filepath.Join(dir, boltstore.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		k := binary.BigEndian.AppendUint64(nil, evs[0].Seq)
		v := b.Get(k)
		return b.Put(k, v[:len(v)-2]) // cut the body short
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, store.Options{})
	defer s.Close()
	_, err = s.Pending(context.Background())
	if !errors.Is(err, boltstore.ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("event %d", evs[0].Seq)) {
		t.Errorf("Pending with a damaged record: %v, want ErrCorrupt naming event %d", err, evs[0].Seq)
	}
}
