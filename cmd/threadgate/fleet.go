package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threadgate/threadgate/gateway/redisfleet"
	"github.com/threadgate/threadgate/metrics"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/redisstore"
)

// fleet is this replica's membership of a fleet on Redis (--redis-url).
type fleet struct {
	store *redisstore.Store
	cons  *redisstore.Consumer
	src   *redisfleet.Source
}

// redisRetryEvery is how often serve tries again to reach a Redis that
// did not answer at start; redisOpenTimeout bounds one try.
const (
	redisRetryEvery  = time.Second
	redisOpenTimeout = 5 * time.Second
	redisLogEvery    = 30 * time.Second
)

// errStopped is returned by openFleet when serve was stopped while it
// waited for Redis.
var errStopped = errors.New("stopped while waiting for Redis")

// openFleet opens the Redis of --redis-url and joins the fleet with a
// replica ID of the host name and a random suffix.
//
// A Redis that does not answer at start is waited for, not a reason to
// exit: wait is called once (it serves /healthz, and 503 on /readyz and
// the webhook, so that Facebook delivers again later and no load balancer
// sends traffic here), and Redis is tried again every second until it
// answers or ctx is done (errStopped). A replica that exited instead would
// be restarted by its supervisor with a growing back-off (up to five
// minutes in Kubernetes), and would come back that much later than Redis.
// Any other error (a refused password, another number of partitions) is
// returned at once: waiting would not fix it.
func openFleet(ctx context.Context, cfg *serveConfig, log *slog.Logger, m *metrics.Metrics, wait func()) (*fleet, error) {
	// The client's own log lines (a failed dial, every second while Redis
	// is down) go to the process log at debug level, as JSON like the rest.
	redis.SetLogger(redisLogger{log: log.With("component", "redis")})
	opts := redisstore.Options{
		Options: store.Options{Limits: store.Limits{MaxPending: cfg.QueueSize, MaxPendingBytes: cfg.QueueBytes}},
		Observe: m.ObserveRedis(),
	}
	var s *redisstore.Store
	var lastLog time.Time
	for {
		octx, cancel := context.WithTimeout(ctx, redisOpenTimeout)
		var err error
		s, err = redisstore.Open(octx, cfg.RedisURL, opts)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, errStopped
		}
		if !redisstore.Unavailable(err) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("--redis-url: %w", err)
		}
		if lastLog.IsZero() {
			wait()
		}
		if time.Since(lastLog) >= redisLogEvery {
			log.Warn("Redis cannot be reached: not ready, webhooks get 503; trying again every second", "error", err.Error())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, errStopped
		case <-time.After(redisRetryEvery):
		}
	}
	id := replicaID()
	c, err := s.Consume(context.WithoutCancel(ctx), redisstore.ConsumerOptions{ID: id})
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("--redis-url: joining the fleet: %w", err)
	}
	if err := m.WatchFleet(func() metrics.FleetStats {
		st := c.Stats()
		return metrics.FleetStats{Held: st.Held, Replicas: st.Replicas, Acquired: st.Acquired, TakenOver: st.TakenOver,
			Lost: st.Lost, Released: st.Released, Errors: st.Errors}
	}); err != nil {
		log.Error("metrics", "error", err.Error())
	}
	log.Info("joined the fleet on Redis", "replica", id, "partitions", s.Partitions())
	return &fleet{store: s, cons: c, src: redisfleet.New(s, c)}, nil
}

// stop leaves the fleet: the partitions are released at once, so that the
// other replicas take them over without waiting for the leases to expire.
func (f *fleet) stop(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), redisOpenTimeout)
	defer cancel()
	if err := f.cons.Stop(ctx); err != nil {
		log.Warn("leaving the fleet: the leases expire by themselves", "error", err.Error())
	}
}

// replicaID names this replica in the fleet: the host name (the pod's
// name in Kubernetes) and a random suffix, so that a restarted process is
// a new replica.
func replicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "threadgate"
	}
	return host + "-" + randomHex(4)
}

// switchHandler serves with the handler set last: the "waiting for Redis"
// one, then the gateway's router.
type switchHandler struct {
	h atomic.Pointer[http.Handler]
}

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// waitingForRedis answers while serve waits for Redis at start: alive,
// not ready, webhooks refused with 503 (Facebook delivers them again).
func waitingForRedis() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "waiting for Redis", http.StatusServiceUnavailable)
	})
	return mux
}

// redisLogger hands the Redis client's log lines to the process log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}
