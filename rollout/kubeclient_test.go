package rollout

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiRequest is what the fake API server saw of one request.
type apiRequest struct {
	Method, Path, Query, ContentType, Accept, Authorization, UserAgent string
	ImpersonateUser                                                    string
	ImpersonateGroups                                                  []string
	ClientCN                                                           string // of the client certificate, if any
	Body                                                               string
}

// fakeAPIServer is a TLS server on loopback that records every request and answers with respond.
type fakeAPIServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []apiRequest
}

func newFakeAPIServer(t *testing.T, clientCAs *x509.CertPool, respond func(w http.ResponseWriter, r *http.Request)) *fakeAPIServer {
	t.Helper()
	s := &fakeAPIServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := apiRequest{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"),
			Accept: r.Header.Get("Accept"), Authorization: r.Header.Get("Authorization"), UserAgent: r.Header.Get("User-Agent"),
			ImpersonateUser: r.Header.Get("Impersonate-User"), ImpersonateGroups: r.Header.Values("Impersonate-Group"), Body: string(body)}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			req.ClientCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		respond(w, r)
	}))
	if clientCAs != nil {
		s.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *fakeAPIServer) all() []apiRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *fakeAPIServer) last() apiRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[len(s.requests)-1]
}

// caPEM is the PEM of the certificate the server presents, which a client must trust.
func (s *fakeAPIServer) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// clientCertificate makes a CA and a client certificate it signed for cn, in PEM.
func clientCertificate(t *testing.T, cn string) (pool *x509.CertPool, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTemplate := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return pool, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestKubeClientThroughAKubeconfig: a kubeconfig with the server's CA in a file next to it, a client
// certificate and key inline, a token and impersonation reaches the server with all of them, and each call
// sends the method, path, content type and fieldManager of the API.
func TestKubeClientThroughAKubeconfig(t *testing.T) {
	pool, certPEM, keyPEM := clientCertificate(t, "storagebot-admin")
	var srv *fakeAPIServer
	srv = newFakeAPIServer(t, pool, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/deployments/"):
			io.WriteString(w, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"registry","namespace":"reg","generation":3},
				"spec":{"replicas":2,"template":{"metadata":{"annotations":{"storagebot.github.io/deployment":"7"}}}},
				"status":{"observedGeneration":3,"replicas":2,"updatedReplicas":2,"availableReplicas":1}}`)
		case r.Method == http.MethodPatch:
			io.WriteString(w, `{"metadata":{"name":"registry","namespace":"reg","generation":4}}`)
		default: // Lease writes answer what was sent, with a new resourceVersion
			io.WriteString(w, strings.Replace(srv.last().Body, `"resourceVersion":"5"`, `"resourceVersion":"6"`, 1))
		}
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), srv.caPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(t, kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: bot
contexts:
- {name: other, context: {cluster: nowhere, user: nobody}}
- {name: bot, context: {cluster: test, user: bot}}
clusters:
- {name: nowhere, cluster: {server: "https://192.0.2.1"}}
- name: test
  cluster: {server: %q, certificate-authority: ca.crt}
users:
- name: bot
  user:
    client-certificate-data: %s
    client-key-data: %s
    token: the-token
    as: system:serviceaccount:storagebot:storagebot
    as-groups: [system:serviceaccounts, system:authenticated]
`, srv.URL, base64.StdEncoding.EncodeToString(certPEM), base64.StdEncoding.EncodeToString(keyPEM)))

	client, err := KubernetesClient(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := client.GetDeployment(ctx, "reg", "registry")
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 3 || *d.Spec.Replicas != 2 || d.Spec.Template.Annotations[AnnotationDeployment] != "7" || d.Status.AvailableReplicas != 1 {
		t.Errorf("decoded Deployment %+v", d)
	}
	got := srv.last()
	want := apiRequest{Method: "GET", Path: "/apis/apps/v1/namespaces/reg/deployments/registry", Accept: "application/json",
		Authorization: "Bearer the-token", UserAgent: "storagebot", ImpersonateUser: "system:serviceaccount:storagebot:storagebot",
		ImpersonateGroups: []string{"system:serviceaccounts", "system:authenticated"}, ClientCN: "storagebot-admin"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GET sent\n%+v, want\n%+v", got, want)
	}

	patch := []byte(`{"spec":{"template":{"metadata":{"annotations":{"a":"b"}}}}}`)
	if d, err = client.PatchDeployment(ctx, "reg", "registry", patch); err != nil || d.Generation != 4 {
		t.Fatalf("PatchDeployment = %+v, %v", d, err)
	}
	checkWrite(t, srv.last(), "PATCH", "/apis/apps/v1/namespaces/reg/deployments/registry", "application/strategic-merge-patch+json")
	if srv.last().Body != string(patch) {
		t.Errorf("patch body %s, want %s", srv.last().Body, patch)
	}

	at := time.Date(2026, 12, 2, 2, 30, 0, 0, time.UTC)
	lease := &Lease{ObjectMeta: ObjectMeta{Namespace: "storagebot", Name: "storagebot", ResourceVersion: "5", Labels: map[string]string{"keep": "me"}},
		Spec: LeaseSpec{HolderIdentity: ptr("a"), RenewTime: &MicroTime{at}}}
	created, err := client.CreateLease(ctx, lease)
	if err != nil {
		t.Fatal(err)
	}
	checkWrite(t, srv.last(), "POST", "/apis/coordination.k8s.io/v1/namespaces/storagebot/leases", "application/json")
	for _, s := range []string{`"apiVersion":"coordination.k8s.io/v1"`, `"kind":"Lease"`, `"renewTime":"2026-12-02T02:30:00.000000Z"`, `"labels":{"keep":"me"}`} {
		if !strings.Contains(srv.last().Body, s) {
			t.Errorf("created Lease %s lacks %s", srv.last().Body, s)
		}
	}
	if created.ResourceVersion != "6" || !created.Spec.RenewTime.Equal(at) || created.Labels["keep"] != "me" {
		t.Errorf("created Lease decoded as %+v", created)
	}
	if _, err := client.UpdateLease(ctx, lease); err != nil {
		t.Fatal(err)
	}
	checkWrite(t, srv.last(), "PUT", "/apis/coordination.k8s.io/v1/namespaces/storagebot/leases/storagebot", "application/json")
	if lease.Kind != "" {
		t.Errorf("the caller's Lease was changed: kind %q", lease.Kind)
	}
}

func checkWrite(t *testing.T, got apiRequest, method, path, contentType string) {
	t.Helper()
	if got.Method != method || got.Path != path || got.ContentType != contentType || got.Query != "fieldManager=storagebot" {
		t.Errorf("sent %s %s?%s (%s), want %s %s?fieldManager=storagebot (%s)", got.Method, got.Path, got.Query, got.ContentType, method, path, contentType)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKubeClientInClusterRotatesItsToken: in a pod the client trusts the mounted CA, sends the mounted token,
// and reads the file again once a minute has passed (the kubelet rotates it), or at once after a 401.
func TestKubeClientInClusterRotatesItsToken(t *testing.T) {
	var refuse sync.Map // tokens the server answers 401
	srv := newFakeAPIServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := refuse.Load(r.Header.Get("Authorization")); ok {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
			return
		}
		io.WriteString(w, `{"metadata":{"name":"storagebot"}}`)
	})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ca.crt"), string(srv.caPEM()))
	writeFile(t, filepath.Join(dir, "token"), "token-1\n")
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	env := map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
	cfg, err := inClusterConfig(func(k string) string { return env[k] }, dir)
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewKubeClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	client.creds.file.now = func() time.Time { return now }
	get := func(wantToken string) {
		t.Helper()
		if _, err := client.GetLease(context.Background(), "storagebot", "storagebot"); err != nil {
			t.Fatal(err)
		}
		if got := srv.last().Authorization; got != "Bearer "+wantToken {
			t.Errorf("sent %q, want Bearer %s", got, wantToken)
		}
	}
	get("token-1")
	writeFile(t, filepath.Join(dir, "token"), "token-2")
	now = now.Add(30 * time.Second)
	get("token-1") // read less than a minute ago
	now = now.Add(31 * time.Second)
	get("token-2")

	// The token is revoked before the minute is up: the 401 makes the next request read the file again.
	refuse.Store("Bearer token-2", true)
	writeFile(t, filepath.Join(dir, "token"), "token-3")
	_, err = client.GetLease(context.Background(), "storagebot", "storagebot")
	if !IsUnauthorized(err) {
		t.Fatalf("GetLease with a revoked token = %v, want Unauthorized", err)
	}
	get("token-3")

	// A file that cannot be read keeps the token read last.
	os.Remove(filepath.Join(dir, "token"))
	now = now.Add(2 * time.Minute)
	get("token-3")

	if _, err := inClusterConfig(func(string) string { return "" }, dir); err != errNotInCluster {
		t.Errorf("outside a pod: %v, want errNotInCluster", err)
	}
}

// TestKubeClientDecodesRefusals: the API server's Status objects become *APIError with their code, reason
// and message, which the Is* helpers and explain() read; an answer that is no Status keeps its cause.
func TestKubeClientDecodesRefusals(t *testing.T) {
	const forbidden = `deployments.apps "registry" is forbidden: User "system:serviceaccount:storagebot:storagebot" cannot patch resource "deployments" in API group "apps" in the namespace "elsewhere"`
	answers := map[string]struct {
		code int
		body string
	}{
		"missing":  {404, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"deployments.apps \"missing\" not found","reason":"NotFound","details":{"name":"missing","group":"apps","kind":"deployments"},"code":404}`},
		"stale":    {409, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Operation cannot be fulfilled on leases.coordination.k8s.io \"stale\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","code":409}`},
		"taken":    {409, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"leases.coordination.k8s.io \"taken\" already exists","reason":"AlreadyExists","code":409}`},
		"registry": {403, fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":%q,"reason":"Forbidden","code":403}`, forbidden)},
		"invalid":  {422, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Lease.coordination.k8s.io \"invalid\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0","reason":"Invalid","code":422}`},
		"proxy":    {503, "<html>upstream connect error\n<body>...</body></html>"},
	}
	srv := newFakeAPIServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]
		w.WriteHeader(a.code)
		io.WriteString(w, a.body)
	})
	client, err := NewKubeClient(&KubeConfig{Host: srv.URL, CAData: srv.caPEM()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	helpers := map[string]func(error) bool{ReasonNotFound: IsNotFound, ReasonConflict: IsConflict, ReasonAlreadyExists: IsAlreadyExists, ReasonForbidden: IsForbidden}
	for _, tc := range []struct {
		name         string
		code         int
		reason, text string
	}{
		{"missing", 404, ReasonNotFound, `deployments.apps "missing" not found`},
		{"stale", 409, ReasonConflict, "the object has been modified"},
		{"taken", 409, ReasonAlreadyExists, "already exists"},
		{"registry", 403, ReasonForbidden, forbidden},
		{"invalid", 422, ReasonInvalid, "must be greater than 0"},
		{"proxy", 503, "ServiceUnavailable", "503 Service Unavailable: <html>upstream connect error"},
	} {
		_, err := client.GetLease(ctx, "storagebot", tc.name)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Code != tc.code || apiErr.Reason != tc.reason || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %#v, want code %d, reason %s, a message with %q", tc.name, err, tc.code, tc.reason, tc.text)
		}
		for reason, is := range helpers { // each helper recognises its reason only, through wrapping
			if got := is(fmt.Errorf("wrapped: %w", err)); got != (reason == tc.reason) {
				t.Errorf("%s: the helper of %s says %v", tc.name, reason, got)
			}
		}
	}

	// What a user reads when RBAC refuses the rollout: the server's verb and resource, then what to do.
	_, err = client.PatchDeployment(ctx, "elsewhere", "registry", []byte(`{}`))
	msg := explain(err, "elsewhere/registry").Error()
	if !strings.HasPrefix(msg, forbidden) || !strings.Contains(msg, "apply the Role in deploy/kubernetes") {
		t.Errorf("explained: %s", msg)
	}
}

// TestLoadKubeconfigRefusesWhatItCannotHonour: a kubeconfig the client cannot follow fails with what is
// wrong, never by connecting without credentials, and never naming a secret.
func TestLoadKubeconfigRefusesWhatItCannotHonour(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, config, want string }{
		{"no current context", `clusters: []`, "no current-context"},
		{"unknown context", `current-context: x`, `context "x" not found`},
		{"exec plugin", `current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: secret-token, exec: {command: gke-gcloud-auth-plugin}}}]`, "exec credential plugins are not supported"},
		{"missing CA file", `current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1", certificate-authority: nope.crt}}]`, "nope.crt"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		writeFile(t, path, tc.config)
		_, err := KubernetesClient(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret-token") {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}

	// A token file relative to the kubeconfig is read from its directory.
	writeFile(t, filepath.Join(dir, "token"), "file-token\n")
	path := filepath.Join(dir, "token-file")
	writeFile(t, path, `current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {tokenFile: token}}]`)
	cfg, err := LoadKubeconfig(path)
	if err != nil || cfg.BearerToken != "file-token" || cfg.TokenFile != filepath.Join(dir, "token") || !cfg.Insecure {
		t.Errorf("LoadKubeconfig = %+v, %v", cfg, err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if printed := fmt.Sprintf(verb, cfg); strings.Contains(printed, "file-token") || !strings.Contains(printed, "bearer token") {
			t.Errorf("%s prints the configuration as %s", verb, printed)
		}
	}
}

// TestKubeTimesJSON: Lease times carry six fractional digits in UTC, other times whole seconds, and the zero
// time is null, as apimachinery writes them.
func TestKubeTimesJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 30, 0, 123456789, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		v    any
		want string
	}{
		{MicroTime{at}, `"2026-12-02T02:30:00.123456Z"`},
		{MicroTime{at.Truncate(time.Second)}, `"2026-12-02T02:30:00.000000Z"`},
		{Time{at}, `"2026-12-02T02:30:00Z"`},
		{MicroTime{}, `null`},
		{ObjectMeta{Name: "x"}, `{"name":"x"}`},
	} {
		got, err := json.Marshal(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("%#v marshals to %s (%v), want %s", tc.v, got, err, tc.want)
		}
	}
	var l Lease
	if err := json.Unmarshal([]byte(`{"metadata":{"creationTimestamp":"2026-12-02T02:00:00Z"},"spec":{"renewTime":"2026-12-02T02:30:00.123456Z","acquireTime":null}}`), &l); err != nil {
		t.Fatal(err)
	}
	if !l.Spec.RenewTime.Equal(at.Truncate(time.Microsecond)) || l.Spec.AcquireTime != nil || l.CreationTimestamp.Hour() != 2 {
		t.Errorf("decoded %+v %+v", l.ObjectMeta, l.Spec)
	}
}

// TestLeaseDeepCopy: changing a copy's metadata or spec leaves the original alone.
func TestLeaseDeepCopy(t *testing.T) {
	orig := &Lease{ObjectMeta: ObjectMeta{Labels: map[string]string{"a": "1"}, OwnerReferences: []json.RawMessage{[]byte(`{"uid":"u"}`)}},
		Spec: LeaseSpec{HolderIdentity: ptr("a"), RenewTime: &MicroTime{time.Unix(1, 0)}}}
	c := orig.DeepCopy()
	c.Labels["a"] = "2"
	c.OwnerReferences[0][2] = 'X'
	*c.Spec.HolderIdentity = "b"
	c.Spec.RenewTime.Time = time.Unix(2, 0)
	if orig.Labels["a"] != "1" || string(orig.OwnerReferences[0]) != `{"uid":"u"}` || *orig.Spec.HolderIdentity != "a" || orig.Spec.RenewTime.Unix() != 1 {
		t.Errorf("the original changed: %+v %+v", orig.ObjectMeta, orig.Spec)
	}
}

// TestKubeClientRetriesWhenAskedTo: as client-go, a request answered 429 or 5xx with Retry-After is sent again
// (a write with the same body) after the wait asked for, at most 10 times; other refusals are final.
func TestKubeClientRetriesWhenAskedTo(t *testing.T) {
	var mu sync.Mutex
	busy := map[string]int{"busy": 2, "overloaded": 20} // how many times each Lease answers 429 before 200
	dropped := false
	srv := newFakeAPIServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		mu.Lock()
		defer mu.Unlock()
		switch {
		case name == "dropped" && !dropped: // the connection is lost under the first GET
			dropped = true
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case name == "broken":
			w.WriteHeader(http.StatusInternalServerError) // no Retry-After: final
		case busy[name] > 0:
			busy[name]--
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"kind":"Status","message":"too many requests, please try again later","reason":"TooManyRequests","code":429}`)
		default:
			io.WriteString(w, `{"metadata":{"name":"`+name+`"}}`)
		}
	})
	client, err := NewKubeClient(&KubeConfig{Host: srv.URL, CAData: srv.caPEM()})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	client.sleep = func(_ context.Context, d time.Duration) bool { waits = append(waits, d); return true }
	ctx := context.Background()

	lease := &Lease{ObjectMeta: ObjectMeta{Namespace: "ns", Name: "busy"}, Spec: LeaseSpec{HolderIdentity: ptr("a")}}
	if _, err := client.UpdateLease(ctx, lease); err != nil {
		t.Fatalf("UpdateLease through two 429s: %v", err)
	}
	if sent := srv.all(); fmt.Sprint(waits) != "[3s 3s]" || len(sent) != 3 || sent[0].Body != sent[2].Body || !strings.Contains(sent[2].Body, `"holderIdentity":"a"`) {
		t.Errorf("waited %v over %d requests, the last with body %s", waits, len(sent), srv.last().Body)
	}

	waits = nil
	if _, err := client.GetLease(ctx, "ns", "overloaded"); !hasReason(err, "TooManyRequests") || len(waits) != 10 {
		t.Errorf("GetLease of a server that stays overloaded = %v after %d waits, want TooManyRequests after 10", err, len(waits))
	}
	waits = nil
	if _, err := client.GetLease(ctx, "ns", "broken"); !hasReason(err, "InternalError") || len(waits) != 0 {
		t.Errorf("GetLease answered 500 without Retry-After = %v after %d waits, want InternalError at once", err, len(waits))
	}

	waits = nil
	client.http.CloseIdleConnections() // on a reused connection net/http itself would send the GET again
	if _, err := client.GetLease(ctx, "ns", "dropped"); err != nil || fmt.Sprint(waits) != "[1s]" {
		t.Errorf("GetLease whose connection was lost once = %v after waits %v, want success after 1s", err, waits)
	}

	// A context that ends during the wait ends the retries.
	busy["busy"] = 1
	client.sleep = func(context.Context, time.Duration) bool { return false }
	if _, err := client.GetLease(ctx, "ns", "busy"); !hasReason(err, "TooManyRequests") {
		t.Errorf("GetLease whose wait was cut short = %v, want the 429", err)
	}
}

// TestServerURL: a bare host:port means https; a path behind a proxy is kept; what is not http(s) is refused.
func TestServerURL(t *testing.T) {
	for host, want := range map[string]string{
		"10.0.0.1:6443":                    "https://10.0.0.1:6443",
		"https://[fd00::1]:443/":           "https://[fd00::1]:443",
		"https://rancher.example/k8s/c-1/": "https://rancher.example/k8s/c-1",
		"http://127.0.0.1:8080":            "http://127.0.0.1:8080",
		"":                                 "error",
		"unix:///var/run/kube.sock":        "error",
	} {
		got, err := serverURL(host)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("serverURL(%q) = %q (%v), want %q", host, got, err, want)
		}
	}
}
