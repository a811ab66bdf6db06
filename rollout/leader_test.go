package rollout

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// enforceResourceVersions makes the fake clientset treat Leases as the API server does: every write gets a
// new resourceVersion, and an update carrying a stale one is refused with 409 Conflict. Without it two
// electors both "acquire" the same Lease.
func enforceResourceVersions(c *fake.Clientset) {
	var mu sync.Mutex
	next := 0
	gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
	c.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		switch a.GetVerb() { // switch on the verb: an UpdateAction also satisfies CreateAction
		case "create":
			a := a.(k8stesting.CreateAction)
			l := a.GetObject().(*coordinationv1.Lease).DeepCopy()
			next++
			l.ResourceVersion = strconv.Itoa(next)
			if err := c.Tracker().Create(gvr, l, a.GetNamespace()); err != nil {
				return true, nil, err
			}
			return true, l, nil
		case "update":
			a := a.(k8stesting.UpdateAction)
			l := a.GetObject().(*coordinationv1.Lease).DeepCopy()
			cur, err := c.Tracker().Get(gvr, a.GetNamespace(), l.Name)
			if err != nil {
				return true, nil, err
			}
			if cur.(*coordinationv1.Lease).ResourceVersion != l.ResourceVersion {
				return true, nil, apierrors.NewConflict(gvr.GroupResource(), l.Name, nil)
			}
			next++
			l.ResourceVersion = strconv.Itoa(next)
			return true, l, c.Tracker().Update(gvr, l, a.GetNamespace())
		}
		return false, nil, nil
	})
}

// TestElectionOnlyTheLeaderLeads runs two replicas against one Lease: exactly one leads; when it stops, the
// other takes over.
func TestElectionOnlyTheLeaderLeads(t *testing.T) {
	client := fake.NewSimpleClientset()
	enforceResourceVersions(client)
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
