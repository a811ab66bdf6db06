package rollout

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeLeaseServer is client-go's dynamic fake, made to treat Leases as the API server does: every write gets
// a new resourceVersion, and an update carrying a stale one is refused with 409 Conflict. Without that two
// electors both "acquire" the same Lease.
func fakeLeaseServer() *dynamicLeases {
	c := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	var mu sync.Mutex
	next := 0
	c.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		switch a.GetVerb() { // switch on the verb: an UpdateAction also satisfies CreateAction
		case "create":
			a := a.(k8stesting.CreateAction)
			l := a.GetObject().(*unstructured.Unstructured).DeepCopy()
			next++
			l.SetResourceVersion(strconv.Itoa(next))
			if err := c.Tracker().Create(leasesResource, l, a.GetNamespace()); err != nil {
				return true, nil, err
			}
			return true, l, nil
		case "update":
			a := a.(k8stesting.UpdateAction)
			l := a.GetObject().(*unstructured.Unstructured).DeepCopy()
			cur, err := c.Tracker().Get(leasesResource, a.GetNamespace(), l.GetName())
			if err != nil {
				return true, nil, err
			}
			if cur.(*unstructured.Unstructured).GetResourceVersion() != l.GetResourceVersion() {
				return true, nil, apierrors.NewConflict(leasesResource.GroupResource(), l.GetName(), nil)
			}
			next++
			l.SetResourceVersion(strconv.Itoa(next))
			return true, l, c.Tracker().Update(leasesResource, l, a.GetNamespace())
		}
		return false, nil, nil
	})
	return &dynamicLeases{Dynamic: c}
}

// TestElectionOnlyTheLeaderLeads runs two replicas against one Lease: exactly one leads; when it stops, the
// other takes over.
func TestElectionOnlyTheLeaderLeads(t *testing.T) {
	client := fakeLeaseServer()
	replicas := newElectors()
	run := func(ctx context.Context, id string) <-chan struct{} {
		return replicas.run(ctx, &Election{Client: client, Namespace: "storagebot", Lease: "storagebot", Identity: id,
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond})
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA, doneB := run(ctxA, "a"), run(ctxB, "b")
	var first string
	select {
	case first = <-replicas.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no replica became leader within 5s")
	}
	select {
	case other := <-replicas.started:
		t.Fatalf("%s became leader while %s leads", other, first)
	case <-time.After(time.Second):
	}
	// The leader goes away (shutdown releases the Lease); the other takes over.
	if first == "a" {
		stopA()
		<-doneA
	} else {
		stopB()
		<-doneB
	}
	select {
	case second := <-replicas.started:
		if second == first {
			t.Fatalf("%s led again after stopping", second)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other replica did not take over within 5s")
	}
	stopA()
	stopB()
	<-doneA
	<-doneB
	if n := replicas.mostAtOnce(); n != 1 {
		t.Errorf("%d replicas led at once, want 1", n)
	}
}

// electors runs replicas' Elections and records who leads, and the most that led at once.
type electors struct {
	started chan string // a replica's identity each time it starts leading

	mu        sync.Mutex
	leading   map[string]bool
	maxAtOnce int
}

func newElectors() *electors {
	return &electors{started: make(chan string, 4), leading: map[string]bool{}}
}

// run campaigns with e until ctx ends; the channel closes once it has stopped (and released the Lease).
func (r *electors) run(ctx context.Context, e *Election) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx, func(lctx context.Context) {
			r.mu.Lock()
			r.leading[e.Identity] = true
			n := 0
			for _, l := range r.leading {
				if l {
					n++
				}
			}
			r.maxAtOnce = max(r.maxAtOnce, n)
			r.mu.Unlock()
			r.started <- e.Identity
			<-lctx.Done()
			r.mu.Lock()
			r.leading[e.Identity] = false
			r.mu.Unlock()
		}, nil)
	}()
	return done
}

// mostAtOnce is the most replicas that led at the same time.
func (r *electors) mostAtOnce() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxAtOnce
}

// TestElectionTakesOverAnExpiredLease: a Lease whose holder stopped renewing is taken once its duration has
// passed by this replica's clock, counted as a transition, and released when the replica stops. Fields the
// election does not set survive its writes.
func TestElectionTakesOverAnExpiredLease(t *testing.T) {
	client := fakeLeaseServer()
	ctx := context.Background()
	gone, oneSecond, strategy := "gone", int32(1), "OldestEmulationVersion"
	if _, err := client.CreateLease(ctx, &Lease{
		ObjectMeta: ObjectMeta{Namespace: "storagebot", Name: "storagebot"},
		Spec:       LeaseSpec{HolderIdentity: &gone, LeaseDurationSeconds: &oneSecond, Strategy: &strategy},
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var leaders []string
	started := make(chan time.Time, 1)
	runCtx, stop := context.WithCancel(ctx)
	begin := time.Now()
	done := make(chan error, 1)
	go func() {
		e := &Election{Client: client, Namespace: "storagebot", Lease: "storagebot", Identity: "a",
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}
		done <- e.Run(runCtx, func(ctx context.Context) {
			started <- time.Now()
			<-ctx.Done()
		}, func(id string) {
			mu.Lock()
			leaders = append(leaders, id)
			mu.Unlock()
		})
	}()
	select {
	case at := <-started:
		if waited := at.Sub(begin); waited < time.Second {
			t.Errorf("took the Lease after %v, before its holder's 1s had passed", waited)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the expired Lease was not taken over within 5s")
	}
	l, err := client.GetLease(ctx, "storagebot", "storagebot")
	if err != nil {
		t.Fatal(err)
	}
	if holderOf(l) != "a" || deref(l.Spec.LeaseTransitions) != 1 || deref(l.Spec.LeaseDurationSeconds) != 2 || l.Spec.AcquireTime == nil || deref(l.Spec.Strategy) != strategy {
		t.Errorf("after the takeover the Lease is %+v, want held by a for 2s, 1 transition, an acquire time, its strategy kept", l.Spec)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if l, err = client.GetLease(ctx, "storagebot", "storagebot"); err != nil {
		t.Fatal(err)
	}
	if holderOf(l) != "" || deref(l.Spec.LeaseDurationSeconds) != 1 {
		t.Errorf("after stopping the Lease is %+v, want released (no holder, 1s)", l.Spec)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"gone", "a"}; !slices.Equal(leaders, want) {
		t.Errorf("new leaders reported: %q, want %q", leaders, want)
	}
}

// TestElectionStopsLeadingWhenItCannotRenew: a leader whose renewals fail for RenewDeadline stops its work,
// and campaigns again: once the API server answers, it leads again.
func TestElectionStopsLeadingWhenItCannotRenew(t *testing.T) {
	client := fakeLeaseServer()
	var refuse atomic.Bool
	client.Dynamic.(*dynamicfake.FakeDynamicClient).PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if refuse.Load() {
			return true, nil, apierrors.NewServiceUnavailable("etcd is down")
		}
		return false, nil, nil
	})
	started, stopped := make(chan struct{}, 2), make(chan struct{}, 2)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		e := &Election{Client: client, Namespace: "storagebot", Lease: "storagebot", Identity: "a",
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}
		done <- e.Run(ctx, func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
			stopped <- struct{}{}
		}, nil)
	}()
	defer func() { stop(); <-done }()
	within := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s within 5s", what)
		}
	}
	within(started, "did not lead")
	refuse.Store(true)
	within(stopped, "kept leading though no renewal succeeded")
	refuse.Store(false)
	within(started, "did not lead again once renewals succeeded")
}

// TestElectionRefusesInconsistentTiming: the checks of client-go's NewLeaderElector.
func TestElectionRefusesInconsistentTiming(t *testing.T) {
	for _, tc := range []struct {
		name                string
		identity            string
		lease, renew, retry time.Duration
	}{
		{"no identity", "", 0, 0, 0},
		{"lease under 1s", "a", 900 * time.Millisecond, 500 * time.Millisecond, 100 * time.Millisecond},
		{"renew deadline not under lease", "a", 10 * time.Second, 10 * time.Second, time.Second},
		{"renew deadline within jittered retry", "a", 15 * time.Second, 10 * time.Second, 9 * time.Second},
	} {
		e := &Election{Client: fakeLeaseServer(), Namespace: "storagebot", Lease: "storagebot", Identity: tc.identity,
			LeaseDuration: tc.lease, RenewDeadline: tc.renew, RetryPeriod: tc.retry}
		led := false
		if err := e.Run(context.Background(), func(context.Context) { led = true }, nil); err == nil || led {
			t.Errorf("%s: Run = %v (led: %v), want an error before campaigning", tc.name, err, led)
		}
	}
}
