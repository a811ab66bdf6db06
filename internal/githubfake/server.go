package githubfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a fake GitHub.
type Options struct {
	WebhookURL    string                           // where events are POSTed; may be set later with SetWebhookURL
	WebhookSecret string                           // HMAC-SHA256 key for X-Hub-Signature-256; "" = a random one
	Logf          func(format string, args ...any) // optional (t.Logf)
	// Latency delays every answer by a round trip: Latency plus a uniformly drawn share of LatencyJitter, drawn
	// from LatencySeed so runs repeat. Requests wait concurrently, as they would on the network.
	Latency       time.Duration
	LatencyJitter time.Duration
	LatencySeed   uint64
	// TreeMaxEntries and TreeMaxBytes cap a recursive tree listing as GitHub does (100,000 entries, 7 MB of
	// entries), answering "truncated": true past them; 0 = GitHub's caps. Tests lower them to force truncation.
	TreeMaxEntries int
	TreeMaxBytes   int
	// Unregistered starts the fake with its App not yet registered: JWTs answer 401 until the App manifest
	// flow (manifest.go) registers it, as for a storagebot that starts with no App.
	Unregistered bool
}

// Fault makes matching requests fail. Route is spelled as in Routes ("GET /repos/{owner}/{repo}");
// "" matches every route.
type Fault struct {
	Route        string
	Status       int           // answer this status (with Retry-After when set) instead of the real answer
	RetryAfter   string        // Retry-After header value; with 403 or 429 the body says "secondary rate limit"
	Latency      time.Duration // wait this long before answering; a write is applied then, its client gone or not
	DropResponse bool          // apply the request, then fail: Status when set, else close the connection
	Times        int           // how many requests to affect; 0 = forever
	// ApplyAfter, with DropResponse, answers at once (Status when set, else the connection closed) and applies
	// the request this long after it arrived: a write GitHub finished after the client had given up on it, seen
	// by the next reads only from then on. GitHub processes a request for at most ProcessingLimit, so a write
	// lands within that or never: InjectFault refuses a longer ApplyAfter.
	ApplyAfter time.Duration
	// RateLimit (PrimaryLimit or SecondaryLimit) answers the way GitHub does when the installation hits that
	// limit, with Status (default 403; 429 is also GitHub's) and, for a secondary limit, Retry-After when
	// RetryAfter is set. Like GitHub's, the limit then holds for every request made with an installation token,
	// whatever the route and Times, until it ends: ResetIn after it started for a primary limit (reported in
	// X-RateLimit-Reset), RetryAfter or one minute for a secondary one. Requests sent while it holds are
	// answered the same way and counted by RequestsWhileLimited: GitHub may ban an integration that sends them.
	// Routes authenticated as the App (its JWT) have their own budget and are not affected.
	RateLimit string
	ResetIn   time.Duration
}

// Rate limits a Fault can start.
const (
	PrimaryLimit   = "primary"   // the hourly budget is spent: 403/429 with X-RateLimit-Remaining: 0
	SecondaryLimit = "secondary" // too many requests too fast: 403/429 "You have exceeded a secondary rate limit"
)

// activeLimit is a rate limit in force.
type activeLimit struct {
	fault Fault
	until time.Time
}

// Server is a fake api.github.com holding real git objects. All methods are goroutine-safe.
type Server struct {
	ts             *httptest.Server
	key            *rsa.PrivateKey
	keyPEM         []byte
	appID          int64
	installationID int64
	secret         string
	logf           func(format string, args ...any)
	routes         []route
	hookClient     *http.Client
	started        time.Time

	mu          sync.Mutex
	webhookURL  string
	repos       map[string]*Repo
	repoOrder   []*Repo
	tokens      map[string]time.Time
	nextID      int64
	calls       map[string]int
	notModified map[string]int
	totalCalls  int
	faults      []*Fault
	deliveries  []Delivery
	limit       *activeLimit
	// whileLimited counts requests that arrived while a rate limit held, by method and path.
	whileLimited map[string]int
	tokenTTL     time.Duration
	tokensIssued int
	// latency, jitter and rng delay every answer (see Options.Latency).
	latency, jitter time.Duration
	rng             *mathrand.Rand
	treeMaxEntries  int
	treeMaxBytes    int
	// inFlight counts requests being answered; maxInFlight is its high-water mark.
	inFlight, maxInFlight int
	// unregistered, app and manifestCodes are the App manifest flow's state (manifest.go).
	unregistered  bool
	app           *registeredApp
	manifestCodes map[string]manifestCode
	// lateWrites counts writes whose client has its answer (Fault.ApplyAfter) or gave up, not landed yet.
	lateWrites int
	// graphqlMaxNodes and graphqlMaxText bound a GraphQL answer (graphql.go); graphqlPoints counts the
	// GraphQL rate limit's points spent, a budget of its own as on GitHub.
	graphqlMaxNodes, graphqlMaxText int
	graphqlPoints                   int
}

// appSlug is the fake app's slug; its bot user is appSlug+"[bot]".
const appSlug = "storagebot"

// New starts a fake GitHub with a fresh RSA key, app ID and one installation covering all repos.
func New(opts Options) *Server {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("githubfake: generate app key: %v", err))
	}
	secret := opts.WebhookSecret
	if secret == "" {
		secret = randomHex(16)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Server{
		key:            key,
		keyPEM:         pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		appID:          100000 + int64(randomUint16()),
		installationID: 2000000 + int64(randomUint16()),
		secret:         secret,
		logf:           logf,
		hookClient:     &http.Client{Timeout: 30 * time.Second},
		started:        time.Now().UTC().Truncate(time.Second),
		webhookURL:     opts.WebhookURL,
		repos:          map[string]*Repo{},
		tokens:         map[string]time.Time{},
		nextID:         1000,
		calls:          map[string]int{},
		notModified:    map[string]int{},
		tokenTTL:       time.Hour,
		whileLimited:   map[string]int{},
		treeMaxEntries: opts.TreeMaxEntries,
		treeMaxBytes:   opts.TreeMaxBytes,
		unregistered:   opts.Unregistered,
	}
	s.SetLatency(opts.Latency, opts.LatencyJitter, opts.LatencySeed)
	s.routes = s.routeTable()
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// SetLatency sets the round trip every later answer waits: fixed plus a uniform draw in [0, jitter), from a
// generator seeded with seed.
func (s *Server) SetLatency(fixed, jitter time.Duration, seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency, s.jitter = fixed, jitter
	s.rng = mathrand.New(mathrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// SetTreeLimits sets the caps of a recursive tree listing (see Options.TreeMaxEntries); 0 = GitHub's.
func (s *Server) SetTreeLimits(maxEntries, maxBytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.treeMaxEntries, s.treeMaxBytes = maxEntries, maxBytes
}

// roundTrip is the delay of one answer.
func (s *Server) roundTrip() time.Duration {
	d := s.latency
	if s.jitter > 0 {
		d += time.Duration(s.rng.Int64N(int64(s.jitter)))
	}
	return d
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// URL is the REST API base URL, ending in "/". Everything is also served under /api/v3/.
func (s *Server) URL() string { return s.ts.URL + "/" }

// WebURL is the base of html_url links ("https://github.com/" on the real site).
func (s *Server) WebURL() string { return s.ts.URL + "/web/" }

// AppID is the GitHub App's ID, the issuer its JWTs must carry.
func (s *Server) AppID() int64 { return s.appID }

// PrivateKeyPEM is the app's PKCS1 private key, for ghinstallation.
func (s *Server) PrivateKeyPEM() []byte { return append([]byte(nil), s.keyPEM...) }

// WebhookSecret is the HMAC key of X-Hub-Signature-256.
func (s *Server) WebhookSecret() string { return s.secret }

// InstallationID is the single installation, covering every repository.
func (s *Server) InstallationID() int64 { return s.installationID }

// SetWebhookURL sets where events are POSTed; "" records them without sending.
func (s *Server) SetWebhookURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookURL = u
}

// Routes lists every "METHOD /path/{param}" the fake serves, sorted.
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.routes))
	for _, rt := range s.routes {
		out = append(out, rt.pattern)
	}
	sort.Strings(out)
	return out
}

// Calls is how many requests matched route (spelled as in Routes, or "UNKNOWN <method> <path>"),
// including those answered 304.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

// CallCounts is a copy of every route's request count.
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// NotModified is how many requests to route were answered 304 (they cost no rate limit on GitHub).
func (s *Server) NotModified(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notModified[route]
}

// ResetCalls zeroes every counter.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
	s.notModified = map[string]int{}
	s.maxInFlight = s.inFlight
}

// MaxInFlight returns the most requests the server was answering at once since it started or ResetCalls
// was last called: how far a client overlaps its requests.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// ProcessingLimit is how long GitHub works on one REST request before it ends it with a timeout: a write whose
// answer was lost lands within this much of its arrival, or never.
const ProcessingLimit = 10 * time.Second

// InjectFault adds a fault; faults are tried in the order they were added. It panics on a fault GitHub cannot
// produce: ApplyAfter without DropResponse, or past ProcessingLimit.
func (s *Server) InjectFault(f Fault) {
	if f.ApplyAfter != 0 && (!f.DropResponse || f.ApplyAfter < 0 || f.ApplyAfter > ProcessingLimit) {
		panic(fmt.Sprintf("githubfake: ApplyAfter %s needs DropResponse and at most %s", f.ApplyAfter, ProcessingLimit))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// PendingFaults is how many injected faults have requests left to affect (those with Times 0 never run out).
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// apiError is a GitHub-shaped error answer.
type apiError struct {
	status  int
	message string
	// errors are the validation errors GitHub lists with a 422 ("resource", "code", "field", "message").
	errors []map[string]any
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%d %s", e.status, e.message)
	for _, v := range e.errors {
		msg += fmt.Sprintf(": %v", v["message"])
	}
	return msg
}

func errorf(status int, format string, args ...any) error {
	return &apiError{status: status, message: fmt.Sprintf(format, args...)}
}

var (
	errNotFound = &apiError{status: http.StatusNotFound, message: "Not Found"}
)

// call is one request being answered.
type call struct {
	r      *http.Request
	params map[string]string
	body   []byte
	repo   *Repo
	header http.Header
	events []event
}

// decode reads the JSON request body into v.
func (c *call) decode(v any) error {
	if len(c.body) == 0 {
		return errorf(http.StatusBadRequest, "Problems parsing JSON")
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return errorf(http.StatusBadRequest, "Problems parsing JSON: %v", err)
	}
	return nil
}

// intParam parses a numeric path parameter.
func (c *call) intParam(name string) (int64, error) {
	n, err := strconv.ParseInt(c.params[name], 10, 64)
	if err != nil {
		return 0, errNotFound
	}
	return n, nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	for strings.Contains(path, "//") {
		path = strings.ReplaceAll(path, "//", "/")
	}
	path = strings.TrimPrefix(path, "/api/v3")
	if path == "/api/graphql" {
		path = "/graphql" // GitHub Enterprise Server serves GraphQL beside /api/v3, at /api/graphql
	}
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	if web, ok := strings.CutPrefix(path, "/web/"); ok { // github.com's pages, not the API
		s.serveWeb(w, r, "/"+web)
		return
	}
	rt, params := match(s.routes, r.Method, path)
	name := "UNKNOWN " + r.Method + " " + path
	if rt != nil {
		name = rt.pattern
	}

	appRoute := rt != nil && rt.auth == authApp
	s.mu.Lock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	s.calls[name]++
	s.totalCalls++
	var limit *activeLimit
	if !appRoute {
		limit = s.limitInForce(time.Now())
	}
	var fault *Fault
	if limit == nil {
		fault = s.takeFault(name, appRoute)
		if fault != nil && fault.RateLimit != "" {
			limit = s.startLimit(*fault, time.Now())
		}
	} else {
		s.whileLimited[r.Method+" "+path]++
	}
	delay := s.roundTrip()
	s.mu.Unlock()
	if fault != nil {
		delay += fault.Latency
	}
	s.logf("githubfake: %s %s (%s)", r.Method, r.URL.RequestURI(), name)
	// The body arrives with the request, before GitHub works on it.
	body, bodyErr := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			if !isWrite(r.Method) {
				// A read whose client left has nothing to apply.
				t.Stop()
				return
			}
			// GitHub goes on with a write whose client gave up: it lands after the deadline the client saw
			// pass, and only a later read shows it. It counts as a late write until it has landed.
			s.mu.Lock()
			s.lateWrites++
			s.mu.Unlock()
			defer func() {
				s.mu.Lock()
				s.lateWrites--
				s.mu.Unlock()
			}()
			<-t.C
		}
	}
	if limit != nil {
		s.writeRateLimit(w, limit)
		return
	}
	if fault != nil && fault.Status != 0 && !fault.DropResponse {
		s.writeFault(w, fault)
		return
	}
	if rt == nil {
		s.writeError(w, errNotFound)
		return
	}
	if bodyErr != nil {
		s.writeError(w, errorf(http.StatusBadRequest, "read body: %v", bodyErr))
		return
	}
	if err := s.authorize(r, rt.auth); err != nil {
		s.writeError(w, err)
		return
	}
	if fault != nil && fault.DropResponse && fault.ApplyAfter > 0 {
		s.applyLate(rt, &call{r: r.Clone(context.WithoutCancel(r.Context())), params: params, body: body, header: http.Header{}}, fault.ApplyAfter-delay)
		if fault.Status != 0 {
			s.writeFault(w, fault)
			return
		}
		dropConnection(w)
		return
	}
	c := &call{r: r, params: params, body: body, header: w.Header()}
	status, out, err := s.dispatch(rt, c)
	s.emit(c.events)
	if fault != nil && fault.DropResponse {
		if fault.Status != 0 {
			s.writeFault(w, fault)
			return
		}
		dropConnection(w)
		return
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeJSON(w, r, name, status, out)
}

// applyLate runs c after wait, as GitHub finishing a request whose answer is gone; its events are sent then.
func (s *Server) applyLate(rt *route, c *call, wait time.Duration) {
	s.mu.Lock()
	s.lateWrites++
	s.mu.Unlock()
	go func() {
		time.Sleep(wait)
		_, _, _ = s.dispatch(rt, c)
		s.emit(c.events)
		s.mu.Lock()
		s.lateWrites--
		s.mu.Unlock()
	}()
}

// LateWrites is how many writes are still to be applied though their client has its answer (Fault.ApplyAfter)
// or gave up waiting for it (a delayed answer past the client's deadline).
func (s *Server) LateWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lateWrites
}

// isWrite reports whether method changes something on GitHub.
func isWrite(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// dispatch resolves the repository (when the route has one) and runs the handler under the lock.
func (s *Server) dispatch(rt *route, c *call) (int, any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if owner, ok := c.params["owner"]; ok {
		repo := s.repos[strings.ToLower(owner+"/"+c.params["repo"])]
		if repo == nil {
			return 0, nil, errNotFound
		}
		c.repo = repo
	}
	return rt.handle(c)
}

// takeFault returns the first fault matching route and counts it down; rate limits never apply to routes
// authenticated as the App. Callers hold s.mu.
func (s *Server) takeFault(route string, appRoute bool) *Fault {
	for i, f := range s.faults {
		if f.Route != "" && f.Route != route || appRoute && f.RateLimit != "" {
			continue
		}
		out := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

// limitInForce returns the rate limit holding at now, forgetting one that ended. Callers hold s.mu.
func (s *Server) limitInForce(now time.Time) *activeLimit {
	if s.limit != nil && !now.Before(s.limit.until) {
		s.limit = nil
	}
	return s.limit
}

// startLimit puts f's rate limit in force from now. Callers hold s.mu.
func (s *Server) startLimit(f Fault, now time.Time) *activeLimit {
	d := f.ResetIn
	if f.RateLimit == SecondaryLimit {
		d = time.Minute // GitHub: without Retry-After, wait at least a minute
		if n, err := strconv.Atoi(f.RetryAfter); err == nil {
			d = time.Duration(n) * time.Second
		}
	}
	s.limit = &activeLimit{fault: f, until: now.Add(d)}
	return s.limit
}

// RequestsWhileLimited is how many requests arrived while a rate limit started by a Fault held.
func (s *Server) RequestsWhileLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.whileLimited {
		n += c
	}
	return n
}

// RequestsWhileLimitedByPath is RequestsWhileLimited per "METHOD /path". A request already on its way when
// the limit began is refused once; a client that sends the same one again before the limit ends is knocking.
func (s *Server) RequestsWhileLimitedByPath() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.whileLimited))
	for k, v := range s.whileLimited {
		out[k] = v
	}
	return out
}

// writeRateLimit answers as GitHub does while a limit holds.
func (s *Server) writeRateLimit(w http.ResponseWriter, l *activeLimit) {
	status := l.fault.Status
	if status == 0 {
		status = http.StatusForbidden
	}
	requestID := strings.ToUpper(randomHex(8))
	if l.fault.RateLimit == PrimaryLimit {
		h := w.Header()
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", "5000")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(l.until.Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
		h.Set("X-GitHub-Request-Id", requestID)
		s.writeRaw(w, status, map[string]any{
			"message":           fmt.Sprintf("API rate limit exceeded for installation ID %d. If you reach out to GitHub Support for help, please include the request ID %s.", s.installationID, requestID),
			"documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
		})
		return
	}
	if l.fault.RetryAfter != "" {
		w.Header().Set("Retry-After", l.fault.RetryAfter)
	}
	s.writeBody(w, status, map[string]any{
		"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID " + requestID + ".",
		"documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits",
	})
}

func (s *Server) writeFault(w http.ResponseWriter, f *Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	msg := http.StatusText(f.Status)
	doc := "https://docs.github.com/rest"
	if f.RetryAfter != "" && (f.Status == http.StatusForbidden || f.Status == http.StatusTooManyRequests) {
		msg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
		doc = "https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"
	}
	s.writeBody(w, f.Status, map[string]any{"message": msg, "documentation_url": doc})
}

func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}

func (s *Server) writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{status: http.StatusInternalServerError, message: err.Error()}
	}
	body := map[string]any{"message": ae.message, "documentation_url": "https://docs.github.com/rest"}
	if len(ae.errors) > 0 {
		body["errors"] = ae.errors
	}
	s.writeBody(w, ae.status, body)
}

// rateHeaders sets the headers GitHub sends on every answer.
// A GraphQL answer (its handler set X-RateLimit-Resource: graphql) reports the GraphQL budget of points,
// which GitHub counts apart from the REST one.
func (s *Server) rateHeaders(w http.ResponseWriter) {
	h := w.Header()
	resource := "core"
	s.mu.Lock()
	used := s.totalCalls % 5000
	if h.Get("X-RateLimit-Resource") == "graphql" {
		resource, used = "graphql", min(s.graphqlPoints, graphqlPointsPerHour)
	}
	s.mu.Unlock()
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(5000-used))
	h.Set("X-RateLimit-Used", strconv.Itoa(used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	h.Set("X-RateLimit-Resource", resource)
	h.Set("X-GitHub-Request-Id", strings.ToUpper(randomHex(8)))
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
}

func (s *Server) writeBody(w http.ResponseWriter, status int, v any) {
	s.rateHeaders(w)
	s.writeRaw(w, status, v)
}

// writeRaw writes v as JSON with the headers already set.
func (s *Server) writeRaw(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// writeJSON answers a successful request; GETs get an ETag and answer 304 to a matching If-None-Match.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, name string, status int, v any) {
	if v == nil {
		s.rateHeaders(w)
		w.WriteHeader(status)
		return
	}
	if r.Method != http.MethodGet {
		s.writeBody(w, status, v)
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, fmt.Errorf("encode %s: %w", name, err))
		return
	}
	etag := githubETag(r.Header, data)
	s.rateHeaders(w)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
	h.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		s.mu.Lock()
		s.notModified[name]++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// githubETag computes an ETag the way GitHub does: SHA-256 over the values of the request's Accept,
// Authorization and Cookie headers, each followed by ":", then the body. So a new installation token gets a
// new ETag for the same resource, and a client revalidating with the ETag it got under the previous token is
// answered 200, not 304, as on GitHub.
func githubETag(req http.Header, body []byte) string {
	h := sha256.New()
	for _, name := range []string{"Accept", "Authorization", "Cookie"} {
		for _, v := range req.Values(name) {
			h.Write([]byte(v))
			h.Write([]byte{':'})
		}
	}
	h.Write(body)
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("githubfake: random: %v", err))
	}
	return hex.EncodeToString(b)
}

func randomUint16() uint16 {
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("githubfake: random: %v", err))
	}
	return uint16(b[0])<<8 | uint16(b[1])
}

// newID returns a fresh numeric ID. Callers hold s.mu.
func (s *Server) newID() int64 {
	s.nextID++
	return s.nextID
}

// isoTime formats t like GitHub does.
func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
