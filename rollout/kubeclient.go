package rollout

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// DeploymentAPI is what the Kubernetes target needs of the API server (the ClusterRole storagebot-rollout
// of deploy/kubernetes grants exactly get and patch).
type DeploymentAPI interface {
	GetDeployment(ctx context.Context, namespace, name string) (*KubeDeployment, error)
	// PatchDeployment applies a strategic merge patch, as `kubectl rollout restart` does.
	PatchDeployment(ctx context.Context, namespace, name string, patch []byte) (*KubeDeployment, error)
}

// LeaseAPI is what leader election needs of the API server (the Role storagebot-leader-election grants
// exactly get, create and update). UpdateLease must refuse with 409 Conflict a Lease whose resourceVersion
// is stale: that is what keeps two replicas from taking the same Lease.
type LeaseAPI interface {
	GetLease(ctx context.Context, namespace, name string) (*Lease, error)
	CreateLease(ctx context.Context, lease *Lease) (*Lease, error)
	UpdateLease(ctx context.Context, lease *Lease) (*Lease, error)
}

var (
	deploymentsResource = deploymentKind.GroupVersion().WithResource("deployments")
	leasesResource      = leaseKind.GroupVersion().WithResource("leases")
)

// KubeClient talks to the API server through client-go's dynamic client and converts the two kinds
// storagebot uses to the structs of kubetypes.go. It does not use the typed clientset on purpose: linking it runs
// the init of its scheme and of every API group (some 20 ms) in every command of the binary, including
// `storagebot check`, which never talks to Kubernetes.
type KubeClient struct {
	Dynamic dynamic.Interface
}

var (
	_ DeploymentAPI = (*KubeClient)(nil)
	_ LeaseAPI      = (*KubeClient)(nil)
)

// NewKubeClient connects to the API server cfg describes.
func NewKubeClient(cfg *rest.Config) (*KubeClient, error) {
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client: %w", err)
	}
	return &KubeClient{Dynamic: d}, nil
}

func (c *KubeClient) GetDeployment(ctx context.Context, namespace, name string) (*KubeDeployment, error) {
	u, err := c.Dynamic.Resource(deploymentsResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	return fromUnstructured[KubeDeployment](u, err)
}

func (c *KubeClient) PatchDeployment(ctx context.Context, namespace, name string, patch []byte) (*KubeDeployment, error) {
	u, err := c.Dynamic.Resource(deploymentsResource).Namespace(namespace).
		Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "storagebot"})
	return fromUnstructured[KubeDeployment](u, err)
}

func (c *KubeClient) GetLease(ctx context.Context, namespace, name string) (*Lease, error) {
	u, err := c.Dynamic.Resource(leasesResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	return fromUnstructured[Lease](u, err)
}

func (c *KubeClient) CreateLease(ctx context.Context, lease *Lease) (*Lease, error) {
	u, err := toUnstructured(lease, leaseKind)
	if err != nil {
		return nil, err
	}
	u, err = c.Dynamic.Resource(leasesResource).Namespace(lease.Namespace).Create(ctx, u, metav1.CreateOptions{FieldManager: "storagebot"})
	return fromUnstructured[Lease](u, err)
}

func (c *KubeClient) UpdateLease(ctx context.Context, lease *Lease) (*Lease, error) {
	u, err := toUnstructured(lease, leaseKind)
	if err != nil {
		return nil, err
	}
	u, err = c.Dynamic.Resource(leasesResource).Namespace(lease.Namespace).Update(ctx, u, metav1.UpdateOptions{FieldManager: "storagebot"})
	return fromUnstructured[Lease](u, err)
}

// fromUnstructured converts what the dynamic client returned to T, passing its error through untouched so
// that apierrors.IsNotFound and the like still recognise it.
func fromUnstructured[T any](u *unstructured.Unstructured, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	var obj T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), &obj); err != nil {
		return nil, fmt.Errorf("decode %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return &obj, nil
}

// toUnstructured converts obj for the dynamic client, which sends apiVersion and kind as they are set.
func toUnstructured(obj any, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", gvk.Kind, err)
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	return u, nil
}
