// Package kubetestenv starts a real Kubernetes control plane — etcd, kube-apiserver and
// kube-controller-manager — on loopback for one test, so rollout code meets the API server's real validation,
// RBAC, conflicts and controllers instead of client-go's lenient fake clientset.
//
// The binaries are built once by .ci/kube-testenv.sh into a cache directory outside the repository. When they
// are absent the test is skipped with a message saying how to build them, unless STORAGEBOT_KUBE_REQUIRED is
// set (CI sets it), in which case it fails.
package kubetestenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The versions .ci/kube-testenv.sh builds; KubernetesVersion matches k8s.io/client-go in go.mod.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.3"
)

// Environment variables: EnvBinDir overrides where the binaries are looked for (the build script honours it
// too); a non-empty EnvRequired turns a missing build into a test failure instead of a skip.
const (
	EnvBinDir   = "STORAGEBOT_KUBE_BIN_DIR"
	EnvRequired = "STORAGEBOT_KUBE_REQUIRED"
)

// BuildScript is the repository's script that builds the binaries.
const BuildScript = ".ci/kube-testenv.sh"

// Binaries are the programs the control plane consists of.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager"}

// Deadlines of the start-up steps: generous, because the machines running the tests are often loaded.
const (
	etcdReadyTimeout      = time.Minute
	apiServerReadyTimeout = 3 * time.Minute
	controllersTimeout    = 3 * time.Minute
	stopGrace             = 15 * time.Second
)

// BinDir is where the binaries are looked for: $STORAGEBOT_KUBE_BIN_DIR, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/storagebot/kube-<KubernetesVersion>, as in the build script.
func BinDir() string {
	if d := os.Getenv(EnvBinDir); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	return filepath.Join(cache, "storagebot", "kube-"+KubernetesVersion)
}

// Env is a running control plane.
type Env struct {
	// Config reaches kube-apiserver as a member of system:masters, which passes every authorization check.
	Config *rest.Config
	// Dir holds the certificates, etcd's data and the processes' logs (etcd.log, kube-apiserver.log,
	// kube-controller-manager.log).
	Dir string

	procs []*process // in start order
}

// Start starts etcd, kube-apiserver (authorization Node,RBAC) and kube-controller-manager on loopback in a
// temporary directory and returns once the API server is ready and the controllers are working. Everything
// is stopped when t ends; when t has failed, the tails of the processes' logs are printed. Without the
// binaries t is skipped (or fails when STORAGEBOT_KUBE_REQUIRED is set).
func Start(t testing.TB) *Env {
	t.Helper()
	dir := BinDir()
	if missing := missingBinaries(dir); len(missing) > 0 {
		msg := fmt.Sprintf("real Kubernetes tier: %s not found in %s; build them once with `bash %s` "+
			"(Kubernetes %s, etcd %s, ≈25 min on 2 cores), or point %s at a directory holding them",
			strings.Join(missing, ", "), dir, BuildScript, KubernetesVersion, EtcdVersion, EnvBinDir)
		if os.Getenv(EnvRequired) != "" {
			t.Fatal(msg + " (" + EnvRequired + " is set, so this is a failure)")
		}
		t.Skip(msg)
	}
	// A port picked as free may be taken by another process before the server binds it; start again then.
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		work := t.TempDir()
		env, retry, err := start(dir, work)
		if err == nil {
			t.Cleanup(func() { env.stop(t) })
			return env
		}
		lastErr = err
		if !retry {
			break
		}
		t.Logf("starting the control plane again: %v", err)
	}
	t.Fatalf("start the Kubernetes control plane: %v", lastErr)
	return nil
}

// missingBinaries lists the binaries that are not executable files in dir.
func missingBinaries(dir string) []string {
	var missing []string
	for _, b := range Binaries {
		fi, err := os.Stat(filepath.Join(dir, b))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}

// start runs one attempt. On failure everything started is stopped, the error carries the failing
// process's log tail, and retry says whether fresh ports may help.
func start(binDir, work string) (env *Env, retry bool, err error) {
	env = &Env{Dir: work}
	defer func() {
		if err == nil {
			return
		}
		for _, p := range env.procs {
			if p.portInUse() {
				retry = true
			}
		}
		var tails []string
		for _, p := range env.procs {
			tails = append(tails, fmt.Sprintf("--- %s (last lines of %s)\n%s", p.name, p.logPath, p.tail(40)))
		}
		env.stopAll()
		if len(tails) > 0 {
			err = fmt.Errorf("%w\n%s", err, strings.Join(tails, "\n"))
		}
	}()

	pki, err := newPKI(work)
	if err != nil {
		return env, false, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return env, true, err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	ctx := context.Background()

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcd, err := env.run("etcd", filepath.Join(binDir, "etcd"),
		"--name=default",
		"--data-dir="+filepath.Join(work, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", // test data: losing it on a crash is fine, and fsync is slow on loaded disks
		"--log-level=warn")
	if err != nil {
		return env, false, err
	}
	if err := waitFor(ctx, etcdReadyTimeout, "etcd /health", []*process{etcd}, func(ctx context.Context) (bool, error) {
		return httpOK(ctx, http.DefaultClient, etcdURL+"/health")
	}); err != nil {
		return env, false, err
	}

	apiServer, err := env.run("kube-apiserver", filepath.Join(binDir, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+work,
		"--tls-cert-file="+pki.ServingCert, "--tls-private-key-file="+pki.ServingKey,
		"--client-ca-file="+pki.CACert,
		"--service-account-key-file="+pki.ServiceAccountPublicKey,
		"--service-account-signing-key-file="+pki.ServiceAccountPrivateKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=Node,RBAC",
		// With a loopback advertise address the default endpoint reconciler refuses to start.
		"--endpoint-reconciler-type=none")
	if err != nil {
		return env, false, err
	}
	env.Config = &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(apiPort),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.adminCertPEM,
			KeyData:  pki.adminKeyPEM,
		},
		// The tests play the kubelet for every Pod; client-go's default 5 requests/s would be the bottleneck.
		QPS:   200,
		Burst: 400,
	}
	httpClient, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		return env, false, fmt.Errorf("HTTP client for kube-apiserver: %w", err)
	}
	if err := waitFor(ctx, apiServerReadyTimeout, "kube-apiserver /readyz", []*process{etcd, apiServer}, func(ctx context.Context) (bool, error) {
		return httpOK(ctx, httpClient, env.Config.Host+"/readyz")
	}); err != nil {
		return env, false, err
	}

	kubeconfig := filepath.Join(work, "controller-manager.kubeconfig")
	if err := writeKubeconfig(kubeconfig, env.Config.Host, pki); err != nil {
		return env, false, err
	}
	_, err = env.run("kube-controller-manager", filepath.Join(binDir, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file="+pki.ServiceAccountPrivateKey,
		"--root-ca-file="+pki.CACert,
		// Each controller acts with its own service account and the bootstrap RBAC, as in a cluster.
		"--use-service-account-credentials=true",
		"--controllers=*")
	if err != nil {
		return env, false, err
	}
	client, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return env, false, fmt.Errorf("client for kube-apiserver: %w", err)
	}
	// The service-account controller creating "default" in namespace default shows the controllers run.
	if err := waitFor(ctx, controllersTimeout, "kube-controller-manager to create ServiceAccount default/default", env.procs, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return env, false, err
	}
	return env, false, nil
}

// run starts one binary with its log in the work directory.
func (e *Env) run(name, bin string, args ...string) (*process, error) {
	p, err := startProcess(name, bin, filepath.Join(e.Dir, name+".log"), args...)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// ImpersonatingServiceAccount returns a copy of the admin Config that acts as the ServiceAccount
// namespace/name, with exactly that account's RBAC (the API server adds its groups).
func (e *Env) ImpersonatingServiceAccount(namespace, name string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + name}
	return cfg
}

// Alive reports an error naming the first control-plane process that has exited.
func (e *Env) Alive() error {
	for _, p := range e.procs {
		if err := p.alive(); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the control plane at the end of t; a process that died on its own fails t, and a failed t gets
// the tails of the logs.
func (e *Env) stop(t testing.TB) {
	if err := e.Alive(); err != nil {
		t.Errorf("the control plane died during the test: %v", err)
	}
	e.stopAll()
	if t.Failed() {
		for _, p := range e.procs {
			t.Logf("--- %s (last lines of %s)\n%s", p.name, p.logPath, p.tail(60))
		}
	}
}

// stopAll stops the processes in reverse start order: the controllers, then the API server, then etcd.
func (e *Env) stopAll() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop(stopGrace)
	}
}

// waitFor polls cond until it holds, failing when the timeout passes or one of procs exits.
func waitFor(ctx context.Context, timeout time.Duration, what string, procs []*process, cond func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		for _, p := range procs {
			if err := p.alive(); err != nil {
				return fmt.Errorf("waiting for %s: %w", what, err)
			}
		}
		attemptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ok, err := cond(attemptCtx)
		cancel()
		if ok {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (last error: %v)", what, timeout, lastErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// httpOK reports whether GET url answers 200; connection errors are reported as not yet.
func httpOK(ctx context.Context, c *http.Client, url string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return true, nil
}

// freePorts reserves n distinct loopback ports by listening on port 0, then releases them for the servers.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeKubeconfig writes a kubeconfig for the admin client certificate, as kube-controller-manager reads it.
func writeKubeconfig(path, host string, p *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: host, CertificateAuthority: p.CACert}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: p.AdminCert, ClientKey: p.AdminKey}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	cfg.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}
