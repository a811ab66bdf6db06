package rollout

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Election makes one of several replicas the leader through a Kubernetes Lease: only the leader runs the
// periodic passes (reconcile, rollout), while every replica serves webhooks.
//
// It follows client-go's leaderelection, which the binary does not link (see KubeClient): a replica takes a
// Lease that is free, or whose holder has not renewed it for the Lease's duration as this replica observed it
// (local clock only, so clock skew between replicas does not matter); every write carries the resourceVersion
// read, so of two replicas racing for the Lease the API server lets one win. The leader renews every
// RetryPeriod and stops leading when it could not renew for RenewDeadline.
type Election struct {
	Client    LeaseAPI
	Namespace string
	Lease     string // the Lease's name
	Identity  string // this replica (its pod name)
	// Lease timing; zero values mean 15s, 10s and 2s (client-go's usual settings). The Lease stores whole
	// seconds, so LeaseDuration must be at least 1s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// jitterFactor spreads the replicas' attempts to acquire, as client-go's leaderelection.JitterFactor does.
const jitterFactor = 1.2

// Run campaigns until ctx ends, calling lead with a context that is cancelled when leadership is lost. It
// waits for lead to return and then releases the Lease, so another replica takes over at once, not after the
// lease expires, and never while this one still works. onNewLeader (may be nil) is told each holder this
// replica observes; it must return promptly.
func (e *Election) Run(ctx context.Context, lead func(ctx context.Context), onNewLeader func(identity string)) error {
	c, err := e.campaign(onNewLeader)
	if err != nil {
		return fmt.Errorf("leader election on Lease %s/%s: %w", e.Namespace, e.Lease, err)
	}
	// A replica that loses the lease campaigns again until ctx ends.
	for ctx.Err() == nil {
		if c.acquire(ctx) {
			c.leadWhileRenewing(ctx, lead)
			c.release()
		}
	}
	return nil
}

// campaign validates the timing as client-go does and returns this replica's campaign.
func (e *Election) campaign(onNewLeader func(string)) (*campaign, error) {
	orDefault := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	c := &campaign{
		Election:      *e,
		leaseDuration: orDefault(e.LeaseDuration, 15*time.Second),
		renewDeadline: orDefault(e.RenewDeadline, 10*time.Second),
		retryPeriod:   orDefault(e.RetryPeriod, 2*time.Second),
		onNewLeader:   onNewLeader,
	}
	switch {
	case e.Identity == "":
		return nil, errors.New("the replica's identity is empty")
	case c.leaseDuration < time.Second:
		return nil, errors.New("leaseDuration must be at least 1s (the Lease stores whole seconds)")
	case c.leaseDuration <= c.renewDeadline:
		return nil, errors.New("leaseDuration must be greater than renewDeadline")
	case c.renewDeadline <= time.Duration(jitterFactor*float64(c.retryPeriod)):
		return nil, fmt.Errorf("renewDeadline must be greater than retryPeriod*%v", jitterFactor)
	}
	return c, nil
}

// campaign is one replica's state in the election: the Lease as last read or written, and when.
type campaign struct {
	Election
	leaseDuration, renewDeadline, retryPeriod time.Duration
	onNewLeader                               func(string)

	observed   *Lease
	observedAt time.Time // local time the Lease was last seen to change (renewed, taken or released)
	reported   string    // the holder last told to onNewLeader
}

// acquire tries to take the Lease every RetryPeriod (jittered) until it does, or ctx ends (false).
func (c *campaign) acquire(ctx context.Context) bool {
	for {
		if c.tryAcquireOrRenew(ctx) {
			return true
		}
		wait := c.retryPeriod + time.Duration(rand.Float64()*jitterFactor*float64(c.retryPeriod))
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// leadWhileRenewing runs lead while renewing the Lease; when a renewal fails for RenewDeadline or ctx ends,
// it cancels lead's context and returns once lead has.
func (c *campaign) leadWhileRenewing(ctx context.Context, lead func(context.Context)) {
	leadCtx, stopLeading := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(leadCtx)
	}()
	for sleep(leadCtx, c.retryPeriod) && c.renew(leadCtx) {
	}
	stopLeading()
	<-done
}

// renew keeps trying to renew the Lease every RetryPeriod for at most RenewDeadline; false when it could
// not, or ctx ended.
func (c *campaign) renew(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, c.renewDeadline)
	defer cancel()
	for {
		if c.tryAcquireOrRenew(ctx) {
			return true
		}
		if !sleep(ctx, c.retryPeriod) {
			return false
		}
	}
}

// tryAcquireOrRenew reads the Lease and writes it as held by this replica, unless another replica holds it
// and has renewed it within its duration. The update carries the resourceVersion read: if another replica
// wrote the Lease in between, the API server refuses it (409 Conflict) and this attempt fails.
func (c *campaign) tryAcquireOrRenew(ctx context.Context) bool {
	now := time.Now()
	cur, err := c.Client.GetLease(ctx, c.Namespace, c.Lease)
	if IsNotFound(err) {
		created, err := c.Client.CreateLease(ctx, c.held(&Lease{
			ObjectMeta: ObjectMeta{Namespace: c.Namespace, Name: c.Lease},
		}, now))
		if err != nil {
			return false
		}
		c.observe(created, now)
		return true
	}
	if err != nil {
		return false
	}
	c.observe(cur, now)
	if holder := holderOf(cur); holder != "" && holder != c.Identity && c.observedValid(now) {
		return false
	}
	updated, err := c.Client.UpdateLease(ctx, c.held(cur.DeepCopy(), now))
	if err != nil {
		return false
	}
	c.observe(updated, now)
	return true
}

// held sets lease as held by this replica from now: renewed if it held it already, taken over otherwise.
func (c *campaign) held(lease *Lease, now time.Time) *Lease {
	t := NewMicroTime(now)
	s := &lease.Spec
	if holderOf(lease) != c.Identity {
		transitions := int32(0)
		if s.HolderIdentity != nil { // a takeover, not the Lease's creation
			transitions = deref(s.LeaseTransitions) + 1
		}
		s.LeaseTransitions = &transitions
		s.HolderIdentity = ptr(c.Identity)
		s.AcquireTime = &t
	}
	s.LeaseDurationSeconds = ptr(int32(c.leaseDuration / time.Second))
	s.RenewTime = &t
	return lease
}

// release gives up the Lease if this replica still holds it, as client-go does: no holder, a one-second
// duration. It has RenewDeadline to do so, and retries on conflict (a renewal in flight when ctx ended).
func (c *campaign) release() {
	ctx, cancel := context.WithTimeout(context.Background(), c.renewDeadline)
	defer cancel()
	for ctx.Err() == nil {
		cur, err := c.Client.GetLease(ctx, c.Namespace, c.Lease)
		if err != nil || holderOf(cur) != c.Identity {
			return
		}
		now := NewMicroTime(time.Now())
		freed := cur.DeepCopy()
		freed.Spec.HolderIdentity = ptr("")
		freed.Spec.LeaseDurationSeconds = ptr(int32(1))
		freed.Spec.AcquireTime, freed.Spec.RenewTime = &now, &now
		if _, err := c.Client.UpdateLease(ctx, freed); !IsConflict(err) {
			return
		}
	}
}

// observe records lease as the latest seen. A new resourceVersion means someone wrote it: the holder's
// duration counts from now.
func (c *campaign) observe(lease *Lease, now time.Time) {
	if c.observed == nil || c.observed.ResourceVersion != lease.ResourceVersion {
		c.observedAt = now
	}
	c.observed = lease
	if holder := holderOf(lease); holder != "" && holder != c.reported {
		c.reported = holder
		if c.onNewLeader != nil {
			c.onNewLeader(holder)
		}
	}
}

// observedValid reports whether the observed holder's lease still runs, by this replica's clock.
func (c *campaign) observedValid(now time.Time) bool {
	d := time.Duration(deref(c.observed.Spec.LeaseDurationSeconds)) * time.Second
	return c.observedAt.Add(d).After(now)
}

func holderOf(l *Lease) string {
	return deref(l.Spec.HolderIdentity)
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
