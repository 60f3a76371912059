package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/internal/logbuf"
	"github.com/threadgate/threadgate/reload"
	"github.com/threadgate/threadgate/retry"
	"github.com/threadgate/threadgate/store/redisstore"
)

// defaultGraphURL is the Graph API base with the pinned version.
const defaultGraphURL = "https://graph.facebook.com/v26.0"

// serveConfig is everything `serve` reads from flags and the environment.
type serveConfig struct {
	RulesPath     string
	RulesExplicit bool // --rules or THREADGATE_RULES was given
	Addr          string
	Token         string
	PagesFile     string // THREADGATE_PAGES_FILE: page ID → token
	AppSecret     string
	// AppSecretPrevious also verifies webhook signatures while the app
	// secret is rotated.
	AppSecretPrevious string
	VerifyToken       string
	AppID             string
	GraphURL          string
	LogFormat         string
	LogLevel          slog.Level
	// LogFlush is how long log lines below warn may be held before they
	// are written (--log-flush; 0: each at once).
	LogFlush     time.Duration
	LogSenderIDs bool
	Insecure     bool
	Grace        time.Duration
	QueueSize    int
	// QueueBytes bounds the bytes of the events accepted and not yet
	// handled (--queue-bytes).
	QueueBytes int64
	Workers    int
	// Backlog and AdmitWait pace the intake to the workers (--backlog,
	// --admit-wait; AdmitWait 0: no pacing).
	Backlog   int
	AdmitWait time.Duration
	// DataDir is where the embedded store keeps the accepted events, the
	// dead letters, the dedup keys and the conversation states; "" keeps
	// them in memory.
	DataDir string
	// RedisURL makes every replica that names the same Redis one gateway
	// (--redis-url); "" runs alone, in memory or on DataDir.
	RedisURL string
	// RetryFor is how long a failing step is retried (--retry-for).
	RetryFor time.Duration
	// Watch is how a change of the rules file is noticed: fs, poll or off.
	Watch reload.WatchMode
	// WatchInterval is the content-hash poll's interval (0: the default
	// of the watch mode).
	WatchInterval time.Duration
	// AllowRemoteAdmin lets other machines use the /-/ endpoints.
	AllowRemoteAdmin bool
	// MemoryLimit is the soft memory limit of the Go runtime, in bytes (0:
	// none); GOMEMLIMIT, when set, wins.
	MemoryLimit int64
	// ApplyProfile applies the rules file's profile section to the Pages
	// at start and after each good reload (always on in sandbox mode).
	ApplyProfile bool
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client in logs (none by default).
	TrustedProxies []string
}

// Sandbox reports whether serve runs against the embedded emulator: no
// page token is given, neither PAGE_ACCESS_TOKEN nor a pages file.
func (c *serveConfig) Sandbox() bool { return c.Token == "" && c.PagesFile == "" }

// parseServe reads flags and the environment (getenv) into a serveConfig.
func parseServe(args []string, getenv func(string) string, stderr io.Writer, isTerminal bool) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rulesDefault := getenv("THREADGATE_RULES")
	c.RulesExplicit = rulesDefault != ""
	if rulesDefault == "" {
		rulesDefault = defaultRulesPath
	}
	addrDefault := getenv("THREADGATE_ADDR")
	if addrDefault == "" {
		if p := getenv("PORT"); p != "" {
			addrDefault = ":" + p
		} else {
			addrDefault = ":8080"
		}
	}
	fs.StringVar(&c.RulesPath, "rules", rulesDefault, "rules file (env THREADGATE_RULES)")
	fs.StringVar(&c.Addr, "addr", addrDefault, "listen address HOST:PORT (env THREADGATE_ADDR, or :$PORT)")
	fs.BoolVar(&c.Insecure, "insecure-skip-signature", false, "accept unsigned webhooks when PAGE_ACCESS_TOKEN is set and APP_SECRET is not (never in production)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFlushDefault, err := envDuration(getenv, "THREADGATE_LOG_FLUSH", 100*time.Millisecond)
	if err != nil {
		return nil, err
	}
	fs.DurationVar(&c.LogFlush, "log-flush", logFlushDefault, "how long info and debug lines may be held to be written together (a warning or an error writes everything at once); 0: every line at once (env THREADGATE_LOG_FLUSH)")
	fs.BoolVar(&c.LogSenderIDs, "log-sender-ids", false, "log raw sender IDs instead of a short hash (debugging only)")
	fs.DurationVar(&c.Grace, "grace", 10*time.Second, "on SIGTERM/SIGINT, how long queued events may take to finish")
	fs.IntVar(&c.QueueSize, "queue-size", 10000, "events accepted and not yet handled, at most; beyond it webhooks get 503")
	queueBytesDefault := int64(gateway.DefaultQueueBytes)
	if v := getenv("THREADGATE_QUEUE_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("THREADGATE_QUEUE_BYTES: %q is not a number of bytes", v)
		}
		queueBytesDefault = n
	}
	fs.Int64Var(&c.QueueBytes, "queue-bytes", queueBytesDefault, "bytes of the events accepted and not yet handled, at most (at least 1 MiB, the largest webhook); beyond it webhooks get 503 (env THREADGATE_QUEUE_BYTES)")
	fs.StringVar(&c.DataDir, "data-dir", getenv("THREADGATE_DATA_DIR"), "directory of the embedded database that keeps accepted events, their progress, dead letters, dedup keys and conversation states across restarts; empty: memory, lost when the process stops (env THREADGATE_DATA_DIR)")
	fs.StringVar(&c.RedisURL, "redis-url", getenv("THREADGATE_REDIS_URL"), "Redis that keeps accepted events, their progress, dead letters, dedup keys and conversation states for every replica that names it, so that several replicas run as one gateway: redis://[:PASSWORD@]HOST:PORT/DB or rediss:// for TLS; not with --data-dir (env THREADGATE_REDIS_URL)")
	retryForDefault, err := envDuration(getenv, "THREADGATE_RETRY_FOR", retry.DefaultBudget)
	if err != nil {
		return nil, err
	}
	fs.DurationVar(&c.RetryFor, "retry-for", retryForDefault, "how long a Graph API call that fails for a transient reason or a rate limit is retried before its event becomes a dead letter (env THREADGATE_RETRY_FOR)")
	fs.IntVar(&c.Workers, "workers", 64, "events handled at once (of different users)")
	fs.IntVar(&c.Backlog, "backlog", 0, "events waiting or being handled past which a webhook waits for room (at most --admit-wait) before it is stored and answered; 0: 4 × --workers")
	fs.DurationVar(&c.AdmitWait, "admit-wait", gateway.DefaultAdmitWait, "how long a webhook waits for room in the backlog before it is accepted all the same (up to --queue-size); 0: no pacing, every webhook is accepted at once")
	watchDefault := getenv("THREADGATE_WATCH")
	if watchDefault == "" {
		watchDefault = string(reload.WatchFS)
	}
	watch := fs.String("watch", watchDefault, "how to notice that the rules file changed: fs (watch its directory), poll (read it every --watch-interval; for mounts that send no file events), off (only SIGHUP and POST /-/reload) (env THREADGATE_WATCH)")
	fs.DurationVar(&c.WatchInterval, "watch-interval", 0, "how often to read the rules file for changes: the safety net of --watch=fs (default 30s), the only trigger of --watch=poll (default 5s)")
	fs.BoolVar(&c.AllowRemoteAdmin, "allow-remote-admin", false, "let other machines use the /-/ admin endpoints (by default only callers on this machine may)")
	fs.BoolVar(&c.ApplyProfile, "apply-profile", getenv("THREADGATE_APPLY_PROFILE") == "true", "apply the rules file's profile section (Get Started, greeting, ice breakers, persistent menu) to the Pages at start and after each good reload, once per change; fields the file leaves out are kept (env THREADGATE_APPLY_PROFILE=true; always on in sandbox mode)")
	memDefault := getenv("THREADGATE_MEMORY_LIMIT")
	if memDefault == "" {
		memDefault = "96MiB"
	}
	memLimit := fs.String("memory-limit", memDefault, "soft limit of the memory the Go runtime keeps (e.g. 96MiB, 1GiB; 0: none): past it the garbage collector works harder instead of letting the heap double; set about 3/4 of the container's limit; GOMEMLIMIT, when set, wins (env THREADGATE_MEMORY_LIMIT)")
	proxiesDefault := getenv("THREADGATE_TRUSTED_PROXIES")
	proxies := fs.String("trusted-proxies", proxiesDefault, "comma-separated IP addresses or CIDR ranges of the proxies in front of threadgate, whose X-Forwarded-For names the client in logs; none by default: the connection's address is the client (env THREADGATE_TRUSTED_PROXIES)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: threadgate serve [flags]\n\nRuns the gateway. Without PAGE_ACCESS_TOKEN (or THREADGATE_PAGES_FILE) it runs in sandbox mode against an embedded\nemulator of the Messenger Platform and serves a playground at /.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "rules" {
			c.RulesExplicit = true
		}
	})
	if err = c.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	if c.MemoryLimit, err = parseBytes(*memLimit); err != nil {
		return nil, fmt.Errorf("--memory-limit: %w", err)
	}
	if c.TrustedProxies, err = gateway.ParseTrustedProxies(*proxies); err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	w, err := reload.ParseWatchMode(*watch)
	if err != nil {
		return nil, fmt.Errorf("--watch: %w", err)
	}
	c.Watch = w
	if c.QueueSize < 1 {
		return nil, fmt.Errorf("--queue-size: %d, want at least 1", c.QueueSize)
	}
	if c.QueueBytes < gateway.MaxBodyBytes {
		return nil, fmt.Errorf("--queue-bytes: %d is less than 1 MiB (%d), the largest webhook body, which could then never be accepted", c.QueueBytes, gateway.MaxBodyBytes)
	}
	if c.RedisURL != "" {
		if c.DataDir != "" {
			return nil, errors.New("--redis-url and --data-dir are both set: give one store, Redis for several replicas or a data dir for one (THREADGATE_REDIS_URL, THREADGATE_DATA_DIR)")
		}
		if err := redisstore.CheckURL(c.RedisURL); err != nil {
			return nil, fmt.Errorf("--redis-url: %w", err)
		}
	}
	if c.Backlog < 0 {
		return nil, fmt.Errorf("--backlog: %d is negative", c.Backlog)
	}
	if c.AdmitWait < 0 || c.AdmitWait >= 5*time.Second {
		return nil, fmt.Errorf("--admit-wait: %s, want 0 up to under 5s (Facebook waits 5 s for an answer)", c.AdmitWait)
	}
	if c.LogFlush < 0 || c.LogFlush > 10*time.Second {
		return nil, fmt.Errorf("--log-flush: %s, want 0 up to 10s", c.LogFlush)
	}
	if c.RetryFor < 0 {
		return nil, fmt.Errorf("--retry-for: %s is negative", c.RetryFor)
	}
	if c.WatchInterval < 0 {
		return nil, fmt.Errorf("--watch-interval: %s is negative", c.WatchInterval)
	}
	c.Token = getenv("PAGE_ACCESS_TOKEN")
	c.AppSecret = getenv("APP_SECRET")
	c.PagesFile = getenv("THREADGATE_PAGES_FILE")
	c.AppSecretPrevious = getenv("APP_SECRET_PREVIOUS")
	if c.AppSecretPrevious != "" && c.AppSecret == "" {
		return nil, errors.New("APP_SECRET_PREVIOUS is set but APP_SECRET is not: set APP_SECRET to the new secret, APP_SECRET_PREVIOUS to the old one while Facebook switches over")
	}
	c.VerifyToken = getenv("VERIFY_TOKEN")
	c.AppID = getenv("APP_ID")
	c.GraphURL = strings.TrimRight(getenv("GRAPH_API_URL"), "/")
	if c.GraphURL == "" {
		c.GraphURL = defaultGraphURL
	}
	c.LogFormat = getenv("THREADGATE_LOG_FORMAT")
	switch c.LogFormat {
	case "json", "text":
	case "":
		c.LogFormat = "json"
		if isTerminal {
			c.LogFormat = "text"
		}
	default:
		return nil, fmt.Errorf("THREADGATE_LOG_FORMAT must be json or text, got %q", c.LogFormat)
	}
	if c.RedisURL != "" && c.Sandbox() {
		return nil, errors.New("--redis-url needs PAGE_ACCESS_TOKEN (or THREADGATE_PAGES_FILE): the sandbox's emulated Messenger lives inside one process, so replicas sharing Redis cannot share it")
	}
	if !c.Sandbox() && c.AppSecret == "" && !c.Insecure {
		return nil, errRefuseUnsigned
	}
	return c, nil
}

// envDuration is the duration in the environment variable name, or def
// when it is unset.
func envDuration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

// errHelp is returned when -h was asked for; usage has been printed.
var errHelp = flag.ErrHelp

var errRefuseUnsigned = errors.New("PAGE_ACCESS_TOKEN is set but APP_SECRET is not: webhooks could not be verified and anyone could drive the bot.\n" +
	"Set APP_SECRET (App Dashboard → Settings → Basic → App Secret), or pass --insecure-skip-signature for a local test")

// newLogger builds the process logger, writing to w through a buffer that
// holds info and debug lines for at most flush (logbuf); close the
// returned writer before the process exits.
func newLogger(w io.Writer, format string, level slog.Level, flush time.Duration) (*slog.Logger, *logbuf.Writer) {
	lw := logbuf.New(w, flush, 0)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(lw, opts)
	if format == "text" {
		h = slog.NewTextHandler(lw, opts)
	}
	return slog.New(logbuf.Handler(h, lw)), lw
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// parseBytes reads a size such as 96MiB, 1GiB, 512KiB or a number of bytes.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size such as 96MiB, 1GiB or a number of bytes", s)
	}
	return n * mult, nil
}
