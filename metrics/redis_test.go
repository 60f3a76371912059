package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/threadgate/threadgate/metrics"
)

func TestRedisAndFleetMetrics(t *testing.T) {
	m := metrics.New(metrics.Options{})
	observe := m.ObserveRedis()
	observe("append", 2*time.Millisecond, nil)
	observe("append", time.Millisecond, errors.New("connection refused"))
	observe("renew", time.Millisecond, nil)
	observe("made-up-command", time.Millisecond, errors.New("x"))
	stats := metrics.FleetStats{Held: 21, Replicas: 3, Acquired: 30, TakenOver: 8, Lost: 2, Released: 7, Errors: 5}
	if err := m.WatchFleet(func() metrics.FleetStats { return stats }); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchFleet(func() metrics.FleetStats { return stats }); !errors.Is(err, metrics.ErrFleetWatched) {
		t.Errorf("second WatchFleet: %v, want ErrFleetWatched", err)
	}
	checkSamples(t, scrape(t, m), []sample{
		{"threadgate_redis_command_duration_seconds_count", []string{"command", "append"}, 2},
		{"threadgate_redis_command_duration_seconds_count", []string{"command", "renew"}, 1},
		{"threadgate_redis_command_duration_seconds_count", []string{"command", "other"}, 1},
		{"threadgate_redis_command_errors_total", []string{"command", "append"}, 1},
		{"threadgate_redis_command_errors_total", []string{"command", "complete"}, 0},
		{"threadgate_redis_command_errors_total", []string{"command", "other"}, 1},
		{"threadgate_fleet_partitions_held", nil, 21},
		{"threadgate_fleet_replicas", nil, 3},
		{"threadgate_fleet_partitions_acquired_total", nil, 30},
		{"threadgate_fleet_partitions_taken_over_total", nil, 8},
		{"threadgate_fleet_partitions_lost_total", nil, 2},
		{"threadgate_fleet_partitions_released_total", nil, 7},
		{"threadgate_fleet_consumer_errors_total", nil, 5},
	})
}
