package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadgate/threadgate/internal/redistest"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/storetest"
)

// prefixes gives every store of a test run its own keys in one server.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("{t%d}:", prefixes.Add(1)) }

func open(t testing.TB, url string, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	storetest.Run(t, storetest.Factory{
		New: func(t *testing.T, o store.Options) store.Store {
			return open(t, srv.URL(), Options{Options: o, Prefix: newPrefix()})
		},
		Reopen: func(t *testing.T, s store.Store, o store.Options) store.Store {
			prefix := s.(*Store).prefix
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, srv.URL(), Options{Options: o, Prefix: prefix})
		},
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{Password: "s3cret-pw"})
	ctx := context.Background()
	addr := srv.Addr()
	prefix := newPrefix()
	tests := []struct {
		name    string
		url     string
		parts   int
		wantErr string // "" for success
		timeout time.Duration
	}{
		{name: "password and DB", url: "redis://:s3cret-pw@" + addr + "/3", parts: 8},
		{name: "same data, same partitions", url: "redis://:s3cret-pw@" + addr + "/3", parts: 8},
		{name: "same data, other partitions", url: "redis://:s3cret-pw@" + addr + "/3", parts: 16, wantErr: "has 8 partitions, not 16"},
		{name: "other DB is other data", url: "redis://:s3cret-pw@" + addr + "/4", parts: 16},
		{name: "wrong password", url: "redis://:wrong-pw@" + addr + "/3", parts: 8, wantErr: "WRONGPASS"},
		{name: "no password", url: "redis://" + addr + "/3", parts: 8, wantErr: "NOAUTH"},
		{name: "not a Redis URL", url: "http://:s3cret-pw@" + addr, parts: 8, wantErr: "not valid"},
		{name: "bad port", url: "redis://:s3cret-pw@127.0.0.1:notaport/0", parts: 8, wantErr: "not valid"},
		// The server never answers a TLS handshake: the client tried TLS.
		{name: "TLS to a plain server", url: "rediss://:s3cret-pw@" + addr + "/3", parts: 8, wantErr: "open", timeout: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, cmp.Or(tt.timeout, 10*time.Second))
			defer cancel()
			s, err := Open(ctx, tt.url, Options{Partitions: tt.parts, Prefix: prefix})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer s.Close()
				if _, err := s.Append(ctx, []store.NewEvent{{Lane: "p/u", Body: []byte("x")}}); err != nil {
					t.Fatalf("Append: %v", err)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error with %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open: %v, want an error with %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("Open's error repeats the password: %v", err)
			}
		})
	}
	// The data of DB 3 is in DB 3 only.
	for db, want := range map[int]int{3: 2, 4: 1} {
		s, err := Open(ctx, fmt.Sprintf("redis://:s3cret-pw@%s/%d", addr, db), Options{Partitions: map[int]int{3: 8, 4: 16}[db], Prefix: prefix})
		if err != nil {
			t.Fatalf("Open DB %d: %v", db, err)
		}
		st, err := s.Stats(ctx)
		s.Close()
		if err != nil || st.Pending != want {
			t.Errorf("DB %d: Stats = %+v, %v; want %d pending", db, st, err, want)
		}
	}
}

func TestObserverSeesEveryCall(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{})
	var mu sync.Mutex
	seen := map[string]int{}
	failed := map[string]int{}
	obs := func(command string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen[command]++
		if err != nil {
			failed[command]++
		}
	}
	ctx := context.Background()
	s := open(t, srv.URL(), Options{Prefix: newPrefix(), Observe: obs})
	defer s.Close()
	if _, err := s.Append(ctx, []store.NewEvent{{Lane: "p/u", Body: []byte("x")}}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if _, _, err := s.LoadState(ctx, "p/u"); err != nil {
		t.Fatalf("LoadState: %v", err)
	}
	if _, err := s.Pending(ctx); err != nil {
		t.Fatalf("Pending: %v", err)
	}
	srv.Stop()
	if _, err := s.Seen(ctx, "m:x"); err == nil {
		t.Fatal("Seen succeeded with Redis stopped")
	}
	mu.Lock()
	defer mu.Unlock()
	for cmd, n := range map[string]int{"open": 1, "append": 1, "hget": 1, "pipeline": 2, "zscore": 1} {
		if seen[cmd] != n {
			t.Errorf("observed %d calls of %q, want %d (all: %v)", seen[cmd], cmd, n, seen)
		}
	}
	if len(failed) != 1 || failed["zscore"] != 1 {
		t.Errorf("observed failures %v, want the one zscore", failed)
	}
}

// BenchmarkAppend measures Append against a redis-server without
// persistence and with the append-only file fsynced at every write (Redis
// fsyncs once per event loop turn, so concurrent appends share a sync).
func BenchmarkAppend(b *testing.B) {
	for _, aof := range []bool{false, true} {
		srv := redistest.Start(b, redistest.Options{AppendFsyncAlways: aof})
		for _, writers := range []int{1, 64} {
			b.Run(fmt.Sprintf("aof_always=%v/writers=%d", aof, writers), func(b *testing.B) {
				s := open(b, srv.URL(), Options{Prefix: newPrefix(), Options: store.Options{Limits: store.Limits{MaxPending: 1 << 30, MaxPendingBytes: 1 << 40}}})
				defer s.Close()
				storetest.BenchmarkAppend(b, s, writers)
			})
		}
	}
}
