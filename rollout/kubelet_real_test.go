package rollout

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// kubelet plays the one node of the real-tier cluster, which has no kubelet or scheduler: it heartbeats its
// Node's Lease, binds every Pod to the node, reports the Pods Running and Ready (unless their app is marked
// broken) and finishes deleting terminating Pods. The ReplicaSet and Deployment controllers of
// kube-controller-manager then compute availability and rollout progress for real.
type kubelet struct {
	client kubernetes.Interface
	node   string

	mu        sync.Mutex
	broken    map[string]bool // values of the "app" label whose Pods never become ready
	lastReady time.Time       // when a Pod was last reported Ready
}

const kubeletHeartbeat = 5 * time.Second

// startKubelet registers the node and plays its kubelet until t ends.
func startKubelet(t *testing.T, client kubernetes.Interface, node string) *kubelet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	k := &kubelet{client: client, node: node, broken: map[string]bool{}}
	if err := k.register(ctx); err != nil {
		cancel()
		t.Fatalf("register node %s: %v", node, err)
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 2*time.Second))
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		cancel()
		t.Fatalf("watch pods: %v", err)
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			key, quit := queue.Get()
			if quit {
				return
			}
			if err := k.sync(ctx, pods.Lister(), key); err != nil && ctx.Err() == nil {
				queue.AddRateLimited(key) // a conflict with the controllers' writes: try again
			} else {
				queue.Forget(key)
			}
			queue.Done(key)
		}
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(kubeletHeartbeat)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := k.heartbeat(ctx); err != nil && ctx.Err() == nil {
					t.Logf("kubelet %s: heartbeat: %v", node, err)
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		queue.ShutDown()
		factory.Shutdown()
		wg.Wait()
	})
	return k
}

// setBroken makes the Pods of app never become ready from now on (their image does not start).
func (k *kubelet) setBroken(app string, broken bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.broken[app] = broken
}

// lastReadyAt is when a Pod was last reported Ready.
func (k *kubelet) lastReadyAt() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastReady
}

// register creates the Node, reports it Ready and takes its Lease in kube-node-lease, as a kubelet does on
// start; the node lifecycle controller would otherwise mark the node unreachable and its Pods not ready.
func (k *kubelet) register(ctx context.Context) error {
	nodes := k.client.CoreV1().Nodes()
	if _, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.node}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	// The controllers write the new Node too (taints, CIDR): report Ready on the latest version of it.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := nodes.Get(ctx, k.node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		node.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}}
		_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("report Ready: %w", err)
	}
	return k.heartbeat(ctx)
}

// heartbeat renews the node's Lease, creating it the first time.
func (k *kubelet) heartbeat(ctx context.Context) error {
	leases := k.client.CoordinationV1().Leases("kube-node-lease")
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, k.node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		seconds := int32(40)
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.node},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &k.node, LeaseDurationSeconds: &seconds, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// sync does for one Pod what the scheduler and the kubelet would do next.
func (k *kubelet) sync(ctx context.Context, lister corelisters.PodLister, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	pods := k.client.CoreV1().Pods(ns)
	switch {
	case pod.DeletionTimestamp != nil:
		// The containers have stopped: remove the Pod for good, as the kubelet does at the end of a grace period.
		zero := int64(0)
		err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	case pod.Spec.NodeName == "":
		err := pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: k.node},
		}, metav1.CreateOptions{})
		if apierrors.IsConflict(err) { // bound already
			return nil
		}
		return err
	case podReady(pod):
		return nil
	}
	k.mu.Lock()
	broken := k.broken[pod.Labels["app"]]
	k.mu.Unlock()
	if broken {
		if len(pod.Status.ContainerStatuses) == 0 {
			return k.reportBroken(ctx, pod)
		}
		return nil
	}
	now := metav1.Now()
	p := pod.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		started := true
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "sha256:" + fmt.Sprintf("%064x", 0), Ready: true, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return err
	}
	k.mu.Lock()
	k.lastReady = time.Now()
	k.mu.Unlock()
	return nil
}

// reportBroken reports a Pod whose image cannot be pulled: Pending, its container waiting, not ready.
func (k *kubelet) reportBroken(ctx context.Context, pod *corev1.Pod) error {
	now := metav1.Now()
	p := pod.DeepCopy()
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: now},
	}
	p.Status.ContainerStatuses = nil
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}},
		})
	}
	_, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
