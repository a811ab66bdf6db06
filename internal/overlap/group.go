// Package overlap runs independent GitHub reads concurrently within a bound, the first failure cancelling the
// rest (docs/architecture.md §2). The storage reader, the check's gather and the promotion service's planning,
// follow-up and reconciler share this one implementation, so they bound, cancel and report alike.
package overlap

import (
	"context"
	"sync"
)

// Group runs tasks concurrently, at most limit at a time, under a context that the first failure cancels
// (the other reads stop instead of running on for nothing). With a limit of 1 every task runs at once in the
// caller's goroutine, so readers that are not safe for concurrent use are read in order: a limit of 1 is the
// behaviour before overlapping.
type Group struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error
}

// NewGroup returns a group of at most limit tasks in flight (1 when limit < 1), under a context derived
// from ctx.
func NewGroup(ctx context.Context, limit int) *Group {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Group{ctx: ctx, cancel: cancel, sem: make(chan struct{}, max(limit, 1))}
}

// Go runs task in the group. A task that has not started when the group's context ends is skipped.
func (g *Group) Go(task func(ctx context.Context) error) {
	if cap(g.sem) == 1 {
		if g.ctx.Err() == nil {
			g.fail(task(g.ctx))
		}
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		select {
		case g.sem <- struct{}{}:
		case <-g.ctx.Done():
			return
		}
		defer func() { <-g.sem }()
		if g.ctx.Err() != nil {
			return
		}
		g.fail(task(g.ctx))
	}()
}

// Context is the group's context: it ends when a task fails (Fail), or when Wait returns.
func (g *Group) Context() context.Context { return g.ctx }

// Fail records err (nil: nothing) as the group's failure unless one came first, and cancels the tasks with
// it: work done beside the group's tasks fails the group the same way.
func (g *Group) Fail(err error) { g.fail(err) }

// fail records the group's first error and cancels the others with it.
func (g *Group) fail(err error) {
	if err == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
		g.cancel(err)
	}
}

// Wait waits for every task and returns the first error (the cause, not the cancellation it caused in the
// others); a cancellation of the parent context counts as one.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.mu.Lock()
	err := g.err
	g.mu.Unlock()
	if err == nil {
		// Tasks skipped because the caller's context ended must not pass for done.
		err = context.Cause(g.ctx)
	}
	g.cancel(nil)
	return err
}
