package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/ghclient"
)

// WebhookPath is where GitHub delivers events.
const WebhookPath = "/api/github/hook"

// Server serves webhooks, health and metrics. Handlers run on a bounded pool of workers; the HTTP answer goes
// back as soon as the event is queued, well inside GitHub's 10 s delivery timeout.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	metrics *Metrics
	mux     *http.ServeMux

	// handlerCtx is the parent of every handler's context; cancelled when draining times out.
	handlerCtx    context.Context
	cancelHandler context.CancelFunc

	inflight sync.WaitGroup
	draining atomic.Bool
	// sched runs events again after a rate limit (ratelimit.go).
	sched *trackingScheduler

	mu   sync.Mutex
	http *http.Server
}

// New wires the webhook endpoint for the given handlers. cfg must have passed Validate.
func New(cfg Config, logger zerolog.Logger, metrics *Metrics, handlers []githubapp.EventHandler) *Server {
	if metrics == nil {
		metrics = NewMetrics()
	}
	s := &Server{cfg: cfg, log: logger, metrics: metrics, mux: http.NewServeMux()}
	s.handlerCtx, s.cancelHandler = context.WithCancel(context.Background())

	queue := githubapp.QueueAsyncScheduler(cfg.Queue.Size, cfg.Queue.Workers,
		githubapp.WithContextDeriver(func(ctx context.Context) context.Context {
			// Detach from the HTTP request (it ends when GitHub gets its answer) but keep its logger.
			return zerolog.Ctx(ctx).WithContext(s.handlerCtx)
		}),
		// The tracking wrapper below logs and counts errors and panics itself.
		githubapp.WithAsyncErrorCallback(func(context.Context, githubapp.Dispatch, error) {}),
	)
	// The intake (webhookIntake) has verified the signature already, with its own status and metrics; an
	// empty secret keeps the dispatcher from computing the HMAC of every body a second time.
	s.sched = &trackingScheduler{inner: queue, s: s}
	dispatcher := githubapp.NewEventDispatcher(handlers, "",
		githubapp.WithScheduler(s.sched),
		githubapp.WithResponseCallback(s.onResponse),
		githubapp.WithErrorCallback(s.onDispatchError),
	)

	s.mux.Handle("POST "+WebhookPath, s.webhookIntake(dispatcher))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	return s
}

// Handler is the server's HTTP handler, with the base logger in every request's context.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mux.ServeHTTP(w, r.WithContext(s.log.WithContext(r.Context())))
	})
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	// Config and credentials were validated before New; re-check so a readiness probe reports the reason.
	if err := s.cfg.Validate(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// webhookIntake refuses what the dispatcher should never see: oversized bodies, bad signatures and malformed
// JSON, each with a status and a reason GitHub shows in the delivery log.
func (s *Server) webhookIntake(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		event := r.Header.Get("X-GitHub-Event")
		log := zerolog.Ctx(r.Context()).With().
			Str(githubapp.LogKeyEventType, event).
			Str(githubapp.LogKeyDeliveryID, r.Header.Get("X-GitHub-Delivery")).Logger()
		reject := func(status int, outcome, msg string) {
			s.metrics.Deliveries.WithLabelValues(metricEvent(event), outcome).Inc()
			log.Warn().Int("status", status).Str("outcome", outcome).Msg(msg)
			http.Error(w, msg, status)
		}
		if s.draining.Load() {
			reject(http.StatusServiceUnavailable, "shutting_down", "server is shutting down; redeliver later")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("payload larger than %d bytes", s.cfg.MaxBodyBytes))
				return
			}
			reject(http.StatusBadRequest, "malformed", "reading body: "+err.Error())
			return
		}
		if event == "" {
			reject(http.StatusBadRequest, "malformed", "missing X-GitHub-Event header")
			return
		}
		if !s.cfg.InsecureSkipSignature {
			sig := r.Header.Get(github.SHA256SignatureHeader)
			if sig == "" {
				reject(http.StatusUnauthorized, "bad_signature", "missing X-Hub-Signature-256 header")
				return
			}
			if err := github.ValidateSignature(sig, body, []byte(s.cfg.GitHub.App.WebhookSecret)); err != nil {
				reject(http.StatusUnauthorized, "bad_signature", "invalid X-Hub-Signature-256: check the App's webhook secret")
				return
			}
		}
		if ct := r.Header.Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "application/json") {
			if !json.Valid(body) { // a scan without copying; decode only to say why it is invalid
				var v json.RawMessage
				err := json.Unmarshal(body, &v)
				reject(http.StatusBadRequest, "malformed", fmt.Sprintf("malformed JSON payload: %v", err))
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r.WithContext(log.WithContext(r.Context())))
	})
}

func (s *Server) onResponse(w http.ResponseWriter, r *http.Request, event string, handled bool) {
	outcome := "accepted"
	if !handled {
		outcome = "ignored"
	}
	s.metrics.Deliveries.WithLabelValues(metricEvent(event), outcome).Inc()
	githubapp.DefaultResponseCallback(w, r, event, handled)
}

func (s *Server) onDispatchError(w http.ResponseWriter, r *http.Request, err error) {
	event := metricEvent(r.Header.Get("X-GitHub-Event"))
	switch {
	case errors.Is(err, githubapp.ErrCapacityExceeded):
		s.metrics.Deliveries.WithLabelValues(event, "overloaded").Inc()
		zerolog.Ctx(r.Context()).Warn().Msg("queue full: refusing delivery with 503; GitHub shows it as failed, redeliver it when the queue drains")
		http.Error(w, "queue full, redeliver later", http.StatusServiceUnavailable)
	default:
		var ve githubapp.ValidationError
		if errors.As(err, &ve) {
			s.metrics.Deliveries.WithLabelValues(event, "malformed").Inc()
			http.Error(w, "invalid webhook: "+ve.Cause.Error(), http.StatusBadRequest)
			return
		}
		s.metrics.Deliveries.WithLabelValues(event, "error").Inc()
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("dispatching webhook")
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// metricEvent keeps label cardinality bounded: a forged header cannot create unbounded series.
func metricEvent(event string) string {
	if event == "" || len(event) > 40 || strings.ContainsFunc(event, func(r rune) bool {
		return (r < 'a' || r > 'z') && r != '_'
	}) {
		return "invalid"
	}
	return event
}

// trackingScheduler counts queue depth and in-flight events around go-githubapp's queue, so shutdown can
// drain and /metrics can show the backlog.
type trackingScheduler struct {
	inner githubapp.Scheduler
	s     *Server
}

func (t *trackingScheduler) Schedule(ctx context.Context, d githubapp.Dispatch) error {
	return t.schedule(ctx, d, 0)
}

// schedule queues d, which has been run and re-queued after a rate limit requeues times already.
func (t *trackingScheduler) schedule(ctx context.Context, d githubapp.Dispatch, requeues int) error {
	m := t.s.metrics
	t.s.inflight.Add(1)
	m.InFlight.Inc()
	m.QueueDepth.Inc()
	d.Handler = &trackedHandler{inner: d.Handler, s: t.s, requeues: requeues}
	if err := t.inner.Schedule(ctx, d); err != nil {
		m.QueueDepth.Dec()
		m.InFlight.Dec()
		t.s.inflight.Done()
		return err
	}
	return nil
}

type trackedHandler struct {
	inner    githubapp.EventHandler
	s        *Server
	requeues int
}

func (h *trackedHandler) Handles() []string { return h.inner.Handles() }

func (h *trackedHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) (err error) {
	m := h.s.metrics
	m.QueueDepth.Dec()
	start := time.Now()
	log := zerolog.Ctx(ctx)
	defer func() {
		result := "ok"
		if p := recover(); p != nil {
			result = "panic"
			err = fmt.Errorf("handler panic: %v", p)
			log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("handler panicked; event dropped, server keeps serving")
		} else if lim, ok := ghclient.AsRateLimit(err); ok {
			result = "rate_limited"
			h.s.onRateLimited(ctx, githubapp.Dispatch{Handler: h.inner, EventType: eventType, DeliveryID: deliveryID, Payload: payload}, h.requeues, lim, err)
		} else if err != nil {
			result = "error"
			log.Error().Err(err).Msg("handler failed")
		}
		event := metricEvent(eventType)
		m.Handled.WithLabelValues(event, result).Inc()
		m.HandlerSeconds.WithLabelValues(event).Observe(time.Since(start).Seconds())
		m.InFlight.Dec()
		h.s.inflight.Done()
	}()
	return h.inner.Handle(ctx, eventType, deliveryID, payload)
}

// Serve answers on ln until ctx is cancelled, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	s.mu.Lock()
	s.http = hs
	s.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("storagebot serving")
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// ListenAndServe listens on the configured address and serves until ctx is cancelled.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set --addr or STORAGEBOT_ADDR): %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Shutdown stops taking deliveries, then waits for queued and running events until ctx expires; events
// still running then are cancelled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.log.Info().Msg("shutting down: refusing new deliveries, draining the queue")
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	var errs []error
	if hs != nil {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop HTTP server: %w", err))
		}
	}
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
		s.log.Info().Msg("queue drained")
	case <-ctx.Done():
		s.cancelHandler()
		errs = append(errs, fmt.Errorf("drain queue: %w (unfinished events were cancelled; the reconciler finishes their work)", ctx.Err()))
	}
	s.cancelHandler()
	return errors.Join(errs...)
}
