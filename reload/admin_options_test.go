package reload

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/threadgate/threadgate/internal/poll"
)

// A reload that hangs (a stuck network mount, say) never holds the caller
// of POST /-/reload past the timeout, and the rules in force keep answering
// events meanwhile.
func TestReloadTimeoutAnswers202(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(twoRuleFile("v0")), 0o644); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var hang atomic.Bool
	m := NewManager(path, Options{ReadFile: func(p string) ([]byte, error) {
		if hang.Load() && p == path {
			<-release
		}
		return os.ReadFile(p)
	}})
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	before := m.Rules()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	MountAdmin(r, m, AdminOptions{ReloadTimeout: 20 * time.Millisecond})
	hang.Store(true)
	if err := os.WriteFile(path, []byte(twoRuleFile("v1")), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/-/reload", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), "still running") {
		t.Fatalf("POST /-/reload during a hung read = %d %s, want 202", rec.Code, rec.Body)
	}
	if m.Rules() != before {
		t.Error("the rules in force changed while the reload hung")
	}
	close(release)
	poll.Until(t, "the reload to finish once the read returned", func() bool { return m.Rules().Rule("second-v1") != nil })
}

// With --apply-profile, GET /-/rules also tells what the last profile sync
// did, so that a refusal of the platform shows where the rules' status is.
func TestRulesStatusShowsProfile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(twoRuleFile("v0")), 0o644); err != nil {
		t.Fatal(err)
	}
	m := NewManager(path, Options{})
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		profile func() any
		want    string
		absent  bool
	}{
		{"without --apply-profile", nil, `"profile"`, true},
		{"with a refusal", func() any { return map[string]any{"errors": []string{"shop: code 100"}} }, `"profile":{"errors":["shop: code 100"]}`, false},
	} {
		r := gin.New()
		MountAdmin(r, m, AdminOptions{Profile: tt.profile})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/-/rules", nil)
		req.RemoteAddr = "127.0.0.1:4000"
		r.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, `"rule_count":3`) || strings.Contains(body, tt.want) == tt.absent {
			t.Errorf("%s: GET /-/rules = %d %s", tt.name, rec.Code, body)
		}
	}
}
