package rollout

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Election makes one of several replicas the leader through a Kubernetes Lease: only the leader runs the
// periodic passes (reconcile, rollout), while every replica serves webhooks.
type Election struct {
	Client    kubernetes.Interface
	Namespace string
	Lease     string // the Lease's name
	Identity  string // this replica (its pod name)
	// Lease timing; zero values mean 15s, 10s and 2s (client-go's usual settings). The Lease stores whole
	// seconds, so LeaseDuration must be at least 1s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Run campaigns until ctx ends, calling lead with a context that is cancelled when leadership is lost. It
// releases the Lease on the way out so another replica takes over at once, not after the lease expires.
func (e *Election) Run(ctx context.Context, lead func(ctx context.Context), onNewLeader func(identity string)) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Lease},
		Client:     e.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	d := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		ReleaseOnCancel: true,
		LeaseDuration:   d(e.LeaseDuration, 15*time.Second),
		RenewDeadline:   d(e.RenewDeadline, 10*time.Second),
		RetryPeriod:     d(e.RetryPeriod, 2*time.Second),
		Name:            e.Lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: lead,
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if onNewLeader != nil {
					onNewLeader(id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election on Lease %s/%s: %w", e.Namespace, e.Lease, err)
	}
	// A replica that loses the lease campaigns again until ctx ends.
	for ctx.Err() == nil {
		le.Run(ctx)
	}
	return nil
}
