package main

import (
	"context"

	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/gin-gonic/gin"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/threadgate/threadgate/engine"
	"github.com/threadgate/threadgate/examples"
	"github.com/threadgate/threadgate/gateway"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/metrics"
	"github.com/threadgate/threadgate/rules"
	"github.com/threadgate/threadgate/sandbox"

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
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runServer(ctx, cfg, log, stdout, stderr)
}

// loadRules loads the rules file; in sandbox mode, with no file given and no
// rules.yaml present, it falls back to the embedded seed rules.
func loadRules(cfg *serveConfig, log *slog.Logger) (*rules.File, error) {
	f, err := rules.Load(cfg.RulesPath)
	if err != nil && cfg.Sandbox() && !cfg.RulesExplicit && errors.Is(err, fs.ErrNotExist) {
		log.Info("no rules.yaml here: sandbox mode runs the embedded example rules", "rules", examples.DefaultRulesName)
		return rules.Parse(examples.DefaultRulesName, examples.DefaultRules)
	}
	return f, err
}

// runServer runs the gateway until ctx is done, then drains it.
func runServer(ctx context.Context, cfg *serveConfig, log *slog.Logger, stdout, stderr io.Writer) int {
	file, err := loadRules(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "threadgate: the rules file is invalid, not starting:")
		printRulesError(stderr, err)
		return exitFailed
	}
	var current atomic.Pointer[rules.File]
	current.Store(file)
	rulesNow := func() *engine.Set {
		if f := current.Load(); f != nil {
			return f.Set
		}
		return nil
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "threadgate: cannot listen on %s: %v\n", cfg.Addr, err)
		return exitFailed
	}
	base := "http://" + loopbackAddr(ln.Addr().(*net.TCPAddr))

	token, secret, appID, graphURL := cfg.Token, []byte(cfg.AppSecret), cfg.AppID, cfg.GraphURL
	var emu *sandbox.Emulator
	if cfg.Sandbox() {
		token, secret = randomHex(16), []byte(randomHex(32))
		emu = sandbox.New(sandbox.Options{
			Token:      token,
			AppSecret:  secret,
			Apps:       func() map[string]string { return current.Load().Set.Apps },
			WebhookURL: base + "/webhook",
			Logger:     log.With("component", "sandbox"),
			RulesInfo: func() any {
				f := current.Load()
				return map[string]any{"path": f.Path, "hash": f.Hash, "rules": len(f.Set.Rules)}
			},
		})
		appID = emu.BotAppID()
		graphURL = emu.GraphURL(base)
	}
	m := metrics.New(metrics.Options{})
	client := messenger.NewClient(messenger.Options{
		BaseURL:   graphURL,
		Tokens:    messenger.StaticToken(token),
		AppSecret: secret,
		Logger:    log.With("component", "graph"),
		Observe:   m.ObserveGraphCall,
	})
	gcfg := gateway.Config{
		Rules:        rulesNow,
		Platform:     client,
		VerifyToken:  cfg.VerifyToken,
		AppID:        appID,
		QueueSize:    cfg.QueueSize,
		Workers:      cfg.Workers,
		Logger:       log,
		LogSenderIDs: cfg.LogSenderIDs,
		Observer:     m,
	}
	if len(secret) > 0 {
		gcfg.Secrets = [][]byte{secret}
	}
	if emu != nil {
		gcfg.OnHandled = emu.Record
		gcfg.Explain = true
	}
	gw := gateway.New(gcfg)
	if err := m.WatchQueue(gw.Queue(), cfg.QueueSize); err != nil {
		log.Error("metrics", "error", err.Error())
	}
	m.ObserveReload(true, len(file.Set.Rules), file.Hash, time.Now())
	m.InitRules(ruleNames(file))
	router := gw.Router()
	router.GET("/metrics", gin.WrapH(m.Handler()))
	if emu != nil {
		emu.Mount(router)
	} else {
		router.GET("/", func(c *gin.Context) {
			c.String(http.StatusOK, "threadgate: a Messenger webhook gateway. Facebook posts to /webhook; health at /healthz and /readyz; metrics at /metrics.\n")
		})
	}

	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	gw.Start(workCtx)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	if emu != nil {
		srv.RegisterOnShutdown(emu.Close)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	log.Info("threadgate started", "addr", ln.Addr().String(), "rules", file.Path, "rule_count", len(file.Set.Rules), "sandbox", cfg.Sandbox(), "version", versionString())
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
		log.Error("grace period over: events still queued were not handled", "queued", gw.Queue().Len())
		cancelWork()
		return exitFailed
	}
	log.Info("stopped cleanly")
	return exitOK
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
	names := make([]string, len(f.Set.Rules))
	for i, r := range f.Set.Rules {
		names[i] = r.Name
	}
	return names
}
