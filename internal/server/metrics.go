package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus series an operator watches. Each Server has its own registry, so tests can run
// several servers in one process.
type Metrics struct {
	Registry *prometheus.Registry

	// Deliveries counts webhook deliveries by event and outcome: accepted, ignored (no handler),
	// bad_signature, malformed, too_large, overloaded (queue full), over_budget (too many body bytes held),
	// shutting_down, not_configured (setup mode), error. Before the signature is verified, events no handler takes are labelled "other".
	Deliveries *prometheus.CounterVec
	// Handled counts finished handler runs by event and result: ok, error, panic, rate_limited.
	Handled *prometheus.CounterVec
	// QueueDepth is the number of events accepted but not yet picked up by a worker.
	QueueDepth prometheus.Gauge
	// InFlight is the number of events accepted and not yet finished (queued or running).
	InFlight prometheus.Gauge
	// HandlerSeconds is the handler latency by event.
	HandlerSeconds *prometheus.HistogramVec
	// GitHubRequests counts requests sent to GitHub by method and status code ("error" for transport errors).
	GitHubRequests *prometheus.CounterVec
	// GitHubRetries counts requests retried after a 5xx or a rate limit, by reason.
	GitHubRetries *prometheus.CounterVec
	// RateLimited counts events that gave up on a GitHub rate limit, by event and outcome: requeued (run again
	// when the limit ends) or gave_up (logged as an error: re-queued too often, shutting down, queue full).
	RateLimited *prometheus.CounterVec
	// RateLimitRemaining is the last X-RateLimit-Remaining GitHub reported, by rate-limit resource (core,
	// graphql, search…), as GitHub's X-RateLimit-Resource header names it.
	RateLimitRemaining *prometheus.GaugeVec
	// CommentRechecks is the number of late looks for a duplicate reply or note not yet done
	// (botcomment.Rechecks).
	CommentRechecks prometheus.Gauge
	// RolloutPasses is the number of repositories whose triggered rollout pass is running (rollout.Service).
	RolloutPasses prometheus.Gauge
}

// NewMetrics registers the storagebot series and the Go runtime collectors in a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storagebot_webhook_deliveries_total",
			Help: "Webhook deliveries received, by event and outcome.",
		}, []string{"event", "outcome"}),
		Handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storagebot_events_handled_total",
			Help: "Events handled, by event and result (ok, error, panic, rate_limited).",
		}, []string{"event", "result"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "storagebot_queue_depth",
			Help: "Events waiting in the queue for a worker.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "storagebot_events_in_flight",
			Help: "Events accepted and not yet finished.",
		}),
		HandlerSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "storagebot_handler_duration_seconds",
			Help:    "Time a handler took, by event.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"event"}),
		GitHubRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storagebot_github_requests_total",
			Help: "Requests sent to the GitHub API, by method and status code.",
		}, []string{"method", "status"}),
		GitHubRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storagebot_github_retries_total",
			Help: "GitHub requests retried, by reason (server_error, rate_limit, transport).",
		}, []string{"reason"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storagebot_github_rate_limited_events_total",
			Help: "Events that gave up on a GitHub rate limit, by event and outcome (requeued, gave_up).",
		}, []string{"event", "outcome"}),
		RateLimitRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "storagebot_github_rate_limit_remaining",
			Help: "Last X-RateLimit-Remaining reported by GitHub, by rate-limit resource (core, graphql, search).",
		}, []string{"resource"}),
		CommentRechecks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "storagebot_comment_rechecks_pending",
			Help: "Late looks for a duplicate of a reply or note this replica posted, not yet done.",
		}),
		RolloutPasses: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "storagebot_rollout_passes_running",
			Help: "Repositories whose triggered rollout pass is running.",
		}),
	}
	m.Registry.MustRegister(
		m.Deliveries, m.Handled, m.QueueDepth, m.InFlight, m.HandlerSeconds,
		m.GitHubRequests, m.GitHubRetries, m.RateLimited, m.RateLimitRemaining, m.CommentRechecks, m.RolloutPasses,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}
