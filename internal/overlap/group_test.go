package overlap

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupBoundsTasksInFlight(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
	}{{"one at a time", 1}, {"three", 3}, {"below one is one", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGroup(context.Background(), tc.limit)
			var now, most atomic.Int32
			var order []int
			for i := range 12 {
				g.Go(func(context.Context) error {
					n := now.Add(1)
					for {
						m := most.Load()
						if n <= m || most.CompareAndSwap(m, n) {
							break
						}
					}
					if tc.limit <= 1 {
						order = append(order, i) // run in the caller's goroutine: no race
					} else {
						time.Sleep(time.Millisecond)
					}
					now.Add(-1)
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			if got := int(most.Load()); got > max(tc.limit, 1) {
				t.Errorf("%d tasks in flight at once, over the bound of %d", got, tc.limit)
			}
			if tc.limit <= 1 {
				for i, v := range order {
					if v != i {
						t.Fatalf("tasks ran in order %v, want the order they were given", order)
					}
				}
			}
		})
	}
}

func TestGroupFirstFailureCancelsTheRest(t *testing.T) {
	boom := errors.New("boom")
	g := NewGroup(context.Background(), 4)
	cancelled := make(chan error, 1)
	started := make(chan struct{})
	g.Go(func(ctx context.Context) error {
		close(started)
		select {
		case <-ctx.Done():
			cancelled <- context.Cause(ctx)
			return ctx.Err()
		case <-time.After(10 * time.Second):
			cancelled <- nil
			return nil
		}
	})
	g.Go(func(context.Context) error {
		<-started // fail while the other task runs, not before it starts
		return boom
	})
	if err := g.Wait(); !errors.Is(err, boom) {
		t.Errorf("Wait = %v, want the first failure", err)
	}
	if cause := <-cancelled; !errors.Is(cause, boom) {
		t.Errorf("the other task ended with %v, want cancelled by the failure", cause)
	}
}

func TestGroupParentCancellationIsAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := NewGroup(ctx, 2)
	ran := false
	g.Go(func(context.Context) error { ran = true; return nil })
	if err := g.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v after the caller's context ended, want context.Canceled: skipped tasks are not done", err)
	}
	if ran {
		t.Error("a task ran after the caller's context ended")
	}
}
