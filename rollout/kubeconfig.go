package rollout

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// KubeConfig is how to reach and authenticate to an API server: the subset of client-go's rest.Config that
// in-cluster configuration and ordinary kubeconfig files use.
type KubeConfig struct {
	Host string // https://host:port

	CAData        []byte // PEM; none means the system's roots
	Insecure      bool   // skip verifying the server's certificate (kubeconfig insecure-skip-tls-verify)
	TLSServerName string // the name to verify the server's certificate against, when not the host's

	CertData, KeyData []byte // a PEM client certificate and its key

	BearerToken string
	// TokenFile, when set, holds the bearer token and wins over BearerToken: it is read again every
	// tokenRereadPeriod, because a projected ServiceAccount token is rotated by the kubelet.
	TokenFile string

	Impersonate       string   // act as this user (kubeconfig as)
	ImpersonateGroups []string // with these groups (kubeconfig as-groups)
}

// String describes cfg without its secrets, so that logging or printing it (%v, %+v) leaks no token or key.
func (cfg KubeConfig) String() string {
	var creds []string
	if cfg.BearerToken != "" || cfg.TokenFile != "" {
		creds = append(creds, "bearer token")
	}
	if len(cfg.CertData) > 0 {
		creds = append(creds, "client certificate")
	}
	if len(creds) == 0 {
		creds = append(creds, "no credentials")
	}
	s := fmt.Sprintf("API server %s with %s", cfg.Host, strings.Join(creds, " and "))
	if cfg.Impersonate != "" {
		s += " as " + cfg.Impersonate
	}
	return s
}

// GoString is String, for %#v.
func (cfg KubeConfig) GoString() string { return cfg.String() }

// The ServiceAccount's credentials, as the kubelet mounts them in every pod.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// errNotInCluster is InClusterConfig's answer outside a pod.
var errNotInCluster = errors.New("not running in a Kubernetes cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")

// InClusterConfig is the configuration of a pod, as client-go's rest.InClusterConfig builds it: the API
// server from the environment the kubelet sets, the ServiceAccount's token and CA from their mount.
func InClusterConfig() (*KubeConfig, error) {
	return inClusterConfig(os.Getenv, serviceAccountDir)
}

func inClusterConfig(getenv func(string) string, dir string) (*KubeConfig, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errNotInCluster
	}
	tokenFile := filepath.Join(dir, "token")
	token, err := readToken(tokenFile)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("the ServiceAccount's CA certificate: %w", err)
	}
	return &KubeConfig{
		Host:        "https://" + net.JoinHostPort(host, port),
		CAData:      ca,
		BearerToken: token,
		TokenFile:   tokenFile,
	}, nil
}

// transport is client-go's default transport for cfg: proxies from the environment, dialling bounded to 30s
// and the TLS handshake to 10s, HTTP/2 with health-check pings after 30s without a frame.
func (cfg *KubeConfig) transport() (*http.Transport, error) {
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 25,
		ForceAttemptHTTP2:   true,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}, nil
}

func (cfg *KubeConfig) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName, InsecureSkipVerify: cfg.Insecure}
	if len(cfg.CAData) > 0 {
		if cfg.Insecure {
			return nil, errors.New("a CA certificate and insecure-skip-tls-verify exclude each other")
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(cfg.CAData) {
			return nil, errors.New("the CA data holds no PEM certificate")
		}
	}
	if len(cfg.CertData) > 0 || len(cfg.KeyData) > 0 {
		cert, err := tls.X509KeyPair(cfg.CertData, cfg.KeyData)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err) // names no key material
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func (cfg *KubeConfig) credentials() *credentials {
	c := &credentials{token: cfg.BearerToken, user: cfg.Impersonate, groups: cfg.ImpersonateGroups}
	if cfg.TokenFile != "" {
		c.file = &tokenFile{path: cfg.TokenFile, token: cfg.BearerToken, now: time.Now}
	}
	return c
}

// credentials adds the bearer token and impersonation headers to every request.
type credentials struct {
	token  string
	file   *tokenFile // nil when the token is fixed
	user   string
	groups []string
}

func (c *credentials) authorize(req *http.Request) error {
	token := c.token
	if c.file != nil {
		var err error
		if token, err = c.file.get(); err != nil {
			return err
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.user != "" {
		req.Header.Set("Impersonate-User", c.user)
		for _, g := range c.groups {
			req.Header.Add("Impersonate-Group", g)
		}
	}
	return nil
}

// rejected is told of a 401: a token file is read again on the next request rather than at its period's end.
func (c *credentials) rejected() {
	if c.file != nil {
		c.file.expire()
	}
}

// tokenRereadPeriod is how long a token read from a file is used, as client-go's cached file token source:
// the kubelet rotates a projected token well before it expires (after 80% of its hour at the latest).
const tokenRereadPeriod = time.Minute

// tokenFile caches the token of a file for tokenRereadPeriod.
type tokenFile struct {
	path string
	now  func() time.Time

	mu     sync.Mutex
	token  string
	readAt time.Time // zero: read it on the next request
}

// get returns the token, read again when the period has passed. When that read fails, the token read last
// is kept, as client-go does: it may well still be valid, and the API server tells when it is not.
func (f *tokenFile) get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.token != "" && !f.readAt.IsZero() && now.Sub(f.readAt) < tokenRereadPeriod {
		return f.token, nil
	}
	token, err := readToken(f.path)
	if err != nil {
		if f.token != "" {
			return f.token, nil
		}
		return "", err
	}
	f.token, f.readAt = token, now
	return token, nil
}

func (f *tokenFile) expire() {
	f.mu.Lock()
	f.readAt = time.Time{}
	f.mu.Unlock()
}

// readToken reads a bearer token file; its content never appears in an error.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("bearer token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("bearer token: %s is empty", path)
	}
	return token, nil
}

// kubeconfigFile is the subset of a kubeconfig file storagebot reads (the format of clientcmd/api/v1).
type kubeconfigFile struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server                   string `yaml:"server"`
			CertificateAuthority     string `yaml:"certificate-authority"`
			CertificateAuthorityData string `yaml:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `yaml:"insecure-skip-tls-verify"`
			TLSServerName            string `yaml:"tls-server-name"`
			ProxyURL                 string `yaml:"proxy-url"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string         `yaml:"name"`
		User kubeconfigUser `yaml:"user"`
	} `yaml:"users"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
			User    string `yaml:"user"`
		} `yaml:"context"`
	} `yaml:"contexts"`
}

type kubeconfigUser struct {
	ClientCertificate     string   `yaml:"client-certificate"`
	ClientCertificateData string   `yaml:"client-certificate-data"`
	ClientKey             string   `yaml:"client-key"`
	ClientKeyData         string   `yaml:"client-key-data"`
	Token                 string   `yaml:"token"`
	TokenFile             string   `yaml:"tokenFile"`
	As                    string   `yaml:"as"`
	AsGroups              []string `yaml:"as-groups"`
	// Ways to authenticate storagebot does not implement; a kubeconfig using one is refused, not silently
	// used without credentials.
	Exec         any    `yaml:"exec"`
	AuthProvider any    `yaml:"auth-provider"`
	Username     string `yaml:"username"`
}

// LoadKubeconfig reads the current context of the kubeconfig file at path. Relative file names in it are
// relative to the file's directory, as kubectl reads them.
func LoadKubeconfig(path string) (*KubeConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f kubeconfigFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg, err := f.current(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// current resolves the current context to a KubeConfig, reading the files it names relative to dir.
func (f *kubeconfigFile) current(dir string) (*KubeConfig, error) {
	if f.CurrentContext == "" {
		return nil, errors.New("no current-context")
	}
	var clusterName, userName string
	found := false
	for _, c := range f.Contexts {
		if c.Name == f.CurrentContext {
			clusterName, userName, found = c.Context.Cluster, c.Context.User, true
		}
	}
	if !found {
		return nil, fmt.Errorf("context %q not found", f.CurrentContext)
	}
	cfg := &KubeConfig{}
	found = false
	for _, c := range f.Clusters {
		if c.Name != clusterName {
			continue
		}
		found = true
		if c.Cluster.ProxyURL != "" {
			return nil, fmt.Errorf("cluster %q: proxy-url is not supported; set HTTPS_PROXY instead", clusterName)
		}
		cfg.Host, cfg.Insecure, cfg.TLSServerName = c.Cluster.Server, c.Cluster.InsecureSkipTLSVerify, c.Cluster.TLSServerName
		var err error
		if cfg.CAData, err = dataOrFile(c.Cluster.CertificateAuthorityData, c.Cluster.CertificateAuthority, dir); err != nil {
			return nil, fmt.Errorf("cluster %q: certificate-authority: %w", clusterName, err)
		}
	}
	if !found {
		return nil, fmt.Errorf("cluster %q not found", clusterName)
	}
	if cfg.Host == "" {
		return nil, fmt.Errorf("cluster %q has no server", clusterName)
	}
	for _, u := range f.Users {
		if u.Name == userName {
			if err := u.User.applyTo(cfg, dir); err != nil {
				return nil, fmt.Errorf("user %q: %w", userName, err)
			}
		}
	}
	return cfg, nil
}

// applyTo sets u's credentials and impersonation on cfg.
func (u *kubeconfigUser) applyTo(cfg *KubeConfig, dir string) error {
	switch {
	case u.Exec != nil:
		return errors.New("exec credential plugins are not supported: use a token, a token file or a client certificate")
	case u.AuthProvider != nil:
		return errors.New("auth-provider is not supported: use a token, a token file or a client certificate")
	case u.Username != "":
		return errors.New("basic authentication is not supported: use a token, a token file or a client certificate")
	}
	var err error
	if cfg.CertData, err = dataOrFile(u.ClientCertificateData, u.ClientCertificate, dir); err != nil {
		return fmt.Errorf("client-certificate: %w", err)
	}
	if cfg.KeyData, err = dataOrFile(u.ClientKeyData, u.ClientKey, dir); err != nil {
		return fmt.Errorf("client-key: %w", err)
	}
	cfg.BearerToken = u.Token
	if u.TokenFile != "" {
		cfg.TokenFile = resolve(dir, u.TokenFile)
		if cfg.BearerToken == "" {
			if cfg.BearerToken, err = readToken(cfg.TokenFile); err != nil {
				return err
			}
		}
	}
	cfg.Impersonate, cfg.ImpersonateGroups = u.As, u.AsGroups
	return nil
}

// dataOrFile is the base64 data of a kubeconfig field, or else the content of the file it names.
func dataOrFile(data, file, dir string) ([]byte, error) {
	if data != "" {
		return base64.StdEncoding.DecodeString(data)
	}
	if file == "" {
		return nil, nil
	}
	return os.ReadFile(resolve(dir, file))
}

func resolve(dir, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}
