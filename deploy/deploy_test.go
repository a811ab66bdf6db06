package deploy

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// strict decodes YAML into client-go's typed objects, refusing unknown and duplicate fields, as the API server
// does with fieldValidation=Strict.
var strict = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// decode strictly decodes one object.
func decode(data []byte) (runtime.Object, error) {
	obj, gvk, err := strict.Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	if gvk.Kind == "" {
		return nil, fmt.Errorf("no kind")
	}
	return obj, nil
}

// rendered is the kustomization as kustomize renders it, every object decoded strictly.
type rendered struct {
	objects []runtime.Object
}

func render(t *testing.T) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "kubernetes")
	if err != nil {
		t.Fatalf("render the kustomization: %v", err)
	}
	var r rendered
	for _, res := range m.Resources() {
		data, err := res.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", res.CurId(), err)
		}
		obj, err := decode(data)
		if err != nil {
			t.Errorf("%s: %v\n%s", res.CurId(), err, data)
			continue
		}
		r.objects = append(r.objects, obj)
	}
	if t.Failed() {
		t.FailNow()
	}
	return r
}

// one returns the only object of type T named name.
func one[T runtime.Object](t *testing.T, r rendered, name string) T {
	t.Helper()
	var found []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok && o.(metav1.Object).GetName() == name {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects %T named %q, want 1", len(found), zero, name)
	}
	return found[0]
}

// TestStrictDecodingRefusesUnknownFields shows the validation is not lenient: a misspelt field fails.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n",
		"nested typo":   "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, targtPort: 8080}]}\n",
		"duplicate":     "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x, name: y}\n",
		"unknown kind":  "apiVersion: apps/v1\nkind: Deploymnt\nmetadata: {name: x}\n",
	} {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestKustomizationRendersValidObjects renders deploy/kubernetes and holds every object to what matters: the
// kinds and names, the namespace, and names Kubernetes accepts.
func TestKustomizationRendersValidObjects(t *testing.T) {
	r := render(t)
	var got []string
	for _, o := range r.objects {
		meta := o.(metav1.Object)
		kind := o.GetObjectKind().GroupVersionKind().Kind
		name := meta.GetName()
		if kind == "ConfigMap" {
			name = "storagebot-config-<hash>"
		}
		got = append(got, kind+"/"+name)
		if errs := validation.IsDNS1123Subdomain(meta.GetName()); len(errs) > 0 {
			t.Errorf("%s %s: %v", kind, meta.GetName(), errs)
		}
		if kind != "ClusterRole" && meta.GetNamespace() != "storagebot" {
			t.Errorf("%s %s: namespace %q, want storagebot", kind, meta.GetName(), meta.GetNamespace())
		}
	}
	slices.Sort(got)
	want := []string{
		"ClusterRole/storagebot-rollout",
		"ConfigMap/storagebot-config-<hash>",
		"Deployment/storagebot",
		"NetworkPolicy/storagebot",
		"PodDisruptionBudget/storagebot",
		"Role/storagebot-leader-election",
		"RoleBinding/storagebot-leader-election",
		"Service/storagebot",
		"ServiceAccount/storagebot",
	}
	if !slices.Equal(got, want) {
		t.Errorf("objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// serveConfig is the part of deploy/kubernetes/config.yml the manifests must agree with.
type serveConfig struct {
	Addr            string `yaml:"addr"`
	ShutdownTimeout string `yaml:"shutdown_timeout"`
}

func readServeConfig(t *testing.T) serveConfig {
	t.Helper()
	data, err := os.ReadFile("kubernetes/config.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c serveConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func containerPort(t *testing.T, c corev1.Container, port intstr.IntOrString) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort
		}
	}
	t.Fatalf("port %s is no port of container %s", port.String(), c.Name)
	return 0
}

func TestDeployment(t *testing.T) {
	r := render(t)
	d := one[*appsv1.Deployment](t, r, "storagebot")
	cfg := readServeConfig(t)
	_, portText, ok := strings.Cut(cfg.Addr, ":")
	listen, err := strconv.Atoi(portText)
	if !ok || err != nil {
		t.Fatalf("config.yml addr %q: want :PORT", cfg.Addr)
	}

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the pod labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	// The server listens where the container port, the probes and the Service say.
	if got := containerPort(t, c, intstr.FromString("http")); int(got) != listen {
		t.Errorf("container port http = %d, config.yml listens on %d", got, listen)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET of %s", p.name, p.path)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || int(containerPort(t, c, p.probe.HTTPGet.Port)) != listen {
			t.Errorf("%s probe: GET %s on %s, want %s on the listening port %d", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path, listen)
		}
	}
	svc := one[*corev1.Service](t, r, "storagebot")
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select the pods", svc.Spec.Selector)
	}
	for _, p := range svc.Spec.Ports {
		if int(containerPort(t, c, p.TargetPort)) != listen {
			t.Errorf("Service port %d targets %s, not the listening port", p.Port, p.TargetPort.String())
		}
	}

	// Draining takes shutdown_timeout, plus 5 s to close the listener, before the kubelet's SIGKILL.
	drain, err := time.ParseDuration(cfg.ShutdownTimeout)
	if err != nil {
		t.Fatalf("config.yml shutdown_timeout: %v", err)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v, want more than shutdown_timeout %s + 5s", g, drain)
	}

	// Non-root, read-only root filesystem, nothing to escalate with.
	if s := pod.SecurityContext; s == nil || s.RunAsNonRoot == nil || !*s.RunAsNonRoot || s.RunAsUser == nil || *s.RunAsUser == 0 ||
		s.SeccompProfile == nil || s.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, a non-zero runAsUser and the RuntimeDefault seccomp profile", s)
	}
	s := c.SecurityContext
	if s == nil || s.RunAsNonRoot == nil || !*s.RunAsNonRoot || s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem ||
		s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation || s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		(s.Privileged != nil && *s.Privileged) {
		t.Errorf("container securityContext %+v: want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, every capability dropped", s)
	}
	// With a read-only root, every writable mount must be an emptyDir; the rest are read-only.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		switch {
		case !ok:
			t.Errorf("mount %s: no volume %q", m.MountPath, m.Name)
		case !m.ReadOnly && v.EmptyDir == nil:
			t.Errorf("mount %s of volume %s is writable but not an emptyDir", m.MountPath, m.Name)
		}
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("the pod shares a host namespace")
	}

	// The configuration is the generated ConfigMap, under its hashed name.
	var cm *corev1.ConfigMap
	for _, o := range r.objects {
		if v, ok := o.(*corev1.ConfigMap); ok && strings.HasPrefix(v.Name, "storagebot-config-") {
			cm = v
		}
	}
	if cm == nil || volumes["config"].ConfigMap == nil || volumes["config"].ConfigMap.Name != cm.Name {
		t.Errorf("volume config does not mount the generated ConfigMap %v", cm)
	} else if want, _ := os.ReadFile("kubernetes/config.yml"); cm.Data["config.yml"] != string(want) {
		t.Errorf("ConfigMap config.yml differs from kubernetes/config.yml")
	}

	// Credentials come from the Secret storagebot: the App ID and webhook secret as variables, the key as a file.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for name, key := range map[string]string{"GITHUB_APP_INTEGRATION_ID": "app-id", "GITHUB_APP_WEBHOOK_SECRET": "webhook-secret"} {
		e := env[name]
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "storagebot" || e.ValueFrom.SecretKeyRef.Key != key {
			t.Errorf("%s: want secretKeyRef storagebot/%s, got %+v", name, key, e)
		}
	}
	keyVol := volumes["app-key"]
	if keyVol.Secret == nil || keyVol.Secret.SecretName != "storagebot" || !strings.HasPrefix(env["GITHUB_APP_PRIVATE_KEY"].Value, "/var/run/secrets/storagebot/") {
		t.Errorf("GITHUB_APP_PRIVATE_KEY %q: want a file of the storagebot Secret's volume", env["GITHUB_APP_PRIVATE_KEY"].Value)
	}
	for _, name := range []string{"POD_NAME", "POD_NAMESPACE"} {
		if e := env[name]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
			t.Errorf("%s: want the downward API (--leader-elect names the Lease holder and namespace with it)", name)
		}
	}

	// Memory: a request, a limit above it, and GOMEMLIMIT far enough below the limit for non-heap memory
	// (goroutine stacks and connection buffers, ~15 MiB at 160 connections in docs/benchmarks.md).
	req, lim := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
	if req.IsZero() || lim.IsZero() || req.Cmp(*lim) > 0 || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources %+v: want CPU and memory requests and a memory limit at least the request", c.Resources)
	}
	soft, err := resource.ParseQuantity(strings.TrimSuffix(env["GOMEMLIMIT"].Value, "B"))
	if err != nil {
		t.Fatalf("GOMEMLIMIT %q: %v", env["GOMEMLIMIT"].Value, err)
	}
	if headroom := lim.Value() - soft.Value(); headroom < 32<<20 {
		t.Errorf("GOMEMLIMIT %s leaves %d MiB under the %s limit, want at least 32 MiB for non-heap memory", &soft, headroom>>20, lim)
	}
	if d.Spec.Template.Spec.ServiceAccountName != one[*corev1.ServiceAccount](t, r, "storagebot").Name {
		t.Errorf("serviceAccountName %q", d.Spec.Template.Spec.ServiceAccountName)
	}
	if !slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("args %v: two replicas need --leader-elect so one runs the periodic passes", c.Args)
	}
}

func TestDisruptionBudgetAndNetworkPolicy(t *testing.T) {
	r := render(t)
	d := one[*appsv1.Deployment](t, r, "storagebot")
	podLabels := labels.Set(d.Spec.Template.Labels)
	c := d.Spec.Template.Spec.Containers[0]

	pdb := one[*policyv1.PodDisruptionBudget](t, r, "storagebot")
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("PDB selector %v does not select the pods %v", pdb.Spec.Selector, podLabels)
	}
	// One replica may go (a drain can proceed), one stays.
	if m := pdb.Spec.MinAvailable; m == nil || m.Type != intstr.Int || m.IntVal < 1 || m.IntVal >= *d.Spec.Replicas {
		t.Errorf("PDB minAvailable %v: want at least 1 and fewer than the %d replicas", m, *d.Spec.Replicas)
	}

	np := one[*networkingv1.NetworkPolicy](t, r, "storagebot")
	nsel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || nsel.Empty() || !nsel.Matches(podLabels) {
		t.Errorf("NetworkPolicy podSelector %v does not select the pods", np.Spec.PodSelector)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("policyTypes %v: want Ingress, or the policy admits everything", np.Spec.PolicyTypes)
	}
	webhook := containerPort(t, c, intstr.FromString("http"))
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 {
		t.Fatalf("ingress %+v: want one rule admitting one port", np.Spec.Ingress)
	}
	p := np.Spec.Ingress[0].Ports[0]
	if p.Port == nil || containerPort(t, c, *p.Port) != webhook || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) || p.EndPort != nil {
		t.Errorf("ingress port %+v, want TCP %d (the webhook port) alone", p, webhook)
	}
}

// TestRBAC holds the roles to what the code calls: client-go's Lease lock (get, create, update) for
// --leader-elect, and get and patch of the registry Deployments a rollout restarts.
func TestRBAC(t *testing.T) {
	r := render(t)
	sa := one[*corev1.ServiceAccount](t, r, "storagebot")
	type rule struct{ groups, resources, verbs string }
	rules := func(rs []rbacv1.PolicyRule) []rule {
		var out []rule
		for _, x := range rs {
			if len(x.ResourceNames) > 0 || len(x.NonResourceURLs) > 0 {
				t.Errorf("rule %+v: unexpected resourceNames or nonResourceURLs", x)
			}
			out = append(out, rule{strings.Join(x.APIGroups, ","), strings.Join(x.Resources, ","), strings.Join(x.Verbs, ",")})
		}
		return out
	}
	role := one[*rbacv1.Role](t, r, "storagebot-leader-election")
	if got, want := rules(role.Rules), []rule{{"coordination.k8s.io", "leases", "get,create,update"}}; !slices.Equal(got, want) {
		t.Errorf("Role rules %+v, want %+v", got, want)
	}
	cr := one[*rbacv1.ClusterRole](t, r, "storagebot-rollout")
	if got, want := rules(cr.Rules), []rule{{"apps", "deployments", "get,patch"}}; !slices.Equal(got, want) {
		t.Errorf("ClusterRole rules %+v, want %+v", got, want)
	}
	rb := one[*rbacv1.RoleBinding](t, r, "storagebot-leader-election")
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || len(rb.Subjects) != 1 ||
		rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != sa.Name || rb.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("RoleBinding %+v: want Role %s bound to ServiceAccount %s/%s", rb, role.Name, sa.Namespace, sa.Name)
	}

	// The registry binding is applied on its own, in the registry's namespace.
	data, err := os.ReadFile("kubernetes/role-registry-binding.yml")
	if err != nil {
		t.Fatal(err)
	}
	obj, err := decode(data)
	if err != nil {
		t.Fatalf("role-registry-binding.yml: %v", err)
	}
	reg, ok := obj.(*rbacv1.RoleBinding)
	if !ok || reg.RoleRef.Kind != "ClusterRole" || reg.RoleRef.Name != cr.Name || len(reg.Subjects) != 1 ||
		reg.Subjects[0].Name != sa.Name || reg.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("role-registry-binding.yml %+v: want ClusterRole %s bound to ServiceAccount %s/%s", obj, cr.Name, sa.Namespace, sa.Name)
	}
}
