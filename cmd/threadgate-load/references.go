package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/threadgate/threadgate/messenger"
)

// The references run as child processes of the tool, so that their CPU is
// read from /proc as the gateway's is: the tool re-executes itself with
// roleEnv naming the reference to serve and, for the forwarder, sinkEnv the
// Graph API sink's URL.
const (
	roleEnv = "THREADGATE_LOAD_ROLE"
	sinkEnv = "THREADGATE_LOAD_SINK"
)

// role is a reference the tool's executable serves when re-executed with
// roleEnv set to it.
type role string

const (
	// roleReference serves the bare net/http handler (reference).
	roleReference role = "reference"
	// roleForwarder serves the bare forwarder (forwarder).
	roleForwarder role = "forwarder"
)

// roleMain is the tool's main when the environment names a role: it serves
// that reference until its standard input ends or it receives SIGTERM or
// SIGINT, and returns the process' exit code.
func roleMain(name string) int {
	if err := serveRole(role(name), os.Getenv(sinkEnv), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "threadgate-load (%s process): %v\n", name, err)
		return 1
	}
	return 0
}

// serveRole serves the reference r on a free loopback port, writes its URL
// and a newline to stdout, and serves until stdin ends (the tool closed it,
// or exited) or the process receives SIGTERM or SIGINT. The forwarder
// sends its Graph calls to the sink at sinkURL.
func serveRole(r role, sinkURL string, stdin io.Reader, stdout io.Writer) error {
	var h http.Handler
	var closeHandler func()
	switch r {
	case roleReference:
		h, closeHandler = http.HandlerFunc(reference), func() {}
	case roleForwarder:
		if sinkURL == "" {
			return fmt.Errorf("the forwarder needs the sink's URL in %s", sinkEnv)
		}
		f := newForwarder(sinkURL)
		h, closeHandler = f, f.close
	default:
		return fmt.Errorf("%s=%q: not a reference (%s or %s)", roleEnv, r, roleReference, roleForwarder)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if _, err := fmt.Fprintf(stdout, "http://%s\n", ln.Addr()); err != nil {
		srv.Close()
		return fmt.Errorf("write the address: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	stdinDone := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(stdinDone) }()
	select {
	case <-ctx.Done():
	case <-stdinDone:
	case err := <-served:
		closeHandler()
		return fmt.Errorf("serve: %w", err)
	}
	srv.Close()
	closeHandler()
	return nil
}

// refProcess is a reference served by a child process: the tool's own
// executable, re-executed in a role.
type refProcess struct {
	cmd *exec.Cmd
	// stdin is the child's standard input: closing it stops the child,
	// as the tool's exit does.
	stdin io.Closer
	url   string
	// exited is closed when the process has exited; err is then its Wait
	// error.
	exited chan struct{}
	err    error
}

// startReference starts the tool's executable as the reference r (the
// forwarder sending to the sink at sinkURL) and waits, at most timeout,
// for it to print the URL it serves.
func startReference(r role, sinkURL string, timeout time.Duration) (*refProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable to run the %s: %w", r, err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+string(r), sinkEnv+"="+sinkURL)
	first := &firstLine{line: make(chan string, 1)}
	cmd.Stdout = first
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("the %s's standard input: %w", r, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the %s: %w", r, err)
	}
	p := &refProcess{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	select {
	case line := <-first.line:
		if !strings.HasPrefix(line, "http://127.0.0.1:") {
			p.kill()
			return nil, fmt.Errorf("the %s printed %q, not its loopback URL", r, line)
		}
		p.url = line
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("the %s exited at start: %v", r, p.err)
	case <-time.After(timeout):
		p.kill()
		return nil, fmt.Errorf("the %s did not print its URL within %s", r, timeout)
	}
}

// pid returns the process' ID.
func (p *refProcess) pid() int { return p.cmd.Process.Pid }

// stop closes the process' standard input, which ends it, and waits for
// it to exit, killing it if it still runs after timeout. It returns its
// exit (nil for 0).
func (p *refProcess) stop(timeout time.Duration) error {
	p.stdin.Close()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return errKilledAfterStop
	}
}

// errKilledAfterStop is a reference process' exit when it was still
// running after its standard input closed, and was killed.
var errKilledAfterStop = errors.New("still running after its standard input closed: killed")

// kill kills the process and waits for it to exit.
func (p *refProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// firstLine is a child's standard output: it sends the first line, without
// its newline, on line and discards the rest.
type firstLine struct {
	buf  []byte
	sent bool
	line chan string
}

func (w *firstLine) Write(b []byte) (int, error) {
	if w.sent {
		return len(b), nil
	}
	w.buf = append(w.buf, b...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.line <- string(w.buf[:i])
		w.sent, w.buf = true, nil
	}
	return len(b), nil
}

// reference is the bare handler the gateway is compared with: read the body,
// check the HMAC, answer 200.
func reference(w http.ResponseWriter, r *http.Request) {
	if _, ok := readSigned(w, r); ok {
		io.WriteString(w, "EVENT_RECEIVED")
	}
}

// readSigned reads a webhook's body and checks its signature; on failure
// it has answered 400 or 401 and returns false.
func readSigned(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return nil, false
	}
	if messenger.VerifySignature(body, r.Header.Get("X-Hub-Signature-256"), []byte(secret)) != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// forwarder is the second reference: the least any gateway must do per
// event. It reads the body, checks the HMAC, queues the event and answers
// 200; 64 workers then make one Send API call per event to the sink. No
// decoding, rules, ordering or retries.
type forwarder struct {
	queue  chan []byte
	client *http.Client
	url    string
	wg     sync.WaitGroup
}

func newForwarder(sinkURL string) *forwarder {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 256
	f := &forwarder{queue: make(chan []byte, 10000), client: &http.Client{Transport: t, Timeout: 10 * time.Second},
		url: sinkURL + "/v26.0/me/messages?access_token=load-test-token"}
	for range 64 {
		f.wg.Go(f.work)
	}
	return f
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := readSigned(w, r)
	if !ok {
		return
	}
	select {
	case f.queue <- body:
		io.WriteString(w, "EVENT_RECEIVED")
	default:
		http.Error(w, "queue full", http.StatusServiceUnavailable)
	}
}

func (f *forwarder) work() {
	for range f.queue {
		resp, err := f.client.Post(f.url, "application/json",
			strings.NewReader(`{"recipient":{"id":"1"},"messaging_type":"RESPONSE","message":{"text":"[bot] hello"}}`))
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func (f *forwarder) close() { close(f.queue); f.wg.Wait() }
