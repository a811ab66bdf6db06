package botcomment

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// recheckTimeout bounds one late look at a thread.
const recheckTimeout = 30 * time.Second

// Rechecks takes one more look at a thread after this process's post landed, once the settle time has passed
// since it was sent, and deletes any later duplicate it finds. The zero Rechecks is ready to use.
//
// It covers the writer that cannot clean up after itself: a replica killed (or restarted) while it watched
// for its own unanswered post. GitHub may still apply that post, up to the settle time after it was sent —
// after another writer (the other replica, handling the same command again) looked, found nothing and
// posted. That other writer looked after the dead one sent, so the dead one's post lands before the settle
// time has passed since the other's own post: one look then sees both and keeps the earliest. It costs one
// listing per post. It lives in this process only: a replica stopping before a look is due cancels it and
// says so in its log.
type Rechecks struct {
	mu      sync.Mutex
	pending map[*time.Timer]struct{}
	active  int // looks running
	running sync.WaitGroup
	stopped bool
	// OnPending, when set, is told the number of looks scheduled or running whenever it changes (a metric).
	OnPending func(n int)
}

// changed reports the count to OnPending; r.mu is held.
func (r *Rechecks) changed() {
	if r.OnPending != nil {
		r.OnPending(len(r.pending) + r.active)
	}
}

// schedule looks at t after delay. ctx carries the logger; its cancellation does not stop the look.
func (r *Rechecks) schedule(ctx context.Context, delay time.Duration, t Thread) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if r.pending == nil {
		r.pending = map[*time.Timer]struct{}{}
	}
	ctx = context.WithoutCancel(ctx)
	var timer *time.Timer
	timer = time.AfterFunc(max(delay, 0), func() {
		r.mu.Lock()
		if _, ok := r.pending[timer]; !ok { // stopped meanwhile
			r.mu.Unlock()
			return
		}
		delete(r.pending, timer)
		r.active++
		r.running.Add(1)
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.active--
			r.changed()
			r.mu.Unlock()
			r.running.Done()
		}()
		look(ctx, t)
	})
	r.pending[timer] = struct{}{}
	r.changed()
}

func look(ctx context.Context, t Thread) {
	ctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	defer cancel()
	have, err := t.Marked(ctx)
	if err == nil {
		err = DropLater(ctx, t, have)
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("the late look for a duplicate of the bot's comment failed; a duplicate may stay")
	}
}

// Pending returns how many looks are scheduled or running.
func (r *Rechecks) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) + r.active
}

// Stop cancels the looks not yet due, waits for the running ones and returns how many it cancelled. Later
// posts schedule none.
func (r *Rechecks) Stop() int {
	r.mu.Lock()
	r.stopped = true
	cancelled := 0
	for timer := range r.pending {
		timer.Stop() // one that fired meanwhile finds itself gone from pending and does nothing
		delete(r.pending, timer)
		cancelled++
	}
	r.changed()
	r.mu.Unlock()
	r.running.Wait()
	return cancelled
}
