package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/storagebot/storagebot/internal/repoconfig"
)

// Pod template annotations the Kubernetes target sets. restartedAt is the one `kubectl rollout restart`
// sets; the deployment annotation records which GitHub Deployment restarted it, so a resumed rollout waits
// instead of restarting the pods a second time.
const (
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
	AnnotationDeployment  = "storagebot.github.io/deployment"
)

// Kubernetes rolls distributions out by restarting a Deployment, like `kubectl rollout restart`, and waits
// for it like `kubectl rollout status`.
type Kubernetes struct {
	Client DeploymentAPI
	// Poll is how often the Deployment is read while waiting; 0 means 2s.
	Poll time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var _ Target = (*Kubernetes)(nil)

// Rollout restarts the distribution's Deployment (once per GitHub deployment id) and waits until it is
// rolled out, failing on ProgressDeadlineExceeded or when deadline passes.
func (k *Kubernetes) Rollout(ctx context.Context, d repoconfig.Distribution, deploymentID int64, image string, deadline time.Time) error {
	t := d.Deploy.Kubernetes
	if t == nil {
		return fmt.Errorf("distribution %s has no deploy.kubernetes target", d.Name)
	}
	ref := t.Namespace + "/" + t.Deployment
	cur, err := k.Client.GetDeployment(ctx, t.Namespace, t.Deployment)
	if err != nil {
		return fmt.Errorf("read Deployment %s: %w", ref, explain(err, ref))
	}
	id := strconv.FormatInt(deploymentID, 10)
	if cur.Spec.Template.Annotations[AnnotationDeployment] != id {
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{
				AnnotationRestartedAt: k.now().UTC().Format(time.RFC3339),
				AnnotationDeployment:  id,
			}}}}})
		cur, err = k.Client.PatchDeployment(ctx, t.Namespace, t.Deployment, patch)
		if err != nil {
			return fmt.Errorf("restart Deployment %s: %w", ref, explain(err, ref))
		}
	}
	poll := k.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	for {
		done, reason, err := rolledOut(cur)
		if err != nil {
			return fmt.Errorf("Deployment %s: %w", ref, err)
		}
		if done {
			return nil
		}
		if !k.now().Before(deadline) {
			return fmt.Errorf("Deployment %s did not finish rolling out by %s (%s); check its pods with kubectl -n %s describe deployment %s",
				ref, deadline.UTC().Format(time.RFC3339), reason, t.Namespace, t.Deployment)
		}
		wait := time.NewTimer(min(poll, time.Until(deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-wait.C:
		}
		if cur, err = k.Client.GetDeployment(ctx, t.Namespace, t.Deployment); err != nil {
			return fmt.Errorf("read Deployment %s: %w", ref, explain(err, ref))
		}
	}
}

func (k *Kubernetes) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// rolledOut decides as `kubectl rollout status` does: the controller has observed the latest generation,
// every replica is updated and available and no old replica is left. ProgressDeadlineExceeded is final.
func rolledOut(d *KubeDeployment) (bool, string, error) {
	if d.Generation > d.Status.ObservedGeneration {
		return false, "waiting for the deployment spec update to be observed", nil
	}
	for _, c := range d.Status.Conditions {
		if c.Type == deploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, "", fmt.Errorf("exceeded its progress deadline (ProgressDeadlineExceeded: %s); fix what keeps its new pods from becoming ready", c.Message)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	switch {
	case d.Status.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d new replicas have been updated", d.Status.UpdatedReplicas, want), nil
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas are pending termination", d.Status.Replicas-d.Status.UpdatedReplicas), nil
	case d.Status.AvailableReplicas < d.Status.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas are available", d.Status.AvailableReplicas, d.Status.UpdatedReplicas), nil
	}
	return true, "", nil
}

// explain turns Kubernetes refusals into what to fix. The API server's message stays first: for RBAC it
// names the user, the verb and the resource refused.
func explain(err error, ref string) error {
	switch {
	case IsNotFound(err):
		return fmt.Errorf("%w (no such Deployment: create it, or fix deploy.kubernetes in .github/storagebot.yml)", err)
	case IsForbidden(err):
		return fmt.Errorf("%w (storagebot's service account may not get and patch %s: apply the Role in deploy/kubernetes)", err, ref)
	case IsUnauthorized(err):
		return fmt.Errorf("%w (the API server rejected storagebot's credentials: check its ServiceAccount token or kubeconfig)", err)
	}
	return err
}

// ErrNoCluster is returned when neither in-cluster credentials nor a kubeconfig are available.
var ErrNoCluster = errors.New("no Kubernetes credentials: run in a cluster or pass --kubeconfig")

// KubernetesClient connects to the cluster storagebot runs in, or, when kubeconfig is set, to the one that
// file's current context names. ErrNoCluster when there is neither.
func KubernetesClient(kubeconfig string) (*KubeClient, error) {
	var cfg *KubeConfig
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = LoadKubeconfig(kubeconfig)
	default:
		cfg, err = InClusterConfig()
		if errors.Is(err, errNotInCluster) {
			return nil, ErrNoCluster
		}
	}
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client configuration: %w", err)
	}
	return NewKubeClient(cfg)
}

// Targets picks each distribution's rollout target: its Kubernetes Deployment through kube (connected on
// first use), or its deploy workflow.
type Targets struct {
	Kube func() (DeploymentAPI, error)
	// Poll is how often rollouts are checked; 0 means the targets' defaults.
	Poll time.Duration
	// Wake ends deploy-workflow waits early when a run completes.
	Wake *Waker

	once   sync.Once
	client DeploymentAPI
	err    error
}

// For returns the target of d.
func (t *Targets) For(gh GitHub, d repoconfig.Distribution) (Target, error) {
	if d.Deploy.Kubernetes == nil {
		return &DeployWorkflow{GitHub: gh, Poll: t.Poll, Wake: t.Wake}, nil
	}
	t.once.Do(func() { t.client, t.err = t.Kube() })
	if t.err != nil {
		return nil, t.err
	}
	return &Kubernetes{Client: t.client, Poll: t.Poll}, nil
}
