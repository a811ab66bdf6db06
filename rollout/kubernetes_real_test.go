package rollout

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/storagebot/storagebot/internal/kubetestenv"
	"github.com/storagebot/storagebot/internal/repoconfig"
)

// The real tier: the Kubernetes rollout target and leader election against a real kube-apiserver, etcd and
// kube-controller-manager (internal/kubetestenv), acting as storagebot's ServiceAccount with exactly the RBAC
// of deploy/kubernetes. Skipped when the control plane has not been built (.ci/kube-testenv.sh).

// deployDir is the repository's Kubernetes manifests, read as they are shipped.
const deployDir = "../deploy/kubernetes"

// realWait bounds every wait of the real tier; generous, because the machines running it are loaded.
const realWait = 2 * time.Minute

func TestRealKubernetes(t *testing.T) {
	env := kubetestenv.Start(t)
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(env.Config)

	bot := applyDeployManifests(t, ctx, admin)
	t.Logf("storagebot acts as ServiceAccount %s/%s; registry Deployments live in namespace %s", bot.namespace, bot.serviceAccount, bot.registryNamespace)
	// storagebot's own client, as the binary builds it from KUBECONFIG: a kubeconfig with the admin's client
	// certificate that impersonates the ServiceAccount (as:), so it has exactly that account's RBAC.
	botClient, err := KubernetesClient(writeKubeconfig(t, env.ImpersonatingServiceAccount(bot.namespace, bot.serviceAccount)))
	if err != nil {
		t.Fatal(err)
	}
	createNamespace(t, ctx, admin, "elsewhere") // a namespace the Role is not bound in

	kl := startKubelet(t, admin, "kubelet-play")

	t.Run("RolloutSucceeds", func(t *testing.T) {
		d := createRegistry(t, ctx, admin, bot.registryNamespace, "registry-production", 2)
		waitRolledOut(t, ctx, admin, d)
		before := getDeployment(t, ctx, admin, d)

		for _, tc := range []struct {
			name string
			poll time.Duration
			id   int64
		}{
			{"poll 100ms", 100 * time.Millisecond, 101},
			{"default poll (2s)", 0, 102},
		} {
			target := &Kubernetes{Client: botClient, Poll: tc.poll}
			err := target.Rollout(ctx, registryDistribution(d), tc.id, "registry.example/distribution:production", time.Now().Add(realWait))
			done := time.Now()
			if err != nil {
				t.Fatalf("%s: Rollout: %v", tc.name, err)
			}
			// The figure of docs/benchmarks-rollout.md: the last Pod reported Ready → the target reports success.
			t.Logf("%s: Pods Ready → rollout success: %v", tc.name, done.Sub(kl.lastReadyAt()).Round(time.Millisecond))
			after := getDeployment(t, ctx, admin, d)
			if got := after.Spec.Template.Annotations[AnnotationDeployment]; got != fmt.Sprint(tc.id) {
				t.Errorf("%s: pod template annotation %s = %q, want %d", tc.name, AnnotationDeployment, got, tc.id)
			}
			if after.Status.UpdatedReplicas != 2 || after.Status.AvailableReplicas != 2 || after.Status.Replicas != 2 {
				t.Errorf("%s: after success status has updated/available/total replicas %d/%d/%d, want 2/2/2",
					tc.name, after.Status.UpdatedReplicas, after.Status.AvailableReplicas, after.Status.Replicas)
			}
		}
		after := getDeployment(t, ctx, admin, d)
		if after.Generation != before.Generation+2 {
			t.Errorf("generation went from %d to %d over two rollouts, want +2", before.Generation, after.Generation)
		}

		// The same GitHub deployment again, as after a restart of storagebot: it waits, it does not restart.
		target := &Kubernetes{Client: botClient, Poll: 100 * time.Millisecond}
		if err := target.Rollout(ctx, registryDistribution(d), 102, "registry.example/distribution:production", time.Now().Add(realWait)); err != nil {
			t.Fatalf("resumed Rollout: %v", err)
		}
		if again := getDeployment(t, ctx, admin, d); again.Generation != after.Generation {
			t.Errorf("a resumed rollout restarted the Deployment again: generation %d → %d", after.Generation, again.Generation)
		}
	})

	t.Run("ProgressDeadlineExceeded", func(t *testing.T) {
		d := createRegistry(t, ctx, admin, bot.registryNamespace, "registry-staging", 1)
		waitRolledOut(t, ctx, admin, d)
		// The new image never starts, and the Deployment gives up on it after 2s without progress.
		kl.setBroken(d.Name, true)
		cur := getDeployment(t, ctx, admin, d)
		deadline := int32(2)
		cur.Spec.ProgressDeadlineSeconds = &deadline
		if _, err := admin.AppsV1().Deployments(d.Namespace).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("shorten the progress deadline: %v", err)
		}
		target := &Kubernetes{Client: botClient, Poll: 100 * time.Millisecond}
		err := target.Rollout(ctx, registryDistribution(d), 201, "registry.example/distribution:staging", time.Now().Add(realWait))
		if err == nil || !strings.Contains(err.Error(), "ProgressDeadlineExceeded") {
			t.Fatalf("Rollout = %v, want an error naming ProgressDeadlineExceeded", err)
		}
		t.Logf("error: %v", err)
	})

	t.Run("DeploymentMissing", func(t *testing.T) {
		d := registryDistribution(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: bot.registryNamespace, Name: "registry-snapshot"}})
		target := &Kubernetes{Client: botClient, Poll: 100 * time.Millisecond}
		err := target.Rollout(ctx, d, 301, "registry.example/distribution:snapshot", time.Now().Add(realWait))
		if !IsNotFound(err) || !strings.Contains(err.Error(), "no such Deployment") || !strings.Contains(err.Error(), bot.registryNamespace+"/registry-snapshot") {
			t.Fatalf("Rollout = %v, want a not-found error naming %s/registry-snapshot and saying there is no such Deployment", err, bot.registryNamespace)
		}
		t.Logf("error: %v", err)
	})

	t.Run("RBACForbidsThePatch", func(t *testing.T) {
		d := createRegistry(t, ctx, admin, "elsewhere", "registry", 1)
		waitRolledOut(t, ctx, admin, d)
		before := getDeployment(t, ctx, admin, d)
		target := &Kubernetes{Client: botClient, Poll: 100 * time.Millisecond}
		err := target.Rollout(ctx, registryDistribution(d), 401, "registry.example/distribution:production", time.Now().Add(realWait))
		if !IsForbidden(err) || !strings.Contains(err.Error(), "apply the Role in deploy/kubernetes") || !strings.Contains(err.Error(), "cannot get resource \"deployments\"") {
			t.Fatalf("Rollout = %v, want a forbidden error saying to apply the Role", err)
		}
		t.Logf("error: %v", err)
		if after := getDeployment(t, ctx, admin, d); after.Generation != before.Generation {
			t.Errorf("the forbidden rollout changed the Deployment: generation %d → %d", before.Generation, after.Generation)
		}
	})

	t.Run("LeaderElection", func(t *testing.T) {
		testRealLeaderElection(t, ctx, admin, botClient, bot.namespace)
	})
}

// writeKubeconfig writes cfg (server, CA, client certificate, impersonated user) as a kubeconfig file, the
// way an operator hands storagebot its credentials outside a cluster.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["bot"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData,
		Impersonate: cfg.Impersonate.UserName, ImpersonateGroups: cfg.Impersonate.Groups}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "bot"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// testRealLeaderElection runs two replicas on the real Lease: exactly one leads and holds the Lease; when it
// stops, it releases the Lease and the other takes over.
func testRealLeaderElection(t *testing.T, ctx context.Context, admin kubernetes.Interface, botClient LeaseAPI, namespace string) {
	replicas := newElectors()
	run := func(ctx context.Context, id string) <-chan struct{} {
		return replicas.run(ctx, &Election{Client: botClient, Namespace: namespace, Lease: "storagebot", Identity: id,
			LeaseDuration: 10 * time.Second, RenewDeadline: 5 * time.Second, RetryPeriod: 250 * time.Millisecond})
	}
	ctxA, stopA := context.WithCancel(ctx)
	ctxB, stopB := context.WithCancel(ctx)
	defer stopA()
	defer stopB()
	doneA, doneB := run(ctxA, "replica-a"), run(ctxB, "replica-b")
	defer func() { stopA(); stopB(); <-doneA; <-doneB }()

	var first string
	select {
	case first = <-replicas.started:
	case <-time.After(realWait):
		t.Fatalf("no replica became leader within %v (can ServiceAccount use Leases in %s? see deploy/kubernetes/role.yml)", realWait, namespace)
	}
	if holder := leaseHolder(t, ctx, admin, namespace); holder != first {
		t.Errorf("Lease %s/storagebot is held by %q, but %q leads", namespace, holder, first)
	}
	// The other replica keeps campaigning (every 250ms) while the first renews; it must not lead meanwhile.
	select {
	case other := <-replicas.started:
		t.Fatalf("%s became leader while %s leads", other, first)
	case <-time.After(3 * time.Second):
	}

	stop, done, second := stopA, doneA, "replica-b"
	if first == "replica-b" {
		stop, done, second = stopB, doneB, "replica-a"
	}
	stop()
	<-done
	select {
	case got := <-replicas.started:
		if got != second {
			t.Fatalf("%s led again after stopping", got)
		}
	case <-time.After(realWait):
		t.Fatalf("%s did not take over within %v of %s stopping", second, realWait, first)
	}
	if holder := leaseHolder(t, ctx, admin, namespace); holder != second {
		t.Errorf("after the takeover Lease %s/storagebot is held by %q, want %q", namespace, holder, second)
	}
	if n := replicas.mostAtOnce(); n != 1 {
		t.Errorf("%d replicas led at once, want 1", n)
	}
}

func leaseHolder(t *testing.T, ctx context.Context, admin kubernetes.Interface, namespace string) string {
	t.Helper()
	l, err := admin.CoordinationV1().Leases(namespace).Get(ctx, "storagebot", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read Lease %s/storagebot: %v", namespace, err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// botIdentity is where deploy/kubernetes puts storagebot and the registry Deployments it may restart.
type botIdentity struct {
	namespace         string // storagebot's own (kustomization.yml), where the Lease lives
	serviceAccount    string // deployment.yml's serviceAccountName
	registryNamespace string // where role-registry-binding.yml grants the rollout ClusterRole
}

// applyDeployManifests applies the ServiceAccount and RBAC of deploy/kubernetes as an operator would:
// role.yml into the kustomization's namespace (as `kubectl apply -k` does) and role-registry-binding.yml
// as it stands. It returns who storagebot is and where it may roll out.
func applyDeployManifests(t *testing.T, ctx context.Context, admin kubernetes.Interface) botIdentity {
	t.Helper()
	var kustomization struct {
		Namespace string   `json:"namespace"`
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(readDeployFile(t, "kustomization.yml"), &kustomization); err != nil {
		t.Fatalf("parse kustomization.yml: %v", err)
	}
	var id botIdentity
	id.namespace = kustomization.Namespace
	createNamespace(t, ctx, admin, id.namespace)

	for _, obj := range decodeManifests(t, "deployment.yml") {
		if d, ok := obj.(*appsv1.Deployment); ok && d.Name == "storagebot" {
			id.serviceAccount = d.Spec.Template.Spec.ServiceAccountName
		}
	}
	if id.serviceAccount == "" {
		t.Fatal("deployment.yml: the storagebot Deployment names no serviceAccountName")
	}

	var objects []runtime.Object
	for _, res := range kustomization.Resources {
		if strings.HasPrefix(res, "role") {
			for _, obj := range decodeManifests(t, res) {
				obj.(metav1.Object).SetNamespace(id.namespace) // what kustomize's namespace does; a no-op on cluster-scoped kinds
				objects = append(objects, obj)
			}
		}
	}
	if len(objects) == 0 {
		t.Fatal("kustomization.yml lists no role*.yml")
	}
	for _, obj := range decodeManifests(t, "role-registry-binding.yml") {
		if rb, ok := obj.(*rbacv1.RoleBinding); ok {
			id.registryNamespace = rb.Namespace
		}
		objects = append(objects, obj)
	}
	if id.registryNamespace == "" {
		t.Fatal("role-registry-binding.yml has no namespaced RoleBinding")
	}
	createNamespace(t, ctx, admin, id.registryNamespace)

	for _, obj := range objects {
		var err error
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			_, err = admin.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = admin.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = admin.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			o.Namespace = ""
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("deploy/kubernetes: no rule to apply a %T in this test", obj)
		}
		if err != nil {
			t.Fatalf("apply %T %s: %v", obj, obj.(metav1.Object).GetName(), err)
		}
	}
	return id
}

func readDeployFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatalf("read deploy/kubernetes/%s: %v", name, err)
	}
	return data
}

// decodeManifests decodes every document of a deploy/kubernetes file into its typed object.
func decodeManifests(t *testing.T, name string) []runtime.Object {
	t.Helper()
	r := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(readDeployFile(t, name))))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("read deploy/kubernetes/%s: %v", name, err)
		}
		if onlyComments(doc) {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode a document of deploy/kubernetes/%s: %v", name, err)
		}
		objs = append(objs, obj)
	}
}

// onlyComments reports whether a YAML document holds nothing but comments and blank lines.
func onlyComments(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return false
		}
	}
	return true
}

func createNamespace(t *testing.T, ctx context.Context, admin kubernetes.Interface, name string) {
	t.Helper()
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// createRegistry creates a package-registry Deployment of the given replicas, as an operator would.
func createRegistry(t *testing.T, ctx context.Context, admin kubernetes.Interface, namespace, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d, err := admin.AppsV1().Deployments(namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "package-registry",
					Image: "registry.example/distribution:" + name,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Deployment %s/%s: %v", namespace, name, err)
	}
	return d
}

func getDeployment(t *testing.T, ctx context.Context, admin kubernetes.Interface, d *appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	cur, err := admin.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read Deployment %s/%s: %v", d.Namespace, d.Name, err)
	}
	return cur
}

// waitRolledOut waits, independently of the code under test, until the Deployment controller reports every
// replica of the current generation updated and available.
func waitRolledOut(t *testing.T, ctx context.Context, admin kubernetes.Interface, d *appsv1.Deployment) {
	t.Helper()
	deadline := time.Now().Add(realWait)
	for {
		cur := getDeployment(t, ctx, admin, d)
		want := *cur.Spec.Replicas
		s := cur.Status
		if s.ObservedGeneration >= cur.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Deployment %s/%s not rolled out within %v: %+v", d.Namespace, d.Name, realWait, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func registryDistribution(d *appsv1.Deployment) repoconfig.Distribution {
	return repoconfig.Distribution{
		Name:   d.Name,
		Deploy: repoconfig.Deploy{Kubernetes: &repoconfig.KubernetesTarget{Namespace: d.Namespace, Deployment: d.Name}},
	}
}
