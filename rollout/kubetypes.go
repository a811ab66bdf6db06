package rollout

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The two kinds storagebot uses, with the fields it needs, in the JSON of the Kubernetes API. They are
// declared here rather than taken from k8s.io/api: apps/v1 pulls in core/v1, whose package variables (the
// API documentation of every core type) cost every command of the binary ~1 ms at init, for a Deployment
// that storagebot only reads and patches.

var (
	deploymentKind = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	leaseKind      = schema.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}
)

// KubeDeployment is what the Kubernetes target reads of an apps/v1 Deployment: the pod template's annotations
// (which GitHub deployment restarted it) and what `kubectl rollout status` decides on. It is never written
// back whole (restarts are patches), so the fields left out are not lost.
type KubeDeployment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              KubeDeploymentSpec   `json:"spec,omitempty"`
	Status            KubeDeploymentStatus `json:"status,omitempty"`
}

type KubeDeploymentSpec struct {
	Replicas *int32 `json:"replicas,omitempty"`
	Template struct {
		metav1.ObjectMeta `json:"metadata,omitempty"`
	} `json:"template"`
}

type KubeDeploymentStatus struct {
	ObservedGeneration int64                     `json:"observedGeneration,omitempty"`
	Replicas           int32                     `json:"replicas,omitempty"`
	UpdatedReplicas    int32                     `json:"updatedReplicas,omitempty"`
	AvailableReplicas  int32                     `json:"availableReplicas,omitempty"`
	Conditions         []KubeDeploymentCondition `json:"conditions,omitempty"`
}

type KubeDeploymentCondition struct {
	Type    string `json:"type"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// deploymentProgressing is the condition type that carries ProgressDeadlineExceeded.
const deploymentProgressing = "Progressing"

// Lease is a coordination.k8s.io/v1 Lease with every field of its spec, since leader election writes the
// Lease back whole: a field left out here would be erased on every renewal.
type Lease struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              LeaseSpec `json:"spec,omitempty"`
}

type LeaseSpec struct {
	HolderIdentity       *string           `json:"holderIdentity,omitempty"`
	LeaseDurationSeconds *int32            `json:"leaseDurationSeconds,omitempty"`
	AcquireTime          *metav1.MicroTime `json:"acquireTime,omitempty"`
	RenewTime            *metav1.MicroTime `json:"renewTime,omitempty"`
	LeaseTransitions     *int32            `json:"leaseTransitions,omitempty"`
	Strategy             *string           `json:"strategy,omitempty"`
	PreferredHolder      *string           `json:"preferredHolder,omitempty"`
}

// DeepCopy copies l so that the copy can be changed without touching l.
func (l *Lease) DeepCopy() *Lease {
	c := &Lease{TypeMeta: l.TypeMeta, Spec: l.Spec}
	l.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	s := &c.Spec
	s.HolderIdentity, s.LeaseDurationSeconds, s.LeaseTransitions = clone(s.HolderIdentity), clone(s.LeaseDurationSeconds), clone(s.LeaseTransitions)
	s.AcquireTime, s.RenewTime = clone(s.AcquireTime), clone(s.RenewTime)
	s.Strategy, s.PreferredHolder = clone(s.Strategy), clone(s.PreferredHolder)
	return c
}

// clone copies what p points to.
func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
