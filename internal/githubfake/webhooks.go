package githubfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Delivery is one webhook the fake emitted: Status is the receiver's HTTP status, 0 when it was not
// sent (no WebhookURL) or the POST failed.
type Delivery struct {
	Event  string
	Action string
	ID     string
	Status int
	Body   []byte
}

// event is a webhook waiting to be delivered once the lock is released.
type event struct {
	name    string
	action  string
	payload map[string]any
}

// newEvent builds an event with the fields every payload carries. Callers hold s.mu.
func (r *Repo) newEvent(name, action, sender string, fields map[string]any) event {
	p := map[string]any{
		"repository":   r.repositoryJSON(),
		"sender":       r.s.userJSON(sender),
		"installation": r.s.installationLite(),
	}
	if action != "" {
		p["action"] = action
	}
	for k, v := range fields {
		p[k] = v
	}
	return event{name: name, action: action, payload: p}
}

// emit delivers events in order. Callers must not hold s.mu.
func (s *Server) emit(events []event) {
	for _, e := range events {
		body, err := json.Marshal(e.payload)
		if err != nil {
			s.logf("githubfake: encode %s payload: %v", e.name, err)
			continue
		}
		if _, err := s.deliver(e.name, e.action, newDeliveryID(), body, s.sign(body)); err != nil {
			s.logf("githubfake: deliver %s.%s: %v", e.name, e.action, err)
		}
	}
}

// sign computes X-Hub-Signature-256 for body.
func (s *Server) sign(body []byte) string {
	m := hmac.New(sha256.New, []byte(s.secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver signs payload (marshalled to JSON) and POSTs it to the webhook URL as event, returning the
// receiver's status.
func (s *Server) Deliver(event string, payload any) (int, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return 0, fmt.Errorf("encode %s payload: %w", event, err)
	}
	var probe struct {
		Action string `json:"action"`
	}
	_ = json.Unmarshal(body, &probe)
	return s.deliver(event, probe.Action, newDeliveryID(), body, s.sign(body))
}

// DeliverRaw POSTs body as event with the given delivery ID and signature header ("" = none), for
// tests of bad signatures, malformed bodies and redeliveries.
func (s *Server) DeliverRaw(event, deliveryID string, body []byte, signature string) (int, error) {
	var probe struct {
		Action string `json:"action"`
	}
	_ = json.Unmarshal(body, &probe)
	return s.deliver(event, probe.Action, deliveryID, body, signature)
}

// Deliveries lists every webhook emitted or delivered so far, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		d.Body = append([]byte(nil), d.Body...)
		out[i] = d
	}
	return out
}

func (s *Server) deliver(name, action, id string, body []byte, signature string) (int, error) {
	s.mu.Lock()
	target := s.webhookURL
	if s.unregistered { // no App, no webhooks
		target = ""
	}
	s.mu.Unlock()
	status, err := 0, error(nil)
	if target != "" {
		status, err = s.post(target, name, id, body, signature)
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, Delivery{Event: name, Action: action, ID: id, Status: status, Body: body})
	s.mu.Unlock()
	return status, err
}

func (s *Server) post(target, name, id string, body []byte, signature string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build %s delivery: %w", name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/fake")
	req.Header.Set("X-GitHub-Event", name)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-GitHub-Hook-ID", "1")
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	resp, err := s.hookClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post %s delivery %s: %w", name, id, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// newDeliveryID returns a UUID-shaped delivery ID.
func newDeliveryID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Ping emits a ping event, as GitHub does when a webhook is configured.
func (s *Server) Ping(r *Repo) {
	s.mu.Lock()
	now := isoTime(time.Now())
	hook := map[string]any{
		"type": "App", "id": 1, "name": "web", "active": true, "app_id": s.appID, "events": []string{"*"},
		"config":     map[string]any{"content_type": "json", "url": s.webhookURL, "insecure_ssl": "0"},
		"updated_at": now, "created_at": now,
		"url":            s.URL() + "app/hook/config",
		"ping_url":       s.URL() + "app/hook/pings",
		"deliveries_url": s.URL() + "app/hook/deliveries",
	}
	if s.webhookURL == "" {
		hook["config"].(map[string]any)["url"] = s.URL() + "hook"
	}
	e := event{name: "ping", payload: map[string]any{
		"zen": "Keep it logically awesome.", "hook_id": 1, "hook": hook,
		"repository": r.repositoryJSON(), "sender": s.userJSON(r.owner),
	}}
	s.mu.Unlock()
	s.emit([]event{e})
}
