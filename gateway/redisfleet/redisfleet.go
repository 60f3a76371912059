// Package redisfleet makes a gateway one replica of a fleet on Redis: it
// adapts a redisstore.Consumer to gateway.EventSource, so that the gateway
// handles the pending events of the partitions this replica holds, and
// skips the events of a partition as soon as a store write says another
// replica took it over.
//
//	s, _ := redisstore.Open(ctx, url, redisstore.Options{…})
//	c, _ := s.Consume(ctx, redisstore.ConsumerOptions{ID: id})
//	src := redisfleet.New(s, c)
//	gw := gateway.New(gateway.Config{Store: s, Source: src, …})
//
// At shutdown: gw.Drain, then c.Stop (which releases the partitions at
// once), then s.Close. docs/replicas.md describes the design.
package redisfleet

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/store/redisstore"
)

// Source is a gateway.EventSource on a redisstore.Consumer.
type Source struct {
	s   *redisstore.Store
	c   *redisstore.Consumer
	out chan gateway.Delivery

	mu sync.Mutex
	// holdings maps the context of each holding of a partition, as the
	// consumer gives it, to the context the gateway sees, which Lost can
	// cancel before the consumer notices the loss.
	holdings map[context.Context]*holding
}

// holding is one holding of a partition as the gateway sees it.
type holding struct {
	ctx    context.Context
	cancel context.CancelFunc
}

type holdingKey struct{}

var _ gateway.EventSource = (*Source)(nil)

// New returns the source of c's deliveries. It forwards them until c
// stops, then closes its own channel.
func New(s *redisstore.Store, c *redisstore.Consumer) *Source {
	src := &Source{s: s, c: c, out: make(chan gateway.Delivery), holdings: map[context.Context]*holding{}}
	go src.forward()
	return src
}

func (src *Source) forward() {
	defer close(src.out)
	for d := range src.c.Deliveries() {
		select {
		case src.out <- gateway.Delivery{Event: d.Event, Context: src.holdingOf(d.Context()).ctx}:
		case <-d.Context().Done():
			// The partition was lost, or the consumer stops: the event
			// stays pending for the next holder.
		}
	}
}

// holdingOf returns the holding of a consumer's delivery context, made on
// its first delivery and forgotten when the consumer ends it.
func (src *Source) holdingOf(ctx context.Context) *holding {
	src.mu.Lock()
	defer src.mu.Unlock()
	if h := src.holdings[ctx]; h != nil {
		return h
	}
	h := &holding{}
	var hctx context.Context
	hctx, h.cancel = context.WithCancel(ctx)
	h.ctx = context.WithValue(hctx, holdingKey{}, h)
	src.holdings[ctx] = h
	context.AfterFunc(ctx, func() {
		src.mu.Lock()
		delete(src.holdings, ctx)
		src.mu.Unlock()
	})
	return h
}

// Deliveries implements gateway.EventSource.
func (src *Source) Deliveries() <-chan gateway.Delivery { return src.out }

// Lost implements gateway.EventSource: err is redisstore.ErrLeaseLost.
func (src *Source) Lost(ctx context.Context, err error) bool {
	if !errors.Is(err, redisstore.ErrLeaseLost) {
		return false
	}
	if h, ok := ctx.Value(holdingKey{}).(*holding); ok {
		h.cancel()
	}
	return true
}

// Holds implements gateway.EventSource: the consumer holds the lane's
// partition.
func (src *Source) Holds(lane string) bool {
	return slices.Contains(src.c.Held(), src.s.Partition(lane))
}

// Acquired implements gateway.EventSource.
func (src *Source) Acquired() uint64 { return src.c.Stats().Acquired }
