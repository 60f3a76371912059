package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/threadgate/threadgate/store"
)

// BenchmarkAppend measures Append of one 300-byte event from writers
// goroutines at once, b.N appends in all. Give s limits large enough for
// b.N events.
func BenchmarkAppend(b *testing.B, s store.Store, writers int) {
	ctx := context.Background()
	body := make([]byte, 300)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			evs := []store.NewEvent{{Lane: fmt.Sprintf("page/user%d", w), Body: body}}
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Append(ctx, evs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatalf("Append: %v", err)
	}
}
