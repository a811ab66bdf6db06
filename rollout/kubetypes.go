package rollout

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// The two kinds storagebot uses, with the fields it needs, in the JSON of the Kubernetes API. They are
// declared here rather than taken from k8s.io/api and k8s.io/apimachinery: linking those (and client-go) runs
// the init of their schemes and package variables in every command of the binary, `storagebot check`
// included, for a Deployment that storagebot only reads and patches and a Lease it reads and writes.

const (
	deploymentAPIVersion = "apps/v1"
	leaseAPIVersion      = "coordination.k8s.io/v1"
	leaseKind            = "Lease"
)

// TypeMeta is the apiVersion and kind every object carries.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// ObjectMeta is the part of an object's metadata storagebot reads, plus what a whole-object write (a Lease
// update) must send back so as not to erase it: labels, annotations, owner references and finalizers. The
// fields the API server alone sets (managedFields, deletionTimestamp...) are kept by it when a write omits them.
type ObjectMeta struct {
	Name              string            `json:"name,omitempty"`
	Namespace         string            `json:"namespace,omitempty"`
	UID               string            `json:"uid,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	Generation        int64             `json:"generation,omitempty"`
	CreationTimestamp Time              `json:"creationTimestamp,omitzero"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	OwnerReferences   []json.RawMessage `json:"ownerReferences,omitempty"`
	Finalizers        []string          `json:"finalizers,omitempty"`
}

// deepCopy copies m so that the copy's maps and slices can be changed without touching m.
func (m ObjectMeta) deepCopy() ObjectMeta {
	c := m
	c.Labels, c.Annotations = maps.Clone(m.Labels), maps.Clone(m.Annotations)
	c.Finalizers = slices.Clone(m.Finalizers)
	if m.OwnerReferences != nil {
		c.OwnerReferences = make([]json.RawMessage, len(m.OwnerReferences))
		for i, r := range m.OwnerReferences {
			c.OwnerReferences[i] = slices.Clone(r)
		}
	}
	return c
}

// Time is a timestamp as the Kubernetes API writes most of them: RFC 3339 in UTC, whole seconds.
type Time struct{ time.Time }

func (t Time) MarshalJSON() ([]byte, error) {
	return marshalTime(t.Time, time.RFC3339)
}

func (t *Time) UnmarshalJSON(data []byte) error {
	return unmarshalTime(data, &t.Time)
}

// MicroTime is a timestamp with microseconds, as Leases store their acquire and renew times: RFC 3339 in
// UTC with exactly six fractional digits, e.g. "2026-12-02T02:30:00.000000Z".
type MicroTime struct{ time.Time }

// rfc3339Micro is the layout of MicroTime (apimachinery's metav1.RFC3339Micro).
const rfc3339Micro = "2006-01-02T15:04:05.000000Z07:00"

// NewMicroTime returns t as a MicroTime.
func NewMicroTime(t time.Time) MicroTime { return MicroTime{t} }

func (t MicroTime) MarshalJSON() ([]byte, error) {
	return marshalTime(t.Time, rfc3339Micro)
}

func (t *MicroTime) UnmarshalJSON(data []byte) error {
	return unmarshalTime(data, &t.Time)
}

// marshalTime writes t in UTC with layout, and the zero time as null, as apimachinery does.
func marshalTime(t time.Time, layout string) ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(layout))
}

// unmarshalTime reads an RFC 3339 string with or without fractional seconds; null is the zero time.
func unmarshalTime(data []byte, t *time.Time) error {
	if string(data) == "null" {
		*t = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	parsed, err := time.Parse(time.RFC3339, s) // accepts fractional seconds though the layout has none
	if err != nil {
		return err
	}
	*t = parsed
	return nil
}

// KubeDeployment is what the Kubernetes target reads of an apps/v1 Deployment: the pod template's annotations
// (which GitHub deployment restarted it) and what `kubectl rollout status` decides on. It is never written
// back whole (restarts are patches), so the fields left out are not lost.
type KubeDeployment struct {
	TypeMeta
	ObjectMeta `json:"metadata,omitzero"`
	Spec       KubeDeploymentSpec   `json:"spec,omitzero"`
	Status     KubeDeploymentStatus `json:"status,omitzero"`
}

type KubeDeploymentSpec struct {
	Replicas *int32 `json:"replicas,omitempty"`
	Template struct {
		ObjectMeta `json:"metadata,omitzero"`
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
	TypeMeta
	ObjectMeta `json:"metadata,omitzero"`
	Spec       LeaseSpec `json:"spec,omitzero"`
}

type LeaseSpec struct {
	HolderIdentity       *string    `json:"holderIdentity,omitempty"`
	LeaseDurationSeconds *int32     `json:"leaseDurationSeconds,omitempty"`
	AcquireTime          *MicroTime `json:"acquireTime,omitempty"`
	RenewTime            *MicroTime `json:"renewTime,omitempty"`
	LeaseTransitions     *int32     `json:"leaseTransitions,omitempty"`
	Strategy             *string    `json:"strategy,omitempty"`
	PreferredHolder      *string    `json:"preferredHolder,omitempty"`
}

// DeepCopy copies l so that the copy can be changed without touching l.
func (l *Lease) DeepCopy() *Lease {
	c := &Lease{TypeMeta: l.TypeMeta, ObjectMeta: l.ObjectMeta.deepCopy(), Spec: l.Spec}
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
