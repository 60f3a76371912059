package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/rules"
)

// profileSync applies the rules file's profile section to the Pages after
// each good load, for `serve --apply-profile` (wired in phase 2 of issue
// 14: call Sync after the first load and after every good reload, and show
// Status at GET /-/rules).
//
// It applies once per change: it remembers, per Page, the profile it last
// attempted, so a reload that leaves the profile as it was makes no call,
// and a profile the platform refused is not tried again until the file's
// profile changes (never in a loop; the Messenger Profile API allows 10
// calls per 10 minutes per Page). A transient failure (network, 5xx,
// throttling), which the client already retried, is tried again at the
// next reload. Fields the file does not declare are
// kept (no prune).
type profileSync struct {
	client *messenger.Client
	token  string
	pages  messenger.PageTokens
	log    *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	attempted map[string]string // target label → hash of the profile last attempted
	status    profileSyncStatus
}

// profileSyncStatus is what GET /-/rules shows of the last sync.
type profileSyncStatus struct {
	// At is when the last sync that made calls ended.
	At time.Time `json:"at,omitzero"`
	// Applied names the Pages whose profile was changed then.
	Applied []string `json:"applied,omitempty"`
	// Errors holds the refusals, by Page, without tokens.
	Errors []string `json:"errors,omitempty"`
}

func newProfileSync(client *messenger.Client, token string, pages messenger.PageTokens, log *slog.Logger) *profileSync {
	return &profileSync{client: client, token: token, pages: pages, log: log, now: time.Now, attempted: map[string]string{}}
}

// Sync compares each Page's live profile with the file's and applies the
// plan, once per change of the file's profile. It returns the refusals,
// joined; they are also logged and kept in Status.
func (s *profileSync) Sync(ctx context.Context, f *rules.File) error {
	if !f.Profiles().Declared() {
		return nil
	}
	targets, err := profileTargets(f, s.token, s.pages)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var applied, failed []string
	var errs []error
	called := false
	for _, t := range targets {
		sum, err := json.Marshal(t.want)
		if err != nil {
			return fmt.Errorf("profile of %s: %w", t.label, err)
		}
		h := sha256.Sum256(sum)
		hash := hex.EncodeToString(h[:])
		if s.attempted[t.label] == hash {
			continue
		}
		s.attempted[t.label] = hash
		called = true
		live, err := s.client.GetProfile(ctx, t.pageID, nil)
		if err == nil {
			plan := messenger.PlanProfile(t.want, live, false)
			if plan.Empty() {
				continue
			}
			if err = s.client.ApplyProfilePlan(ctx, t.pageID, plan); err == nil {
				applied = append(applied, t.label)
				s.log.Info("messenger profile applied", "page", t.label, "fields", strings.Join(plan.SetFields, ","))
				continue
			}
		}
		err = fmt.Errorf("%s: %w", t.label, err)
		if messenger.Classify(err) == messenger.ClassTransient {
			// Not a refusal (the client already retried): the next
			// reload may try again.
			delete(s.attempted, t.label)
		}
		s.log.Error("messenger profile not applied", "page", t.label, "error", err.Error())
		failed = append(failed, err.Error())
		errs = append(errs, err)
	}
	if called {
		s.status = profileSyncStatus{At: s.now(), Applied: applied, Errors: failed}
	}
	return errors.Join(errs...)
}

// Status returns the outcome of the last sync that made calls.
func (s *profileSync) Status() profileSyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Applied = append([]string(nil), st.Applied...)
	st.Errors = append([]string(nil), st.Errors...)
	return st
}
