package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

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

	// handlers maps an event name to its handler; the first handler listing an event wins. It and
	// webhookSecret are written once, before configured is set, and only read after it is seen set.
	handlers      map[string]githubapp.EventHandler
	webhookSecret []byte
	// configured is false in setup mode (NewUnconfigured) until Configure: deliveries and /readyz answer 503.
	configured atomic.Bool
	scheduler  *trackingScheduler
	// budget bounds the bytes of webhook bodies held at once (see byteBudget).
	budget *byteBudget

	// handlerCtx is the parent of every handler's context; cancelled when draining times out.
	handlerCtx    context.Context
	cancelHandler context.CancelFunc

	inflight sync.WaitGroup
	// queued counts events accepted and not yet picked up by a worker, for /readyz.
	queued   atomic.Int64
	draining atomic.Bool

	mu   sync.Mutex
	http *http.Server
}

// New wires the webhook endpoint for the given handlers. cfg must have passed Validate.
func New(cfg Config, logger zerolog.Logger, metrics *Metrics, handlers []githubapp.EventHandler) *Server {
	if metrics == nil {
		metrics = NewMetrics()
	}
	s := &Server{
		cfg: cfg, log: logger, metrics: metrics, mux: http.NewServeMux(),
		handlers:      routeEvents(handlers),
		webhookSecret: []byte(cfg.GitHub.App.WebhookSecret),
		budget:        newByteBudget(cfg.MaxInflightBodyBytes),
	}
	s.configured.Store(true)
	s.handlerCtx, s.cancelHandler = context.WithCancel(context.Background())

	queue := githubapp.QueueAsyncScheduler(cfg.Queue.Size, cfg.Queue.Workers,
		githubapp.WithContextDeriver(func(ctx context.Context) context.Context {
			// Detach from the HTTP request (it ends when GitHub gets its answer) but keep its logger.
			return zerolog.Ctx(ctx).WithContext(s.handlerCtx)
		}),
		// The tracking wrapper below logs and counts errors and panics itself.
		githubapp.WithAsyncErrorCallback(func(context.Context, githubapp.Dispatch, error) {}),
	)
	// The intake does what go-githubapp's EventDispatcher would (route by event, queue, answer) itself: it
	// reads each body once into memory charged to the budget and hands that very slice to the handler, where
	// the dispatcher would read it again into a copy and add the event fields to the logger a second time.
	s.scheduler = &trackingScheduler{inner: queue, s: s}

	s.mux.HandleFunc("POST "+WebhookPath, s.intake)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
	return s
}

// NewUnconfigured returns a server in setup mode: it answers /healthz and /metrics and serves what Handle
// mounts (the setup pages), while the webhook endpoint and /readyz answer 503 until Configure gives it the
// App's handlers. cfg must have passed ValidateServer.
func NewUnconfigured(cfg Config, logger zerolog.Logger, metrics *Metrics) *Server {
	s := New(cfg, logger, metrics, nil)
	s.configured.Store(false)
	return s
}

// ErrConfigured is returned by Configure on a server that already serves webhooks.
var ErrConfigured = errors.New("the server already serves webhooks")

// Configure switches a server made by NewUnconfigured to serving webhooks, verified with webhookSecret, for
// handlers; the listener, its connections and the metrics stay as they are (no restart).
func (s *Server) Configure(webhookSecret string, handlers []githubapp.EventHandler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.configured.Load() {
		return ErrConfigured
	}
	s.handlers = routeEvents(handlers)
	s.webhookSecret = []byte(webhookSecret)
	s.configured.Store(true) // publishes the two writes above to every later intake
	s.log.Info().Msg("configured: serving webhooks")
	return nil
}

// Configured reports whether the server serves webhooks (false in setup mode).
func (s *Server) Configured() bool { return s.configured.Load() }

// Handle mounts h on the server's mux for pattern (net/http's ServeMux syntax), beside the webhook, health and
// metrics routes.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// routeEvents maps each event to the first handler that lists it.
func routeEvents(handlers []githubapp.EventHandler) map[string]githubapp.EventHandler {
	out := map[string]githubapp.EventHandler{}
	for _, h := range handlers {
		for _, event := range h.Handles() {
			if _, taken := out[event]; !taken {
				out[event] = h
			}
		}
	}
	return out
}

// Handler is the server's HTTP handler, with the base logger in every request's context.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mux.ServeHTTP(w, r.WithContext(s.log.WithContext(r.Context())))
	})
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// readyz says whether this process can take deliveries now: not draining and its queue not full. It
// deliberately does not ask GitHub or re-read credentials: an API outage or a rotated key file would take
// every replica out of the Service while GitHub keeps delivering webhooks, and a delivery refused then is
// lost, where one accepted is handled (or its failure reported) once GitHub answers again. GitHub's reachability shows in /metrics (storagebot_github_requests_total) and
// the logs.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.configured.Load() {
		http.Error(w, "not configured: no GitHub App yet; open / on this server to register one (setup mode)", http.StatusServiceUnavailable)
		return
	}
	if s.draining.Load() {
		http.Error(w, "draining: shutting down, not taking deliveries", http.StatusServiceUnavailable)
		return
	}
	if n := s.queued.Load(); n >= int64(s.cfg.Queue.Size) {
		http.Error(w, fmt.Sprintf("queue full: %d events waiting for a worker", n), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// trackingScheduler counts queue depth and in-flight events around go-githubapp's queue, so shutdown can
// drain, /readyz can see a full queue and /metrics can show the backlog, and returns each event's share of
// the byte budget when its handler finishes.
type trackingScheduler struct {
	inner githubapp.Scheduler
	s     *Server
}

// schedule queues d, whose payload holds charge bytes of the budget and which has been run and re-queued
// after a rate limit requeues times already; on error the caller keeps the charge.
func (t *trackingScheduler) schedule(ctx context.Context, d githubapp.Dispatch, charge int64, requeues int) error {
	m := t.s.metrics
	t.s.inflight.Add(1)
	t.s.queued.Add(1)
	m.InFlight.Inc()
	m.QueueDepth.Inc()
	d.Handler = &trackedHandler{inner: d.Handler, s: t.s, charge: charge, requeues: requeues}
	if err := t.inner.Schedule(ctx, d); err != nil {
		m.QueueDepth.Dec()
		m.InFlight.Dec()
		t.s.queued.Add(-1)
		t.s.inflight.Done()
		return fmt.Errorf("queue %s delivery %s: %w", d.EventType, d.DeliveryID, err)
	}
	return nil
}

// trackedHandler runs one queued event: it recovers panics, logs and counts the result, and releases the
// event's budget and in-flight slot however the handler ends.
type trackedHandler struct {
	inner    githubapp.EventHandler
	s        *Server
	charge   int64
	requeues int
}

func (h *trackedHandler) Handles() []string { return h.inner.Handles() }

func (h *trackedHandler) Handle(ctx context.Context, eventType, deliveryID string, payload []byte) (err error) {
	m := h.s.metrics
	m.QueueDepth.Dec()
	h.s.queued.Add(-1)
	start := time.Now()
	log := zerolog.Ctx(ctx)
	defer func() {
		result, keep := "ok", false
		if p := recover(); p != nil {
			result = "panic"
			err = fmt.Errorf("handler panic: %v", p)
			log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Msg("handler panicked; event dropped, server keeps serving")
		} else if lim, ok := ghclient.AsRateLimit(err); ok {
			result = "rate_limited"
			// A re-queued event keeps its payload, and so its share of the budget, until it runs again.
			keep = h.s.onRateLimited(ctx, githubapp.Dispatch{Handler: h.inner, EventType: eventType, DeliveryID: deliveryID, Payload: payload}, h.requeues, h.charge, lim, err)
		} else if err != nil {
			result = "error"
			log.Error().Err(err).Msg("handler failed")
		}
		event := metricEvent(eventType)
		m.Handled.WithLabelValues(event, result).Inc()
		m.HandlerSeconds.WithLabelValues(event).Observe(time.Since(start).Seconds())
		m.InFlight.Dec()
		if !keep {
			h.s.budget.release(h.charge)
		}
		h.s.inflight.Done()
	}()
	return h.inner.Handle(ctx, eventType, deliveryID, payload)
}

// ErrDrainTimeout is returned by Shutdown when events were still running at the end of the shutdown timeout
// and had to be cancelled.
var ErrDrainTimeout = errors.New("drain timed out")

// httpCloseTimeout bounds closing the listener once the queue is drained: what is left then is requests
// answered at once (refusals, probes, metrics); connections still open after it are closed.
const httpCloseTimeout = 5 * time.Second

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

// Shutdown drains, then closes. While the queued and running events finish (until ctx expires) the listener
// stays open: /readyz answers 503 so load balancers stop sending, and new deliveries get 503 so GitHub
// records them as failed instead of timing out. Events still running when ctx expires are cancelled and
// Shutdown returns ErrDrainTimeout. Then the listener closes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.log.Info().Int64("queued", s.queued.Load()).Msg("shutting down: refusing new deliveries, draining the queue")
	var errs []error
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
		s.log.Info().Msg("queue drained")
	case <-ctx.Done():
		s.cancelHandler()
		errs = append(errs, fmt.Errorf("%w: events still running after the shutdown timeout were cancelled; the reconciler finishes their work", ErrDrainTimeout))
	}
	s.cancelHandler()
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	if hs != nil {
		cctx, cancel := context.WithTimeout(context.Background(), httpCloseTimeout)
		defer cancel()
		if err := hs.Shutdown(cctx); err != nil {
			// What is left is no work of ours: a client still sending a body that will be refused, or a
			// connection a client opened and sent nothing on (net/http waits 5 s for those). Cut them.
			s.log.Info().Err(err).Msg("closing connections still open after the drain")
			if err := hs.Close(); err != nil {
				errs = append(errs, fmt.Errorf("stop HTTP server: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
