package redisstore

import "context"

// fence is what a delivery's context carries: the partition and the lease
// value ("token:owner") under which the event was delivered. The scripts
// refuse a write whose fence is not the partition's current lease.
type fence struct {
	partition int
	lease     string
	session   *session // told when the event is finished
}

type fenceKey struct{}

// withFence returns ctx carrying f.
func withFence(ctx context.Context, f fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}
