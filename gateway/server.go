package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/threadgate/threadgate/messenger"
	"github.com/threadgate/threadgate/store"
)

// Router returns a gin engine serving the webhook, /healthz and /readyz.
// Callers add their own routes (metrics, reload, sandbox) to it.
func (g *Gateway) Router() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// The client address that logs show is the connection's, unless the
	// request came through one of the trusted proxies: gin would otherwise
	// believe any X-Forwarded-For. The addresses were checked by
	// ParseTrustedProxies, so this cannot fail.
	_ = r.SetTrustedProxies(g.cfg.TrustedProxies)
	r.Use(gin.Recovery())
	r.GET("/webhook", g.verifySubscription)
	r.POST("/webhook", g.receiveWebhook)
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/readyz", func(c *gin.Context) {
		if g.cfg.Rules == nil || g.cfg.Rules() == nil {
			c.String(http.StatusServiceUnavailable, "no valid rules loaded")
			return
		}
		if p, ok := g.store.(Pinger); ok {
			// A shared store (Redis) can go away while nothing is
			// written: ask it at every probe.
			if err := p.Ping(c.Request.Context()); err != nil {
				g.storeDown.Store(true)
				c.String(http.StatusServiceUnavailable, "the store fails")
				return
			}
			g.storeUp()
		} else if g.storeDown.Load() {
			// Ask the store again: ready as soon as it answers.
			if _, err := g.store.Stats(c.Request.Context()); err != nil {
				c.String(http.StatusServiceUnavailable, "the store fails")
				return
			}
			g.storeUp()
		}
		c.String(http.StatusOK, "ready")
	})
	return r
}

// verifySubscription answers Facebook's subscription handshake.
func (g *Gateway) verifySubscription(c *gin.Context) {
	mode := c.Query("hub.mode")
	token := c.Query("hub.verify_token")
	if mode != "subscribe" || g.cfg.VerifyToken == "" ||
		subtle.ConstantTimeCompare([]byte(token), []byte(g.cfg.VerifyToken)) != 1 {
		g.log.Warn("webhook subscription refused", "mode", mode)
		c.String(http.StatusForbidden, "forbidden")
		return
	}
	g.log.Info("webhook subscription verified")
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(c.Query("hub.challenge")))
}

// receiveWebhook verifies, decodes, stores and queues one webhook POST. It
// answers as soon as the events are stored, never after the Graph calls
// they cause.
func (g *Gateway) receiveWebhook(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			g.reject(c, http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body over 1 MiB")
			return
		}
		g.reject(c, http.StatusBadRequest, OutcomeMalformed, "could not read body")
		return
	}
	if len(g.cfg.Secrets) > 0 {
		if err := messenger.VerifySignature(body, c.GetHeader("X-Hub-Signature-256"), g.cfg.Secrets...); err != nil {
			g.reject(c, http.StatusUnauthorized, OutcomeBadSignature, err.Error())
			return
		}
	}
	w, err := messenger.Decode(body)
	if err != nil {
		g.reject(c, http.StatusBadRequest, OutcomeMalformed, err.Error())
		return
	}
	if w.Object != "page" && w.Object != "instagram" {
		g.reject(c, http.StatusNotFound, OutcomeWrongObject, "object is not page or instagram")
		return
	}
	events := w.Events()
	batch := make([]store.NewEvent, 0, len(events))
	decoded := make([]messenger.Incoming, 0, len(events))
	for _, in := range events {
		kind := in.Event.Kind()
		if !queued(kind) {
			g.log.Debug("event skipped", "kind", string(kind), "standby", in.Standby)
			continue
		}
		b, err := encodeIncoming(in)
		if err != nil {
			g.reject(c, http.StatusBadRequest, OutcomeMalformed, err.Error())
			return
		}
		batch = append(batch, store.NewEvent{Lane: in.PageID.String() + "/" + userOf(in.Event), Body: b})
		decoded = append(decoded, in)
	}
	if status, outcome, why := g.accept(c.Request.Context(), batch, decoded); status != http.StatusOK {
		g.reject(c, status, outcome, why)
		return
	}
	// Events are counted once accepted, so a refused request that Facebook
	// delivers again is not counted twice.
	for _, in := range events {
		g.obs.Event(string(in.Event.Kind()), in.Standby)
	}
	g.obs.WebhookRequest(OutcomeAccepted)
	ack(c)
}

// accept stores a webhook's events (all or none) and queues them. It
// answers 200 only once they are in the store: 503 while shutting down,
// when the store is full (Facebook delivers again later), or when it fails.
// decoded holds the batch's events as decoded (decoded[i] is batch[i]): the
// queue keeps them, so that a worker does not decode what was just encoded.
func (g *Gateway) accept(ctx context.Context, batch []store.NewEvent, decoded []messenger.Incoming) (status int, outcome, why string) {
	if len(batch) > 0 {
		// Pace the intake to the workers: past the backlog, wait for room
		// (at most AdmitWait), then accept all the same. In a fleet the
		// backlog is this replica's deliveries, a share of the fleet's.
		reserved, _ := g.queue.Admit(ctx, len(batch), g.cfg.AdmitWait)
		defer g.queue.Release(reserved)
	}
	g.intake.RLock()
	defer g.intake.RUnlock()
	if g.closing {
		return http.StatusServiceUnavailable, OutcomeQueueFull, "shutting down"
	}
	if len(batch) == 0 {
		return http.StatusOK, "", ""
	}
	stored, err := g.store.Append(ctx, batch)
	switch {
	case errors.Is(err, store.ErrFull):
		return http.StatusServiceUnavailable, OutcomeQueueFull, err.Error()
	case err != nil && ctx.Err() != nil:
		// The client went away: nothing was stored, the store is fine.
		return http.StatusServiceUnavailable, OutcomeStoreFailed, err.Error()
	case err != nil:
		g.storeDown.Store(true)
		return http.StatusServiceUnavailable, OutcomeStoreFailed, err.Error()
	}
	g.storeUp()
	if g.cfg.Source != nil {
		// The replica that holds the events' lanes (maybe this one)
		// gets them from its source.
		return http.StatusOK, "", ""
	}
	var buf [4]Job // most webhooks carry one event: no slice to allocate
	jobs := buf[:0]
	for i, ev := range stored {
		pe := &pendingEvent{Event: ev, in: &decoded[i]}
		// The store keeps the body; the queue keeps the event decoded.
		pe.Body = nil
		jobs = append(jobs, Job{Key: ev.Lane, Value: pe, Enqueued: ev.Accepted})
	}
	if err := g.queue.Push(jobs...); err != nil {
		// Not reached: the queue closes only under the intake lock. The
		// events are in the store and run after the next start.
		return http.StatusServiceUnavailable, OutcomeQueueFull, err.Error()
	}
	return http.StatusOK, "", ""
}

func (g *Gateway) reject(c *gin.Context, status int, outcome, why string) {
	g.obs.WebhookRequest(outcome)
	g.log.Warn("webhook rejected", "status", status, "outcome", outcome, "reason", why, "remote", c.ClientIP())
	c.String(status, http.StatusText(status))
}

// queued reports whether events of a kind go to the queue: messages and
// echoes, postbacks and handover events do; deliveries, reads and the rest
// trigger nothing.
func queued(k messenger.EventKind) bool {
	switch k {
	case messenger.KindMessage, messenger.KindEcho, messenger.KindPostback,
		messenger.KindPassThreadControl, messenger.KindTakeThreadControl, messenger.KindRequestThreadControl:
		return true
	}
	return false
}

// ParseTrustedProxies checks a comma-separated list of proxy addresses or
// CIDR ranges (--trusted-proxies) and returns them for
// Config.TrustedProxies. An empty list trusts no proxy.
func ParseTrustedProxies(list string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			return nil, fmt.Errorf("trusted proxies: %q is neither an IP address nor a CIDR range such as 10.0.0.0/8", p)
		}
		out = append(out, p)
	}
	return out, nil
}
