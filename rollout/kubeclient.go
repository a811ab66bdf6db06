package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
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

// KubeClient talks to the API server over net/http and encoding/json: five requests on two kinds, in the
// JSON of kubetypes.go. It does not use client-go: linking client-go and apimachinery ran their init in every
// command of the binary (`storagebot version` lost about 8 ms of CPU and 190 page faults of 28 ms and 810
// without them), including `storagebot check`, which never talks to Kubernetes and must cost little more than
// `git diff-tree`.
type KubeClient struct {
	host       string // scheme://host[:port][/path], no trailing slash
	http       *http.Client
	creds      *credentials
	userAgent  string
	fieldOwner string // the fieldManager of every write
	// sleep waits between attempts; false when ctx ended first.
	sleep func(ctx context.Context, d time.Duration) bool
}

var (
	_ DeploymentAPI = (*KubeClient)(nil)
	_ LeaseAPI      = (*KubeClient)(nil)
)

// NewKubeClient connects to the API server cfg describes.
func NewKubeClient(cfg *KubeConfig) (*KubeClient, error) {
	host, err := serverURL(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client: %w", err)
	}
	transport, err := cfg.transport()
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client: %w", err)
	}
	return &KubeClient{
		host: host,
		// No client-wide timeout, as client-go's default: each call is bounded by its context (the rollout's
		// deadline, the election's renew deadline); the transport bounds dialling and the TLS handshake.
		http:       &http.Client{Transport: transport},
		creds:      cfg.credentials(),
		userAgent:  "storagebot",
		fieldOwner: "storagebot",
		sleep:      sleep,
	}, nil
}

// serverURL is the API server's base URL: https unless said otherwise, as client-go assumes for a bare
// host:port, and without a trailing slash (a path, as behind a proxy like Rancher's, is kept).
func serverURL(host string) (string, error) {
	if host == "" {
		return "", errors.New("no API server address")
	}
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil {
		return "", fmt.Errorf("API server address: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("API server address %q is not an http(s) URL", host)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func (c *KubeClient) GetDeployment(ctx context.Context, namespace, name string) (*KubeDeployment, error) {
	var d KubeDeployment
	err := c.do(ctx, http.MethodGet, deploymentPath(namespace, name), "", nil, &d)
	return orNil(&d, err)
}

func (c *KubeClient) PatchDeployment(ctx context.Context, namespace, name string, patch []byte) (*KubeDeployment, error) {
	var d KubeDeployment
	err := c.do(ctx, http.MethodPatch, deploymentPath(namespace, name), strategicMergePatch, patch, &d)
	return orNil(&d, err)
}

func (c *KubeClient) GetLease(ctx context.Context, namespace, name string) (*Lease, error) {
	var l Lease
	err := c.do(ctx, http.MethodGet, leasePath(namespace, name), "", nil, &l)
	return orNil(&l, err)
}

func (c *KubeClient) CreateLease(ctx context.Context, lease *Lease) (*Lease, error) {
	return c.writeLease(ctx, http.MethodPost, leasePath(lease.Namespace, ""), lease)
}

func (c *KubeClient) UpdateLease(ctx context.Context, lease *Lease) (*Lease, error) {
	return c.writeLease(ctx, http.MethodPut, leasePath(lease.Namespace, lease.Name), lease)
}

// writeLease sends lease whole, with its apiVersion and kind set as the API server requires.
func (c *KubeClient) writeLease(ctx context.Context, method, path string, lease *Lease) (*Lease, error) {
	body := *lease
	body.TypeMeta = TypeMeta{APIVersion: leaseAPIVersion, Kind: leaseKind}
	data, err := json.Marshal(&body)
	if err != nil {
		return nil, fmt.Errorf("encode Lease %s/%s: %w", lease.Namespace, lease.Name, err)
	}
	var l Lease
	err = c.do(ctx, method, path, "application/json", data, &l)
	return orNil(&l, err)
}

// The content type of PatchDeployment: a strategic merge patch, as `kubectl rollout restart` sends.
const strategicMergePatch = "application/strategic-merge-patch+json"

func deploymentPath(namespace, name string) string {
	return objectPath("/apis/"+deploymentAPIVersion, namespace, "deployments", name)
}

// leasePath is the Lease's path, or with no name the namespace's Lease collection (where creates go).
func leasePath(namespace, name string) string {
	return objectPath("/apis/"+leaseAPIVersion, namespace, "leases", name)
}

func objectPath(groupVersion, namespace, resource, name string) string {
	p := groupVersion + "/namespaces/" + url.PathEscape(namespace) + "/" + resource
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// do sends one request, again while the API server asks for that, and decodes the answer into out, or the
// API server's refusal into an *APIError.
func (c *KubeClient) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	for attempt := 1; ; attempt++ {
		code, data, retryAfter, err := c.send(ctx, method, path, contentType, body)
		if retryAfter >= 0 && attempt <= maxRetries && c.sleep(ctx, retryAfter) {
			continue
		}
		switch {
		case err != nil:
			return err
		case code < 200 || code > 299:
			return statusError(method, path, code, data)
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
		}
		return nil
	}
}

// maxRetries is how many times a request is sent again, as client-go's default.
const maxRetries = 10

// send makes one attempt. retryAfter is how long to wait before the next when one is worth it, as client-go
// decides: the server said so (429 or 5xx with Retry-After: what Priority and Fairness answers under load), or
// a GET lost its connection; otherwise it is negative.
func (c *KubeClient) send(ctx context.Context, method, path, contentType string, body []byte) (code int, data []byte, retryAfter time.Duration, err error) {
	req, err := c.newRequest(ctx, method, path, contentType, body)
	if err != nil {
		return 0, nil, -1, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if method == http.MethodGet && connectionLost(err) {
			return 0, nil, time.Second, err
		}
		return 0, nil, -1, err // a *url.Error: it names the method and URL
	}
	defer resp.Body.Close()
	if data, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes)); err != nil {
		return 0, nil, -1, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		c.creds.rejected() // a rotated token: read the file again on the next request
	}
	return resp.StatusCode, data, retryAfterOf(resp), nil
}

func (c *KubeClient) newRequest(ctx context.Context, method, path, contentType string, body []byte) (*http.Request, error) {
	u := c.host + path
	if method != http.MethodGet {
		u += "?fieldManager=" + url.QueryEscape(c.fieldOwner)
	}
	var content io.Reader
	if body != nil {
		content = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, content)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, c.creds.authorize(req)
}

// retryAfterOf is the wait a 429 or 5xx answer's Retry-After header asks for in seconds, or -1.
func retryAfterOf(resp *http.Response) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && (resp.StatusCode < 500 || resp.StatusCode > 504) {
		return -1
	}
	seconds, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || seconds < 0 {
		return -1
	}
	return time.Duration(seconds) * time.Second
}

// connectionLost reports a connection the server or a proxy closed under the request.
func connectionLost(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// maxResponseBytes bounds what is read of an answer: a Deployment or Lease is a few kilobytes.
const maxResponseBytes = 8 << 20

func orNil[T any](obj *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// APIError is a refusal of the API server: its HTTP status code, and the reason and message of the Status
// object it answered with (reason derived from the code when the answer was not a Status).
type APIError struct {
	Code    int
	Reason  string // NotFound, Conflict, AlreadyExists, Forbidden, Invalid...
	Message string // the server's, e.g. `deployments.apps "x" is forbidden: User "..." cannot patch resource ...`
}

// Error is the server's message, as client-go's StatusError prints it: it names the object, and for RBAC
// refusals the user, verb and resource.
func (e *APIError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("the API server answered %d %s", e.Code, e.Reason)
}

// The reasons of metav1.StatusReason that storagebot acts on, and the code each implies when an answer
// carries no Status.
const (
	ReasonNotFound      = "NotFound"
	ReasonConflict      = "Conflict"
	ReasonAlreadyExists = "AlreadyExists"
	ReasonForbidden     = "Forbidden"
	ReasonUnauthorized  = "Unauthorized"
	ReasonInvalid       = "Invalid"
)

var reasonOfCode = map[int]string{
	http.StatusBadRequest:           "BadRequest",
	http.StatusUnauthorized:         ReasonUnauthorized,
	http.StatusForbidden:            ReasonForbidden,
	http.StatusNotFound:             ReasonNotFound,
	http.StatusMethodNotAllowed:     "MethodNotAllowed",
	http.StatusNotAcceptable:        "NotAcceptable",
	http.StatusConflict:             ReasonConflict,
	http.StatusGone:                 "Gone",
	http.StatusUnsupportedMediaType: "UnsupportedMediaType",
	http.StatusUnprocessableEntity:  ReasonInvalid,
	http.StatusTooManyRequests:      "TooManyRequests",
	http.StatusInternalServerError:  "InternalError",
	http.StatusServiceUnavailable:   "ServiceUnavailable",
	http.StatusGatewayTimeout:       "Timeout",
}

// statusError decodes the Status object of a refusal. An answer that is not one (a proxy's error page) keeps
// its first line in the message, so that the cause stays visible.
func statusError(method, path string, code int, body []byte) *APIError {
	var status struct {
		Kind    string `json:"kind"`
		Code    int    `json:"code"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	e := &APIError{Code: code}
	if json.Unmarshal(body, &status) == nil && status.Kind == "Status" {
		e.Reason, e.Message = status.Reason, status.Message
		if status.Code != 0 {
			e.Code = status.Code
		}
	}
	if e.Reason == "" {
		e.Reason = reasonOfCode[e.Code]
	}
	if e.Message == "" {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		e.Message = fmt.Sprintf("%s %s: the API server answered %d %s", method, path, code, http.StatusText(code))
		if line != "" {
			e.Message += ": " + truncate(line, 200)
		}
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// IsNotFound, IsConflict, IsAlreadyExists and IsForbidden tell the API server's refusals apart, as
// apimachinery's apierrors helpers of the same names do, through any wrapping.
func IsNotFound(err error) bool      { return hasReason(err, ReasonNotFound) }
func IsConflict(err error) bool      { return hasReason(err, ReasonConflict) }
func IsAlreadyExists(err error) bool { return hasReason(err, ReasonAlreadyExists) }
func IsForbidden(err error) bool     { return hasReason(err, ReasonForbidden) }
func IsUnauthorized(err error) bool  { return hasReason(err, ReasonUnauthorized) }

func hasReason(err error, reason string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Reason == reason
}
