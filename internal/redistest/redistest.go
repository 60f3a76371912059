// Package redistest starts a real redis-server for tests: on a free
// loopback port, in the test's temporary directory, as a child process of
// the test (never a daemon), stopped when the test ends.
//
// When redis-server is not installed the test is skipped with a message
// saying so, except under CI (CI=true), where it fails: CI installs Debian's
// redis-server package (.ci/run), so a missing server there is a defect, not
// a reason to pass.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configure the server a test starts.
type Options struct {
	// AppendFsyncAlways turns on the append-only file with
	// "appendfsync always", so that everything the server acknowledged
	// survives Stop and Restart. Without it the server keeps nothing on
	// disk (no RDB snapshot, no AOF) and a restart starts empty.
	AppendFsyncAlways bool
	// Password, when set, is required by the server (requirepass).
	Password string
}

// Server is a redis-server process started for one test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	opts Options

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Start starts a redis-server for t and stops it when t ends. It skips t
// when redis-server is missing, or fails it under CI=true.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not installed, and CI=true requires it (apt-get install redis-server): %v", err)
		}
		t.Skipf("redis-server is not installed (apt-get install redis-server); skipping a test that needs a real Redis")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), opts: o}
	t.Cleanup(s.kill)
	// Another process may take the free port before redis-server binds
	// it: then try another.
	for attempt := 1; ; attempt++ {
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == 5 || !strings.Contains(s.log(), "Address already in use") {
			t.Fatalf("redistest: %v", err)
		}
	}
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns a redis:// URL of the server, with its password and DB 0.
func (s *Server) URL() string {
	if s.opts.Password != "" {
		return fmt.Sprintf("redis://:%s@%s/0", s.opts.Password, s.Addr())
	}
	return fmt.Sprintf("redis://%s/0", s.Addr())
}

// Stop shuts the server down (SIGTERM, as an operator's restart does) and
// waits for it to exit. Connections to Addr are refused until Restart.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited
	s.cmd = nil
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it
// to exit. With Options.AppendFsyncAlways, what it acknowledged survives.
func (s *Server) Kill() {
	s.t.Helper()
	s.kill()
}

// Restart stops the server if it runs, and starts it again on the same
// port and directory, with the same options.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// start starts redis-server on s.port and waits until it answers.
func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--save", "",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if s.opts.AppendFsyncAlways {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(s.Addr(), s.opts.Password); err == nil {
			break
		} else if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s not answering after 10 s: %v\n%s", s.Addr(), err, s.log())
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited at start: %v\n%s", waitErr, s.log())
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case <-exited: // it could not bind: what answered is another server
		return fmt.Errorf("redis-server exited at start: %v\n%s", waitErr, s.log())
	default:
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// log returns the tail of the server's log, for failure messages.
func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

// freePort returns a loopback TCP port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping sends PING (after AUTH when a password is set) and expects PONG.
func ping(addr, password string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var req bytes.Buffer
	if password != "" {
		fmt.Fprintf(&req, "AUTH %s\r\n", password)
	}
	req.WriteString("PING\r\n")
	if _, err := c.Write(req.Bytes()); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	if password != "" {
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return fmt.Errorf("AUTH answered %q: %v", line, err)
		}
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return errors.New("PING answered " + strconv.Quote(line))
	}
	return nil
}
