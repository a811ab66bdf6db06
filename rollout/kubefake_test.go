package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Test-only adapters from client-go's fakes to the interfaces KubeClient implements. The binary does not
// link client-go (see KubeClient); its fakes stay the most faithful stand-in for an API server short of a
// real one (kubernetes_real_test.go), so the unit tests keep them and convert at this seam.

var leasesResource = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// dynamicLeases serves LeaseAPI from client-go's dynamic client (the fake one in the tests), converting
// objects through JSON and refusals into *APIError, as they reach KubeClient from the API server.
type dynamicLeases struct {
	Dynamic dynamic.Interface
}

var _ LeaseAPI = (*dynamicLeases)(nil)

func (c *dynamicLeases) GetLease(ctx context.Context, namespace, name string) (*Lease, error) {
	return fromUnstructured[Lease](c.Dynamic.Resource(leasesResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{}))
}

func (c *dynamicLeases) CreateLease(ctx context.Context, lease *Lease) (*Lease, error) {
	u, err := leaseToUnstructured(lease)
	if err != nil {
		return nil, err
	}
	return fromUnstructured[Lease](c.Dynamic.Resource(leasesResource).Namespace(lease.Namespace).Create(ctx, u, metav1.CreateOptions{FieldManager: "storagebot"}))
}

func (c *dynamicLeases) UpdateLease(ctx context.Context, lease *Lease) (*Lease, error) {
	u, err := leaseToUnstructured(lease)
	if err != nil {
		return nil, err
	}
	return fromUnstructured[Lease](c.Dynamic.Resource(leasesResource).Namespace(lease.Namespace).Update(ctx, u, metav1.UpdateOptions{FieldManager: "storagebot"}))
}

func leaseToUnstructured(lease *Lease) (*unstructured.Unstructured, error) {
	body := *lease
	body.TypeMeta = TypeMeta{APIVersion: leaseAPIVersion, Kind: leaseKind}
	data, err := json.Marshal(&body)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	return u, u.UnmarshalJSON(data)
}

func fromUnstructured[T any](u *unstructured.Unstructured, err error) (*T, error) {
	if err != nil {
		return nil, asAPIError(err)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var obj T
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", u.GetKind(), err)
	}
	return &obj, nil
}

// asAPIError turns client-go's StatusError into the *APIError KubeClient returns for the same Status.
func asAPIError(err error) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	s := status.Status()
	return &APIError{Code: int(s.Code), Reason: string(s.Reason), Message: s.Message}
}
