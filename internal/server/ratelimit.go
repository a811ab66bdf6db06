package server

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/ghclient"
)

// maxRateLimitRequeues is how often one delivery is run again after GitHub rate limits outlasted its budget.
// One wait until the reset normally suffices; a limit that keeps coming back means the installation is
// over budget, and the reconciler redoes what is missing once it is not.
const maxRateLimitRequeues = 3

// onRateLimited handles a handler that gave up on a GitHub rate limit (ghclient fails fast rather than
// sleeping past its budget): the event runs again once the limit ends, or, when it was re-queued too often
// or the server is stopping, the outcome is logged as an error. Either way it is counted — nothing is dropped
// silently. It reports whether the event was re-queued, in which case it owns the charge (the payload's share of
// the intake budget) until the event runs again or is given up.
func (s *Server) onRateLimited(ctx context.Context, d githubapp.Dispatch, requeues int, charge int64, lim *ghclient.RateLimitError, err error) bool {
	event := metricEvent(d.EventType)
	log := zerolog.Ctx(ctx).With().Str("limit", lim.Kind).Time("until", lim.Until).Int("requeues", requeues).Logger()
	if s.draining.Load() || requeues >= maxRateLimitRequeues {
		s.metrics.RateLimited.WithLabelValues(event, "gave_up").Inc()
		log.Error().Err(err).Msg("GitHub rate limit outlasted the event; not running it again: the reconciler redoes missed work once the limit ends, or redeliver the webhook from the App's settings")
		return false
	}
	wait := time.Until(lim.Until)
	if wait < 0 {
		wait = 0
	}
	// Every job limited by the same reset would otherwise hit GitHub in the same instant and trip the
	// secondary limit: spread them over up to a tenth of the wait (at most 10 s).
	if spread := min(wait/10, 10*time.Second); spread > 0 {
		wait += rand.N(spread)
	}
	s.metrics.RateLimited.WithLabelValues(event, "requeued").Inc()
	log.Warn().Err(err).Dur("wait", wait).Msg("GitHub rate limit outlasted the event's budget; running it again when the limit ends")
	logger := *zerolog.Ctx(ctx)
	time.AfterFunc(wait, func() {
		ctx := logger.WithContext(context.Background())
		if s.draining.Load() {
			s.budget.release(charge)
			s.metrics.RateLimited.WithLabelValues(event, "gave_up").Inc()
			logger.Error().Msg("rate-limited event not run again: the server is shutting down; the reconciler redoes missed work, or redeliver the webhook")
			return
		}
		if err := s.scheduler.schedule(ctx, d, charge, requeues+1); err != nil {
			s.budget.release(charge)
			s.metrics.RateLimited.WithLabelValues(event, "gave_up").Inc()
			logger.Error().Err(err).Msg("rate-limited event not run again: the queue refused it; redeliver the webhook")
		}
	})
	return true
}
