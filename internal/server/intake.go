package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"
)

// smallEventMaxBytes caps the bodies of the events whose payloads GitHub bounds well below its 25 MB
// delivery cap. Their free text is capped by GitHub (a PR or issue body and a comment at 65,536 characters, a
// check run's summary and text at 65,535 each), which JSON escaping can at most multiply by six; the fixed
// objects around it (repository, users, labels) add tens of KB. 2 MiB is over twice the worst case.
// installation (one entry per repository) and check_suite (the head commit's message) are not bounded that
// way and keep max_body_bytes.
const smallEventMaxBytes = 2 << 20

var smallEvents = map[string]bool{"pull_request": true, "issue_comment": true, "check_run": true}

// signatureLen is the length of "sha256=" followed by a hex HMAC-SHA256.
const signatureLen = len("sha256=") + 2*sha256.Size

// bodyLimit is the largest body accepted for event.
func (s *Server) bodyLimit(event string) int64 {
	if smallEvents[event] && smallEventMaxBytes < s.cfg.MaxBodyBytes {
		return smallEventMaxBytes
	}
	return s.cfg.MaxBodyBytes
}

// validEventName reports whether event looks like a GitHub event name (pull_request, check_run, …). Anything
// else is refused before the body is read.
func validEventName(event string) bool {
	if event == "" || len(event) > 64 {
		return false
	}
	for _, r := range event {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// parseSignature decodes an X-Hub-Signature-256 header: "sha256=" and 64 hex digits, nothing else. GitHub
// also sends X-Hub-Signature (sha1=…) for old integrations; a SHA-1 MAC is not accepted in either header.
func parseSignature(header string) ([]byte, error) {
	if header == "" {
		return nil, errors.New("missing X-Hub-Signature-256 header: set a webhook secret on the App and in GITHUB_APP_WEBHOOK_SECRET")
	}
	const prefix = "sha256="
	if len(header) != signatureLen || header[:len(prefix)] != prefix {
		return nil, errors.New("malformed X-Hub-Signature-256 header: only sha256=<64 hex digits> is accepted")
	}
	mac, err := hex.DecodeString(header[len(prefix):])
	if err != nil {
		return nil, errors.New("malformed X-Hub-Signature-256 header: only sha256=<64 hex digits> is accepted")
	}
	return mac, nil
}

// Body encodings GitHub delivers: a webhook's content type is either JSON or a form whose "payload" field
// holds the JSON.
const (
	contentJSON = "application/json"
	contentForm = "application/x-www-form-urlencoded"
)

// intake is the webhook endpoint. It refuses as early as it can, in order of cost: a draining server, a
// missing or malformed event or signature header, an unsupported content type and an announced body over the
// cap are refused before a byte of the body is read. Bodies of events no handler takes are only streamed
// through the HMAC, never kept. Bodies of handled events are read into memory charged to the byte budget,
// verified, decoded and queued; the charge is returned when the handler finishes.
func (s *Server) intake(w http.ResponseWriter, r *http.Request) {
	event := r.Header.Get("X-GitHub-Event")
	deliveryID := r.Header.Get("X-GitHub-Delivery")
	// The event and delivery ID go into the logger once, here; every line about this delivery, the
	// handler's included, inherits them.
	// Both are the client's word until the signature is checked: clipped, so a forged header cannot fill the logs.
	log := zerolog.Ctx(r.Context()).With().
		Str(githubapp.LogKeyEventType, clip(event)).
		Str(githubapp.LogKeyDeliveryID, clip(deliveryID)).Logger()
	configured := s.configured.Load()
	var handler githubapp.EventHandler
	handled := false
	if configured {
		handler, handled = s.handlers[event]
	}
	// Until the signature is verified the event name is the client's word: only names the server knows
	// become metric labels, so forged headers cannot create series.
	label := "other"
	if handled || event == "ping" {
		label = event
	}
	reject := func(status int, outcome, msg string) {
		s.metrics.Deliveries.WithLabelValues(label, outcome).Inc()
		log.Warn().Int("status", status).Str("outcome", outcome).Msg(msg)
		if status == http.StatusRequestEntityTooLarge || status == http.StatusServiceUnavailable {
			// The body is left unread: closing the connection spares reading it just to reuse the connection.
			w.Header().Set("Connection", "close")
		}
		http.Error(w, msg, status)
	}

	if s.draining.Load() {
		reject(http.StatusServiceUnavailable, "shutting_down", "server is shutting down; redeliver later")
		return
	}
	if !configured {
		reject(http.StatusServiceUnavailable, "not_configured", "storagebot is not configured yet (setup mode): open / on this server to register its GitHub App, then redeliver")
		return
	}
	if !validEventName(event) {
		reject(http.StatusBadRequest, "malformed", "missing or malformed X-GitHub-Event header")
		return
	}
	var wantMAC []byte
	if !s.cfg.InsecureSkipSignature {
		mac, err := parseSignature(r.Header.Get(github.SHA256SignatureHeader))
		if err != nil {
			reject(http.StatusUnauthorized, "bad_signature", err.Error())
			return
		}
		wantMAC = mac
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != contentJSON && mediaType != contentForm) {
		reject(http.StatusUnsupportedMediaType, "malformed", fmt.Sprintf("unsupported Content-Type %q: set the webhook's content type to application/json", r.Header.Get("Content-Type")))
		return
	}
	limit := s.bodyLimit(event)
	if r.ContentLength > limit {
		reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("payload of %d bytes is larger than the %d bytes accepted for %s events", r.ContentLength, limit, event))
		return
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	tooLarge := func(err error) bool {
		var mbe *http.MaxBytesError
		return errors.As(err, &mbe)
	}

	if !handled {
		// Nothing will read this payload: verify it (a ping with a wrong secret must show as failed in the
		// App's delivery log) without keeping it.
		mac := s.newMAC()
		if _, err := io.Copy(mac, body); err != nil {
			if tooLarge(err) {
				reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("payload larger than the %d bytes accepted", limit))
				return
			}
			reject(http.StatusBadRequest, "malformed", "reading body: "+err.Error())
			return
		}
		if wantMAC != nil && !hmac.Equal(mac.Sum(nil), wantMAC) {
			reject(http.StatusUnauthorized, "bad_signature", "invalid X-Hub-Signature-256: check the App's webhook secret")
			return
		}
		label = event // verified (or verification is off): GitHub's own name
		s.metrics.Deliveries.WithLabelValues(metricEvent(label), "ignored").Inc()
		log.Debug().Msg("no handler for this event; ignored")
		if event == "ping" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}

	// A body of unknown length (chunked) is charged the whole cap while it is read, then only what it holds.
	charge := r.ContentLength
	if charge < 0 {
		charge = limit
	}
	if !s.budget.tryAcquire(charge) {
		reject(http.StatusServiceUnavailable, "over_budget", fmt.Sprintf("%d bytes of webhook payloads are already held; redeliver later", s.budget.inUse()))
		return
	}
	queued := false
	defer func() {
		if !queued {
			s.budget.release(charge)
		}
	}()
	var raw []byte
	if r.ContentLength >= 0 {
		raw = make([]byte, r.ContentLength)
		_, err = io.ReadFull(body, raw)
	} else {
		raw, err = io.ReadAll(body)
		if err == nil && int64(cap(raw)) < charge {
			s.budget.release(charge - int64(cap(raw)))
			charge = int64(cap(raw))
		}
	}
	if err != nil {
		if tooLarge(err) {
			reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("payload larger than the %d bytes accepted for %s events", limit, event))
			return
		}
		reject(http.StatusBadRequest, "malformed", "reading body: "+err.Error())
		return
	}
	if wantMAC != nil {
		mac := s.newMAC()
		mac.Write(raw)
		if !hmac.Equal(mac.Sum(nil), wantMAC) {
			reject(http.StatusUnauthorized, "bad_signature", "invalid X-Hub-Signature-256: check the App's webhook secret")
			return
		}
	}
	payload := raw
	if mediaType == contentForm {
		// The HMAC covers the form as sent; only now is it decoded, in place, so it costs no second copy.
		if payload, err = formPayload(raw); err != nil {
			reject(http.StatusBadRequest, "malformed", "form-encoded delivery: "+err.Error())
			return
		}
	}
	if !json.Valid(payload) { // a scan without copying; decode only to say why it is invalid
		var v json.RawMessage
		err := json.Unmarshal(payload, &v)
		reject(http.StatusBadRequest, "malformed", fmt.Sprintf("malformed JSON payload: %v", err))
		return
	}
	ctx := log.WithContext(r.Context())
	d := githubapp.Dispatch{Handler: handler, EventType: event, DeliveryID: deliveryID, Payload: payload}
	if err := s.scheduler.schedule(ctx, d, charge, 0); err != nil {
		if errors.Is(err, githubapp.ErrCapacityExceeded) {
			reject(http.StatusServiceUnavailable, "overloaded", "queue full: redeliver later")
			return
		}
		s.metrics.Deliveries.WithLabelValues(label, "error").Inc()
		log.Error().Err(err).Msg("queueing webhook")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	queued = true
	s.metrics.Deliveries.WithLabelValues(label, "accepted").Inc()
	log.Debug().Int("bytes", len(raw)).Msg("webhook queued")
	w.WriteHeader(http.StatusOK)
}

// clip bounds a header value quoted in logs; GitHub's event names and delivery GUIDs are far shorter.
func clip(v string) string {
	const max = 100
	if len(v) > max {
		return v[:max] + "…"
	}
	return v
}

// newMAC returns the HMAC the signature is checked against; with verification off it is computed and
// ignored, which keeps one code path.
func (s *Server) newMAC() hash.Hash {
	return hmac.New(sha256.New, s.webhookSecret)
}

// formPayload returns the "payload" field of an application/x-www-form-urlencoded body, percent-decoded in
// place: decoding only ever shrinks, so the JSON is written over the form it came from.
func formPayload(form []byte) ([]byte, error) {
	const key = "payload="
	for rest := form; len(rest) > 0; {
		field := rest
		if i := bytes.IndexByte(rest, '&'); i >= 0 {
			field, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if bytes.HasPrefix(field, []byte(key)) {
			return unescapeInPlace(field[len(key):])
		}
	}
	return nil, errors.New(`no "payload" field: GitHub puts the JSON there`)
}

// unescapeInPlace decodes a form value ('+' is a space, %XX a byte) over itself.
func unescapeInPlace(b []byte) ([]byte, error) {
	w := 0
	for r := 0; r < len(b); r++ {
		c := b[r]
		switch c {
		case '+':
			c = ' '
		case '%':
			if r+2 >= len(b) {
				return nil, fmt.Errorf("truncated escape at byte %d of the payload field", r)
			}
			hi, okHi := unhex(b[r+1])
			lo, okLo := unhex(b[r+2])
			if !okHi || !okLo {
				return nil, fmt.Errorf("invalid escape %q at byte %d of the payload field", b[r:r+3], r)
			}
			c = hi<<4 | lo
			r += 2
		}
		b[w] = c
		w++
	}
	return b[:w], nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// metricEvent keeps label cardinality bounded: a name that is not shaped like a GitHub event is "invalid".
func metricEvent(event string) string {
	if !validEventName(event) || len(event) > 40 {
		return "invalid"
	}
	return event
}
