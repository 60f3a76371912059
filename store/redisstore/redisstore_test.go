package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
