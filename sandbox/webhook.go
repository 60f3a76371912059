package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/threadgate/threadgate/messenger"
)

// Webhook channels: the entry array an event is delivered in.
const (
	channelMessaging = "messaging"
	channelStandby   = "standby"
)

// delivery is the outcome of POSTing one webhook to the gateway.
type delivery struct {
	// Status is the gateway's HTTP status; 0 when the request failed.
	Status   int
	Response string
	Err      error
}

// ok reports whether the gateway accepted the webhook.
func (d delivery) ok() bool { return d.Err == nil && d.Status >= 200 && d.Status < 300 }

// queueWebhook sends one event to the gateway as a webhook of its own, on
// the messaging or standby channel. Webhooks are delivered one at a time in
// the order queued, so the gateway sees events in the order they happened;
// the returned channel gets the outcome. It stamps the event and must be
// called with e.mu held; the delivery itself runs without the lock.
func (e *Emulator) queueWebhook(user, channel string, ev messenger.Event) <-chan delivery {
	ts := e.timestamp()
	ev.Timestamp = messenger.Timestamp(ts)
	entry := messenger.Entry{ID: messenger.ID(e.opt.PageID), Time: messenger.Timestamp(ts)}
	if channel == channelStandby {
		entry.Standby = []messenger.Event{ev}
	} else {
		entry.Messaging = []messenger.Event{ev}
	}
	body, err := json.Marshal(messenger.Webhook{Object: "page", Entry: []messenger.Entry{entry}})
	res := make(chan delivery, 1)
	if err != nil { // cannot happen with these types; never panic on it
		res <- delivery{Err: fmt.Errorf("encoding webhook: %w", err)}
		return res
	}
	kind := string(ev.Kind())
	echo := ev.Message != nil && ev.Message.IsEcho
	if echo {
		kind = "platform echo"
	}
	id := e.nextSeq()
	e.addLog(LogEntry{Seq: id, Kind: LogWebhook, User: user, Summary: kind + " on " + channel + " → pending", Echo: echo,
		Webhook: &WebhookLog{Channel: channel, Event: string(ev.Kind()), Body: body}})
	prev, done := e.tail, make(chan struct{})
	e.tail = done
	go func() {
		<-prev
		d := e.post(body)
		close(done)
		e.mu.Lock()
		e.updateLog(id, func(l *LogEntry) {
			l.Webhook.Status, l.Webhook.Response = d.Status, d.Response
			switch {
			case d.Err != nil:
				l.Summary = kind + " on " + channel + " → failed"
				l.Error = d.Err.Error()
			default:
				l.Summary = kind + " on " + channel + " → " + strconv.Itoa(d.Status)
				if !d.ok() {
					l.Error = fmt.Sprintf("the gateway answered HTTP %d", d.Status)
				}
			}
		})
		e.mu.Unlock()
		if !d.ok() {
			e.log.Warn("sandbox webhook not delivered", "event", kind, "status", d.Status, "error", errString(d.Err))
		}
		res <- d
	}()
	return res
}

// post delivers one webhook body, signed when the emulator has an app
// secret.
func (e *Emulator) post(body []byte) delivery {
	if e.opt.WebhookURL == "" {
		return delivery{Err: errors.New("no webhook URL configured")}
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.opt.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return delivery{Err: fmt.Errorf("webhook request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	if len(e.opt.AppSecret) > 0 {
		req.Header.Set(messenger.SignatureHeader, messenger.Sign(e.opt.AppSecret, body))
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return delivery{Err: fmt.Errorf("posting webhook: %w", err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return delivery{Status: resp.StatusCode, Response: string(b)}
}

// updateLog changes an inspector entry still held and publishes it again.
// Must be called with e.mu held.
func (e *Emulator) updateLog(id int64, f func(*LogEntry)) {
	for i := len(e.logs) - 1; i >= 0; i-- {
		if e.logs[i].Seq == id {
			// Copies handed out earlier share the pointed-to parts.
			if w := e.logs[i].Webhook; w != nil {
				cp := *w
				e.logs[i].Webhook = &cp
			}
			if g := e.logs[i].Graph; g != nil {
				cp := *g
				e.logs[i].Graph = &cp
			}
			f(&e.logs[i])
			l := e.logs[i]
			e.publish(Change{Seq: e.nextSeq(), Log: &l})
			return
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
