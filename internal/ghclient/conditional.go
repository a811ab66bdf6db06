package ghclient

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
)

// etagVaryHeaders are the request headers GitHub mixes into an ETag, in its order: the ETag is the SHA-256 of
// each present value followed by ":", then the response body. GitHub does not document this; it is what its
// answers show, and it is why a plain HTTP cache (which keys on, or varies by, Authorization) loses every entry
// when the hourly installation token rotates. If GitHub changes it, the computed tag stops matching and
// revalidations are answered 200 instead of 304: correct, only dearer.
var etagVaryHeaders = []string{"Accept", "Authorization", "Cookie"}

// conditionalCache is an http.RoundTripper that revalidates every GET with the response it holds for the same
// resource, and answers from that response when GitHub says 304 Not Modified (which costs no rate limit).
//
// The key is what names the resource — method, URL and Accept — never the token, so an entry outlives token
// rotation: under the token that fetched the entry the request carries the ETag GitHub sent, under a new one
// the ETag GitHub computes for that token over the held body. Nothing is ever served without asking GitHub (GitHub's max-age=60 would serve
// branch heads and PR state a minute stale), and a 304 to an ETag computed with the requester's own token
// means GitHub would send this requester exactly the held body: that is why one cache can serve every
// installation without leaking a response to one that cannot see it (it gets a 404, never the body).
//
// It sits below ghinstallation, where the Authorization header exists.
type conditionalCache struct {
	next  http.RoundTripper
	cache *ByteLRU
}

func newConditionalCache(next http.RoundTripper, cache *ByteLRU) *conditionalCache {
	return &conditionalCache{next: next, cache: cache}
}

func cacheKey(req *http.Request) string {
	return req.Method + " " + req.URL.String() + "\nAccept: " + strings.Join(req.Header.Values("Accept"), ", ")
}

// ExpectedETag is the ETag GitHub gives a response with this body to a request with these headers.
func ExpectedETag(reqHeader http.Header, body []byte) string {
	h := sha256.New()
	for _, name := range etagVaryHeaders {
		for _, v := range reqHeader.Values(name) {
			h.Write([]byte(v))
			h.Write([]byte{':'})
		}
	}
	h.Write(body)
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}

func (c *conditionalCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.Header.Get("Range") != "" {
		return c.next.RoundTrip(req)
	}
	key := cacheKey(req)
	held := c.load(key, req)
	sent := req
	if held != nil && req.Header.Get("If-None-Match") == "" && req.Header.Get("If-Modified-Since") == "" {
		body, _ := io.ReadAll(held.Body)
		_ = held.Body.Close()
		held.Body = io.NopCloser(bytes.NewReader(body))
		// Under the token that fetched it, the ETag GitHub sent is certain; under a new one, the computed tag.
		tag := held.Header.Get("ETag")
		if tag == "" || held.Header.Get(credentialHeader) != credentialDigest(req) {
			tag = ExpectedETag(req.Header, body)
		}
		held.Header.Del(credentialHeader)
		sent = req.Clone(req.Context())
		sent.Header.Set("If-None-Match", tag)
	} else {
		held = nil // the caller's own conditional request: its 304 is for the caller to read
	}
	resp, err := c.next.RoundTrip(sent)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && held != nil:
		// The 304's headers are current (rate-limit figures, request id, the ETag for this token); the body
		// is the held one. X-From-Cache is not set: go-github would then ignore these rate-limit headers.
		for _, name := range []string{"ETag", "Date", "X-GitHub-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining",
			"X-RateLimit-Used", "X-RateLimit-Reset", "X-RateLimit-Resource", "Cache-Control"} {
			if v := resp.Header.Values(name); len(v) > 0 {
				held.Header[http.CanonicalHeaderKey(name)] = v
			}
		}
		held.Header.Set(revalidatedHeader, "1")
		_ = resp.Body.Close()
		held.Request = req
		return held, nil
	case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "" && !strings.Contains(resp.Header.Get("Cache-Control"), "no-store"):
		digest := credentialDigest(req)
		resp.Body = &storeOnEOF{ReadCloser: resp.Body, limit: c.cache.maxBytes, store: func(body []byte) { c.store(key, resp, body, digest) }}
	case resp.StatusCode != http.StatusNotModified:
		c.cache.Delete(key) // gone, moved or refused: the held answer says nothing true any more
	}
	return resp, nil
}

// revalidatedHeader marks a response answered from the cache after GitHub confirmed it with a 304.
const revalidatedHeader = "X-Storagebot-Revalidated"

// credentialHeader holds, in a stored response only, the digest of the credential that fetched it: enough to
// tell whether the token changed, nothing to recover it from.
const credentialHeader = "X-Storagebot-Credential-Sha256"

func credentialDigest(req *http.Request) string {
	sum := sha256.Sum256([]byte(strings.Join(req.Header.Values("Authorization"), "\n")))
	return hex.EncodeToString(sum[:])
}

func (c *conditionalCache) load(key string, req *http.Request) *http.Response {
	b, ok := c.cache.Get(key)
	if !ok {
		return nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), req)
	if err != nil {
		c.cache.Delete(key)
		return nil
	}
	return resp
}

func (c *conditionalCache) store(key string, resp *http.Response, body []byte, credential string) {
	stored := &http.Response{
		Status: resp.Status, StatusCode: resp.StatusCode, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: resp.Header.Clone(), ContentLength: int64(len(body)), Body: io.NopCloser(bytes.NewReader(body)),
	}
	// Transfer details of the original answer (the body was decompressed, perhaps chunked) do not apply to
	// the stored bytes; cookies are never replayed.
	for _, name := range []string{"Content-Encoding", "Transfer-Encoding", "Content-Length", "Set-Cookie", revalidatedHeader} {
		stored.Header.Del(name)
	}
	stored.Header.Set(credentialHeader, credential)
	b, err := httputil.DumpResponse(stored, true)
	if err != nil {
		return
	}
	c.cache.Set(key, b)
}

// storeOnEOF hands the body to store once the caller has read it all, unless it grew past limit.
type storeOnEOF struct {
	io.ReadCloser
	limit int
	buf   bytes.Buffer
	over  bool
	done  bool
	store func([]byte)
}

func (s *storeOnEOF) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if n > 0 && !s.over {
		if s.buf.Len()+n > s.limit {
			s.over = true
			s.buf = bytes.Buffer{}
		} else {
			s.buf.Write(p[:n])
		}
	}
	if err == io.EOF && !s.over && !s.done {
		s.done = true
		s.store(s.buf.Bytes())
	}
	return n, err
}

// Close stores a body the caller read to its end without seeing io.EOF (a JSON decoder stops after the
// value; a chunked body reports EOF only on the next read): what is left, within the limit, is read first.
func (s *storeOnEOF) Close() error {
	if !s.done && !s.over {
		_, _ = io.Copy(io.Discard, io.LimitReader(s, int64(s.limit-s.buf.Len()+1)))
	}
	return s.ReadCloser.Close()
}
