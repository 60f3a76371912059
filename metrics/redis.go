package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrFleetWatched is returned by WatchFleet when a fleet is already
// watched.
var ErrFleetWatched = errors.New("metrics: a fleet is already watched")

// redisCommands are the values of the command label: the store's scripts
// and the Redis commands it sends; anything else is Other.
var redisCommands = newFixedSet(
	"append", "progress", "complete", "dead_letter", "replay", "drop", "apply", "expire_states", "seen_and_state",
	"open", "renew", "acquire", "release",
	"xread", "xrange", "hget", "hgetall", "hmget", "zrange", "zremrangebyscore", "zscore", "zrem",
	"ping", "pipeline", "multi", "exec", "eval", "evalsha",
)

// ObserveRedis registers the metrics of the calls to Redis and returns
// the hook that records them, for redisstore.Options.Observe:
// threadgate_redis_command_duration_seconds (a histogram by command) and
// threadgate_redis_command_errors_total (by command). Call it once.
func (m *Metrics) ObserveRedis() func(command string, took time.Duration, err error) {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "redis_command_duration_seconds",
		Help:    "Duration of the calls to Redis (a script, a command or a pipeline), by command, failures included.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
	}, []string{"command"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "redis_command_errors_total",
		Help: "Calls to Redis that failed (unreachable, timed out, refused), by command.",
	}, []string{"command"})
	m.reg.MustRegister(duration, errs)
	for _, c := range []string{"append", "complete", "ping"} {
		errs.WithLabelValues(c)
	}
	return func(command string, took time.Duration, err error) {
		c := redisCommands.value(command)
		duration.WithLabelValues(c).Observe(took.Seconds())
		if err != nil {
			errs.WithLabelValues(c).Inc()
		}
	}
}

// FleetStats is what a replica of a fleet reports of its partitions, from
// redisstore.Consumer.Stats.
type FleetStats struct {
	// Held is the number of partitions held now; Replicas the number of
	// live replicas last seen.
	Held, Replicas int
	// Acquired, TakenOver, Lost and Released count the partitions taken
	// (TakenOver: from a replica whose lease expired), lost and given up.
	Acquired, TakenOver, Lost, Released uint64
	// Errors counts the failed calls of the consumer's loops.
	Errors uint64
}

var (
	fleetHeldDesc = prometheus.NewDesc(Namespace+"_fleet_partitions_held",
		"Partitions this replica holds: it handles their users' events.", nil, nil)
	fleetReplicasDesc = prometheus.NewDesc(Namespace+"_fleet_replicas",
		"Live replicas of the fleet, as this replica last saw them.", nil, nil)
	fleetAcquiredDesc = prometheus.NewDesc(Namespace+"_fleet_partitions_acquired_total",
		"Partitions this replica took: at start, released by another replica, or taken over.", nil, nil)
	fleetTakenOverDesc = prometheus.NewDesc(Namespace+"_fleet_partitions_taken_over_total",
		"Partitions this replica took from a replica whose lease expired (it died or was cut off).", nil, nil)
	fleetLostDesc = prometheus.NewDesc(Namespace+"_fleet_partitions_lost_total",
		"Leases this replica lost: not renewed in time (Redis unreachable, a long pause), or found taken.", nil, nil)
	fleetReleasedDesc = prometheus.NewDesc(Namespace+"_fleet_partitions_released_total",
		"Partitions this replica gave up to balance the fleet or at shutdown.", nil, nil)
	fleetErrorsDesc = prometheus.NewDesc(Namespace+"_fleet_consumer_errors_total",
		"Failed calls to Redis of the loops that renew the leases and read the partitions.", nil, nil)
)

// WatchFleet exports a replica's partitions and leases, read at each
// scrape from stats.
func (m *Metrics) WatchFleet(stats func() FleetStats) error {
	if stats == nil {
		return errors.New("metrics: watch fleet: no stats")
	}
	m.queueMu.Lock()
	defer m.queueMu.Unlock()
	if m.fleetWatched {
		return ErrFleetWatched
	}
	if err := m.reg.Register(fleetCollector(stats)); err != nil {
		return fmt.Errorf("metrics: watch fleet: %w", err)
	}
	m.fleetWatched = true
	return nil
}

// fleetCollector reads a replica's FleetStats once per scrape.
type fleetCollector func() FleetStats

func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{fleetHeldDesc, fleetReplicasDesc, fleetAcquiredDesc, fleetTakenOverDesc, fleetLostDesc, fleetReleasedDesc, fleetErrorsDesc} {
		ch <- d
	}
}

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	st := c()
	ch <- prometheus.MustNewConstMetric(fleetHeldDesc, prometheus.GaugeValue, float64(st.Held))
	ch <- prometheus.MustNewConstMetric(fleetReplicasDesc, prometheus.GaugeValue, float64(st.Replicas))
	ch <- prometheus.MustNewConstMetric(fleetAcquiredDesc, prometheus.CounterValue, float64(st.Acquired))
	ch <- prometheus.MustNewConstMetric(fleetTakenOverDesc, prometheus.CounterValue, float64(st.TakenOver))
	ch <- prometheus.MustNewConstMetric(fleetLostDesc, prometheus.CounterValue, float64(st.Lost))
	ch <- prometheus.MustNewConstMetric(fleetReleasedDesc, prometheus.CounterValue, float64(st.Released))
	ch <- prometheus.MustNewConstMetric(fleetErrorsDesc, prometheus.CounterValue, float64(st.Errors))
}
