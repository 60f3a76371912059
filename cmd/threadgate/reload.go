package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/threadgate/threadgate/metrics"
	"github.com/threadgate/threadgate/reload"
	"github.com/threadgate/threadgate/rules"
	"github.com/threadgate/threadgate/sandbox"
)

// newRulesManager returns the manager of the rules in force with its first
// rules loaded (and their tests passed). In sandbox mode, with no file
// given and no rules.yaml present, it serves the embedded seed rules, which
// never change (see pickRules).
func newRulesManager(cfg *serveConfig, log *slog.Logger) (*reload.Manager, error) {
	src := pickRules(cfg.RulesPath, cfg.RulesExplicit, cfg.Sandbox())
	opts := reload.Options{
		Logger:       log.With("component", "rules"),
		Watch:        cfg.Watch,
		PollInterval: cfg.WatchInterval,
		ReadFile:     src.Read,
	}
	if src.Embedded {
		log.Info("no rules.yaml here: sandbox mode runs the embedded example rules", "rules", src.Path)
		opts.Watch = reload.WatchOff
	}
	m := reload.NewManager(src.Path, opts)
	return m, m.Reload()
}

// wireReloads tells metrics, and the sandbox's page when there is one,
// about each reload attempt.
func wireReloads(mgr *reload.Manager, m *metrics.Metrics, emu *sandbox.Emulator) {
	mgr.Subscribe(func(f *rules.File) {
		m.ObserveReload(true, f.RuleCount, f.Hash, time.Now())
		m.InitRules(ruleNames(f))
	})
	mgr.SubscribeFailures(func(error) { m.ObserveReload(false, 0, "", time.Now()) })
	if emu != nil {
		mgr.Subscribe(func(*rules.File) { emu.RulesChanged() })
		mgr.SubscribeFailures(func(error) { emu.RulesChanged() })
	}
}

// sandboxRulesInfo is what the sandbox's page shows about the rules: the
// file, its version, and the last reload's errors while the previous rules
// stay in force.
func sandboxRulesInfo(mgr *reload.Manager) func() any {
	return func() any {
		st := mgr.Status()
		return map[string]any{
			"path":       st.Path,
			"hash":       st.Hash,
			"rules":      st.RuleCount,
			"last_error": strings.Join(st.LastError, "\n"),
		}
	}
}

// startReloading runs the manager's watcher until ctx is done, and reloads
// on SIGHUP. The returned function stops both and waits for them.
func startReloading(ctx context.Context, mgr *reload.Manager, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{}, 2)
	go func() { mgr.Run(ctx); done <- struct{}{} }()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the rules file", "path", mgr.Path())
				mgr.Request()
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
		<-done
	}
}
