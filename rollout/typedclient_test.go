package rollout

import (
	"context"
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// typedDeployments serves the Kubernetes target from a typed clientset, such as the fake one the controller
// tests drive. Only tests link the typed clientset; the binary talks through KubeClient.
type typedDeployments struct{ kubernetes.Interface }

var _ DeploymentAPI = typedDeployments{}

func (c typedDeployments) GetDeployment(ctx context.Context, namespace, name string) (*KubeDeployment, error) {
	return asDeployment(c.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{}))
}

func (c typedDeployments) PatchDeployment(ctx context.Context, namespace, name string, patch []byte) (*KubeDeployment, error) {
	return asDeployment(c.AppsV1().Deployments(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "storagebot"}))
}

// asDeployment converts through JSON, as the API server's answer reaches KubeClient.
func asDeployment(d *appsv1.Deployment, err error) (*KubeDeployment, error) {
	if err != nil {
		return nil, asAPIError(err)
	}
	data, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	var out KubeDeployment
	return &out, json.Unmarshal(data, &out)
}
