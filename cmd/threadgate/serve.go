package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/metrics"
	"github.com/threadgate/threadgate/reload"
	"github.com/threadgate/threadgate/retry"
	"github.com/threadgate/threadgate/rules"
	"github.com/threadgate/threadgate/sandbox"
	"github.com/threadgate/threadgate/store"
	"github.com/threadgate/threadgate/store/boltstore"
	"github.com/threadgate/threadgate/store/memstore"

	_ "time/tzdata" // business_hours and hour() work in minimal containers too
)

func serve(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseServe(args, os.Getenv, stderr, isTerminal(os.Stderr))
	if err != nil {
		if errors.Is(err, errRefuseUnsigned) {
			fmt.Fprintln(stderr, "threadgate: refusing to start:", err)
			return exitUsage
		}
		if !errors.Is(err, errHelp) {
			fmt.Fprintln(stderr, "threadgate serve:", err)
		}
		return exitUsage
	}
	log, logs := newLogger(stderr, cfg.LogFormat, cfg.LogLevel, cfg.LogFlush)
	defer logs.Close()
	if os.Getenv("GOMEMLIMIT") == "" && cfg.MemoryLimit > 0 {
		// A soft limit: the heap stays near what is live instead of
		// growing to twice it (Go's default), so memory has a ceiling
		// that the container's limit can be set from.
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runServer(ctx, cfg, log, stdout, stderr)
}

// runServer runs the gateway until ctx is done, then drains it.
func runServer(ctx context.Context, cfg *serveConfig, log *slog.Logger, stdout, stderr io.Writer) int {
	// The manager owns the rules in force: it reloads the file when it
	// changes (and on SIGHUP, POST /-/reload), keeping the last good rules.
	mgr, err := newRulesManager(cfg, log)
	if err != nil {
		// No rules are in force yet: a gateway without rules cannot
		// answer, so it does not start (and /readyz never answers 200).
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "threadgate: no rules file, not starting: %v\ngive the rules file with --rules PATH or THREADGATE_RULES\n", err)
		} else {
			fmt.Fprintln(stderr, "threadgate: the rules file is invalid, not starting:")
			printRulesError(stderr, err)
		}
		return exitFailed
	}
	file := mgr.Current()
	rulesNow := mgr.Rules

	var pages messenger.PageTokens
	if !cfg.Sandbox() && cfg.PagesFile != "" {
		if pages, err = messenger.LoadPageTokens(cfg.PagesFile); err != nil {
			fmt.Fprintln(stderr, "threadgate: THREADGATE_PAGES_FILE:", err)
			return exitFailed
		}
		log.Info("page tokens loaded", "pages", len(pages), "default_token", cfg.Token != "")
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "threadgate: cannot listen on %s: %v\n", cfg.Addr, err)
		return exitFailed
	}
	defer ln.Close()
	base := "http://" + loopbackAddr(ln.Addr().(*net.TCPAddr))
	// The server starts once the gateway is ready, or at once with a
	// "waiting" handler while Redis is waited for at start.
	handler := &switchHandler{}
	handler.set(waitingForRedis())
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	serveErr := make(chan error, 1)
	var serveOnce sync.Once
	startServing := func() { serveOnce.Do(func() { go func() { serveErr <- srv.Serve(ln) }() }) }
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // a no-op after the graceful shutdown below
	}()

	m := metrics.New(metrics.Options{})
	var fl *fleet
	var st store.Store
	if cfg.RedisURL != "" {
		fl, err = openFleet(ctx, cfg, log, m, startServing)
		if errors.Is(err, errStopped) {
			log.Info("stopped")
			return exitOK
		}
		if err != nil {
			fmt.Fprintln(stderr, "threadgate: refusing to start:", err)
			return exitUsage
		}
		st = fl.store
	} else if st, err = openStore(cfg, log); err != nil {
		fmt.Fprintln(stderr, "threadgate: refusing to start:", err)
		return exitUsage
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "error", err.Error())
		}
	}()
	if fl != nil {
		// Deferred after Close, so run before it: leave the fleet, then
		// close the store.
		defer fl.stop(log)
	}

	token, secret, appID, graphURL := cfg.Token, []byte(cfg.AppSecret), cfg.AppID, cfg.GraphURL
	var emu *sandbox.Emulator
	if cfg.Sandbox() {
		token, secret = randomHex(16), []byte(randomHex(32))
		emu = sandbox.New(sandbox.Options{
			Token:      token,
			AppSecret:  secret,
			Apps:       func() map[string]string { return mgr.Current().Set.Apps() },
			WebhookURL: base + "/webhook",
			Logger:     log.With("component", "sandbox"),
			RulesInfo:  sandboxRulesInfo(mgr),
		})
		appID = emu.BotAppID()
		graphURL = emu.GraphURL(base)
	}
	client := messenger.NewClient(messenger.Options{
		BaseURL:   graphURL,
		Tokens:    pageTokens(token, pages),
		AppSecret: secret,
		Logger:    log.With("component", "graph"),
		Observe:   m.ObserveGraphCall,
		// At most a quick second try inside a call: the gateway retries
		// for --retry-for, without holding a worker.
		MaxAttempts: 2,
		BaseBackoff: 100 * time.Millisecond,
		MaxBackoff:  250 * time.Millisecond,
	})
	policy := retry.DefaultPolicy()
	policy.Budget = cfg.RetryFor
	gcfg := gateway.Config{
		Rules:        rulesNow,
		Platform:     client,
		VerifyToken:  cfg.VerifyToken,
		AppID:        appID,
		Store:        st,
		QueueSize:    cfg.QueueSize,
		QueueBytes:   cfg.QueueBytes,
		Retry:        policy,
		Workers:      cfg.Workers,
		Logger:       log,
		LogSenderIDs: cfg.LogSenderIDs,
		Observer:     m,

		TrustedProxies: cfg.TrustedProxies,
	}
	gcfg.Backlog, gcfg.AdmitWait = cfg.Backlog, cfg.AdmitWait
	if cfg.AdmitWait == 0 {
		gcfg.Backlog = -1 // no pacing
	}
	if fl != nil {
		gcfg.Source = fl.src
	}
	if len(secret) > 0 {
		gcfg.Secrets = [][]byte{secret}
		if emu == nil && cfg.AppSecretPrevious != "" {
			gcfg.Secrets = append(gcfg.Secrets, []byte(cfg.AppSecretPrevious))
		}
	}
	if emu != nil {
		gcfg.OnHandled = emu.Record
		gcfg.Explain = true
	}
	gw := gateway.New(gcfg)
	if err := m.WatchQueue(gw.Queue(), cfg.QueueSize); err != nil {
		log.Error("metrics", "error", err.Error())
	}
	if err := m.WatchStore(st); err != nil {
		log.Error("metrics", "error", err.Error())
	}
	m.ObserveReload(true, len(file.Set.Rules()), file.Hash, time.Now())
	m.InitRules(ruleNames(file))
	wireReloads(mgr, m, emu)
	router := gw.Router()
	router.GET("/metrics", gin.WrapH(m.Handler()))
	adminOpts := reload.AdminOptions{AllowRemote: cfg.AllowRemoteAdmin}
	if cfg.ApplyProfile || emu != nil {
		// The sandbox's emulator is the Page: the playground shows the
		// file's welcome screen and menu without a flag.
		ps := newProfileSync(client, token, pages, log.With("component", "profile"))
		stopProfile := runProfileSync(ps, mgr, file)
		defer stopProfile()
		adminOpts.Profile = func() any { return ps.Status() }
	}
	reload.MountAdmin(router, mgr, adminOpts)
	gw.MountDeadLetters(router, reload.LocalOnly(cfg.AllowRemoteAdmin))
	if emu != nil {
		emu.Mount(router)
	} else {
		router.GET("/", func(c *gin.Context) {
			c.String(http.StatusOK, "threadgate: a Messenger webhook gateway. Facebook posts to /webhook; health at /healthz and /readyz; metrics at /metrics.\n")
		})
	}

	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	if err := gw.Start(workCtx); err != nil {
		ln.Close()
		fmt.Fprintln(stderr, "threadgate:", err)
		return exitFailed
	}
	stopReloading := startReloading(ctx, mgr, log)
	defer stopReloading()
	if emu != nil {
		srv.RegisterOnShutdown(emu.Close)
	}
	handler.set(router)
	startServing()

	log.Info("threadgate started", "addr", ln.Addr().String(), "rules", file.Path, "rule_count", len(file.Set.Rules()), "sandbox", cfg.Sandbox(), "version", versionString())
	if emu != nil {
		fmt.Fprintf(stdout, "threadgate is running in sandbox mode (no Facebook account needed).\nOpen %s/ to chat with the bot.\n", base)
	}

	select {
	case err := <-serveErr:
		log.Error("server stopped", "error", err.Error())
		return exitFailed
	case <-ctx.Done():
	}
	log.Info("shutting down: no new webhooks; finishing queued events", "grace", cfg.Grace.String(), "queued", gw.Queue().Len())
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.Grace)
	defer cancel()
	_ = srv.Shutdown(graceCtx)
	if err := gw.Drain(graceCtx); err != nil {
		// What did not finish is in the store (with --data-dir, handled
		// after the next start) or was logged by mid (without).
		log.Warn("grace period over: the events not handled were left", "data_dir", cfg.DataDir != "", "redis", cfg.RedisURL != "")
	}
	log.Info("stopped")
	return exitOK
}

// openStore opens the store of --data-dir, or a memory store without it.
// A data dir that is locked, unwritable or corrupt is an error, never a
// fall-back to memory.
func openStore(cfg *serveConfig, log *slog.Logger) (store.Store, error) {
	limits := store.Limits{MaxPending: cfg.QueueSize, MaxPendingBytes: cfg.QueueBytes}
	if cfg.DataDir == "" {
		log.Info("no --data-dir: accepted events are kept in memory and lost if the process dies")
		return memstore.New(store.Options{Limits: limits}), nil
	}
	s, err := boltstore.Open(cfg.DataDir, boltstore.Options{Options: store.Options{Limits: limits}})
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	log.Info("store opened", "data_dir", cfg.DataDir)
	return s, nil
}

// loopbackAddr is the address at which this process reaches its own listener.
func loopbackAddr(a *net.TCPAddr) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ruleNames(f *rules.File) []string {
	names := make([]string, len(f.Set.Rules()))
	for i, r := range f.Set.Rules() {
		names[i] = r.Name
	}
	return names
}

// pageTokens is the token source of the Graph API client: each Page of the
// pages file gets its own token, any other Page the single token (when
// set). A Page of the file never gets another Page's token.
func pageTokens(token string, pages messenger.PageTokens) messenger.TokenSource {
	if len(pages) == 0 {
		return messenger.StaticToken(token)
	}
	return messenger.PagesAndDefault{Pages: pages, Default: token}
}
