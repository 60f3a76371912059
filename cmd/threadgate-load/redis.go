package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisArgs are the persistence settings of the redis-server the tool
// starts: every write on disk before Redis answers, no snapshots.
var redisArgs = []string{"--appendonly", "yes", "--appendfsync", "always", "--save", ""}

// redisServer is a redis-server the tool started for one run.
type redisServer struct {
	cmd  *exec.Cmd
	dir  string
	addr string
	// exited is closed when the process has exited.
	exited chan struct{}
}

// startRedis starts the redis-server binary bin (a path, or a name looked
// up in PATH) on a free loopback port in a fresh temporary directory, with
// redisArgs, and waits until it answers PING.
func startRedis(bin string) (*redisServer, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("-redis-server: %w", err)
	}
	dir, err := os.MkdirTemp("", "threadgate-load-redis")
	if err != nil {
		return nil, fmt.Errorf("temporary directory for redis-server: %w", err)
	}
	// Another process may take the free port before redis-server binds
	// it: then try another.
	for attempt := 1; ; attempt++ {
		s, err := startRedisIn(path, dir)
		if err == nil {
			return s, nil
		}
		if attempt == 5 || !strings.Contains(redisLog(dir), "Address already in use") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func startRedisIn(path, dir string) (*redisServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("find a free port for redis-server: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_ = os.Remove(filepath.Join(dir, "redis.log")) // an earlier attempt's
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}, redisArgs...)
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	s := &redisServer{cmd: cmd, dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(s.exited) }()
	client := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: time.Second})
	defer client.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		select {
		case <-s.exited: // it could not bind: what answered, if anything, is another server
			return nil, fmt.Errorf("redis-server exited at start: %v\n%s", waitErr, redisLog(dir))
		default:
		}
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-s.exited
			return nil, fmt.Errorf("redis-server on %s not answering after 10 s: %w\n%s", s.addr, err, redisLog(dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// url returns the server's redis:// URL, DB 0.
func (s *redisServer) url() string { return "redis://" + s.addr + "/0" }

// pid returns the server's process ID.
func (s *redisServer) pid() int { return s.cmd.Process.Pid }

// stop shuts the server down with SIGTERM, kills it when it still runs
// after 10 s, and removes its directory. A server that exited before it
// was told to is an error: the run measured a gateway without its Redis.
func (s *redisServer) stop() error {
	defer os.RemoveAll(s.dir)
	select {
	case <-s.exited:
		return errors.New("redis-server exited during the run:\n" + redisLog(s.dir))
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	return nil
}

// redisLog returns the tail of the log of the redis-server in dir, for
// error messages.
func redisLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
