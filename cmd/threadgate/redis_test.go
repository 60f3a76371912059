package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threadgate/threadgate/internal/loopback"

	"github.com/threadgate/threadgate/internal/fakegraph"
	"github.com/threadgate/threadgate/internal/poll"
	"github.com/threadgate/threadgate/internal/redistest"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/redisstore"
)

func TestParseServeRedisURL(t *testing.T) {
	t.Parallel()
	live := map[string]string{"PAGE_ACCESS_TOKEN": "t", "APP_SECRET": "s"}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "none", want: ""},
		{name: "flag", args: []string{"--redis-url", "redis://:pw@redis:6379/2"}, env: live, want: "redis://:pw@redis:6379/2"},
		{name: "env", env: map[string]string{"THREADGATE_REDIS_URL": "rediss://redis:6380/0", "PAGE_ACCESS_TOKEN": "t", "APP_SECRET": "s"}, want: "rediss://redis:6380/0"},
		{name: "in sandbox mode", args: []string{"--redis-url", "redis://redis:6379/0"}, wantErr: "--redis-url needs PAGE_ACCESS_TOKEN"},
		{name: "with a data dir", args: []string{"--redis-url", "redis://redis:6379/0", "--data-dir", "/data"},
			wantErr: "--redis-url and --data-dir are both set"},
		{name: "not a Redis URL", args: []string{"--redis-url", "http://redis:6379"}, wantErr: "--redis-url: redisstore: the Redis URL is not valid"},
		{name: "a bad DB, password not repeated", args: []string{"--redis-url", "redis://:hunter2@redis:6379/abc"}, wantErr: `invalid database number: "abc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServe(tt.args, env(tt.env), io.Discard, false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %v, want one with %q and without the password", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.RedisURL != tt.want {
				t.Errorf("RedisURL = %q, want %q", c.RedisURL, tt.want)
			}
		})
	}
}

func TestServeRefusesAWrongRedisPassword(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t, redistest.Options{Password: "right"})
	url := strings.Replace(redis.URL(), ":right@", ":wrong@", 1)
	cfg, err := parseServe([]string{"--addr", loopback.FreeAddr(t), "--redis-url", url, "--rules", filepath.Join("..", "..", "examples", "rules.yaml")}, env(map[string]string{
		"PAGE_ACCESS_TOKEN": "t", "APP_SECRET": "s",
	}), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := runServer(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--redis-url") || strings.Contains(stderr.String(), "wrong") {
		t.Errorf("stderr %q, want a message about --redis-url without the password", stderr.String())
	}
}

// A replica started while Redis is down is alive and not ready, refuses
// webhooks with 503, and serves once Redis answers, without a restart.
func TestServeOnRedisWaitsForRedisThenServes(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t, redistest.Options{})
	redis.Stop()
	graph := fakegraph.New(t, fakegraph.Options{Tokens: []string{"live-token"}})
	addr := loopback.FreeAddr(t)
	cfg, err := parseServe([]string{"--addr", addr, "--insecure-skip-signature", "--rules", filepath.Join("..", "..", "examples", "rules.yaml")}, env(map[string]string{
		"PAGE_ACCESS_TOKEN": "live-token", "GRAPH_API_URL": graph.BaseURL(), "THREADGATE_REDIS_URL": redis.URL(),
	}), io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), io.Discard, io.Discard) }()
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	webhook := `{"object":"page","entry":[{"id":"111","time":1764000000000,"messaging":[{"sender":{"id":"u1"},"recipient":{"id":"111"},"timestamp":1764000000001,"message":{"mid":"m_redis_1","text":"hello"}}]}]}`
	post := func() int {
		resp, err := http.Post(base+"/webhook", "application/json", strings.NewReader(webhook))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		if got := status(t, base+path); got != want {
			t.Errorf("GET %s while Redis is down = %d, want %d", path, got, want)
		}
	}
	if code := post(); code != http.StatusServiceUnavailable {
		t.Errorf("webhook while Redis is down = %d, want 503", code)
	}

	redis.Restart()
	poll.Until(t, "/readyz 200 once Redis is back", func() bool { return status(t, base+"/readyz") == http.StatusOK })
	if code := post(); code != http.StatusOK {
		t.Fatalf("webhook = %d, want 200", code)
	}
	graph.WaitTexts(t, "u1", 1)
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"threadgate_fleet_partitions_held 64", `threadgate_redis_command_duration_seconds_count{command="append"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics has no %q", want)
		}
	}

	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d", code)
	}
	s, err := redisstore.Open(context.Background(), redis.URL(), redisstore.Options{Options: store.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, err := s.Stats(context.Background()); err != nil || st.Pending != 0 {
		t.Errorf("after the shutdown: %+v, %v; want nothing pending", st, err)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
