package ghclient

import (
	"net/http"
	"strconv"

	"github.com/palantir/go-githubapp/githubapp"
)

// Observer receives what the transport sees, for metrics. Any field may be nil.
type Observer struct {
	// Request is called once per request sent to GitHub (token fetches and revalidations answered 304
	// included), with the status code or "error" for a transport error.
	Request func(method, status string)
	// Retry is called before each retry with its reason.
	Retry RetryObserver
	// RateLimit is called with X-RateLimit-Resource (or "core") and X-RateLimit-Remaining when GitHub sends them.
	RateLimit func(resource string, remaining int)
}

// Options tune the client creator.
type Options struct {
	UserAgent string
	// CacheBytes bounds the HTTP response cache, shared by every installation (default 32 MiB).
	CacheBytes int
	// Retry is the retry policy; its AttemptTimeout is every request's deadline.
	Retry    RetryPolicy
	Observer Observer
	// Transport is the innermost transport (default http.DefaultTransport); tests may point it anywhere.
	Transport http.RoundTripper
}

// NewClientCreator returns a go-githubapp ClientCreator for the App in cfg, whose clients authenticate as the
// installation (ghinstallation), revalidate cached responses with ETags on every use (GitHub's max-age=60
// would otherwise serve branch heads a minute stale, docs/architecture.md §10), retry per the policy, and report metrics.
func NewClientCreator(cfg githubapp.Config, privateKey []byte, opts Options) (githubapp.ClientCreator, error) {
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 32 << 20
	}
	def := DefaultRetryPolicy()
	if opts.Retry.MaxAttempts == 0 {
		opts.Retry = def
	}
	// A policy that names no deadline or budget gets the defaults: no request goes without a deadline.
	if opts.Retry.AttemptTimeout <= 0 {
		opts.Retry.AttemptTimeout = def.AttemptTimeout
	}
	if opts.Retry.MaxWait <= 0 {
		opts.Retry.MaxWait = def.MaxWait
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	wire := newConditionalCache(observe(base, opts.Observer), NewByteLRU(opts.CacheBytes))
	policy, onRetry := opts.Retry, opts.Observer.Retry
	cc := githubapp.NewClientCreator(
		cfg.V3APIURL, cfg.V4APIURL, cfg.App.IntegrationID, privateKey,
		githubapp.WithClientUserAgent(opts.UserAgent),
		// No client-wide timeout: it would cover every retry and rate-limit wait of a request together (and
		// go-github's GetBranch bypasses it anyway); AttemptTimeout bounds each attempt instead.
		githubapp.WithTransport(wire),
		githubapp.WithClientMiddleware(func(next http.RoundTripper) http.RoundTripper {
			return NewRetryTransport(next, policy, onRetry)
		}),
	)
	return githubapp.NewCachingClientCreator(cc, githubapp.DefaultCachingClientCapacity)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func observe(next http.RoundTripper, o Observer) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if o.Request != nil {
			status := "error"
			if resp != nil {
				status = strconv.Itoa(resp.StatusCode)
			}
			o.Request(r.Method, status)
		}
		if resp != nil && o.RateLimit != nil {
			if n, perr := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); perr == nil {
				resource := resp.Header.Get("X-RateLimit-Resource")
				if resource == "" {
					resource = "core"
				}
				o.RateLimit(resource, n)
			}
		}
		return resp, err
	})
}
