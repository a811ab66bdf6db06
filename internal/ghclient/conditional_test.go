package ghclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// etagServer serves bodies by path with ETags computed as GitHub does (Accept, Authorization, Cookie, body),
// answers 304 to a matching If-None-Match, and records what it answered.
type etagServer struct {
	mu       sync.Mutex
	bodies   map[string]string // path + "|" + Accept → body; a missing one is a 404
	statuses []int
}

func (s *etagServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body, ok := s.bodies[r.URL.Path+"|"+r.Header.Get("Accept")]
	s.mu.Unlock()
	status := http.StatusOK
	defer func() {
		s.mu.Lock()
		s.statuses = append(s.statuses, status)
		s.mu.Unlock()
	}()
	if !ok {
		status = http.StatusNotFound
		w.WriteHeader(status)
		return
	}
	h := sha256.New()
	for _, name := range []string{"Accept", "Authorization", "Cookie"} {
		for _, v := range r.Header.Values(name) {
			h.Write([]byte(v + ":"))
		}
	}
	h.Write([]byte(body))
	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, max-age=60, s-maxage=60")
	w.Header().Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	for _, t := range strings.Split(r.Header.Get("If-None-Match"), ",") {
		if t = strings.TrimSpace(t); t == etag || t == "*" {
			status = http.StatusNotModified
			w.Header().Set("X-RateLimit-Remaining", "4998")
			w.WriteHeader(status)
			return
		}
	}
	_, _ = io.WriteString(w, body)
}

func (s *etagServer) set(path, accept, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if body == "" {
		delete(s.bodies, path+"|"+accept)
		return
	}
	s.bodies[path+"|"+accept] = body
}

func (s *etagServer) answered() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.statuses
	s.statuses = nil
	return out
}

func TestConditionalCache(t *testing.T) {
	const jsonType, rawType = "application/vnd.github+json", "application/vnd.github.raw"
	type get struct {
		path, accept, token string
		inm                 string // the caller's own If-None-Match
	}
	type want struct {
		status      int // what the caller sees
		body        string
		revalidated bool
		wire        int // what GitHub answered
	}
	tests := []struct {
		name  string
		setup map[string]string // path|accept → body
		steps []get
		// change is applied before the last step: path|accept → new body ("" = deleted)
		change map[string]string
		want   []want
	}{
		{
			name:  "a new token still gets 304",
			setup: map[string]string{"/r|" + jsonType: `{"sha":"a"}`},
			steps: []get{{path: "/r", accept: jsonType, token: "token one"}, {path: "/r", accept: jsonType, token: "token two"}, {path: "/r", accept: jsonType, token: "token three"}},
			want:  []want{{200, `{"sha":"a"}`, false, 200}, {200, `{"sha":"a"}`, true, 304}, {200, `{"sha":"a"}`, true, 304}},
		},
		{
			name:  "Accept is part of the resource",
			setup: map[string]string{"/c|" + jsonType: `{"content":"eA=="}`, "/c|" + rawType: "x"},
			steps: []get{{path: "/c", accept: jsonType, token: "t1"}, {path: "/c", accept: rawType, token: "t1"}, {path: "/c", accept: jsonType, token: "t2"}, {path: "/c", accept: rawType, token: "t2"}},
			want:  []want{{200, `{"content":"eA=="}`, false, 200}, {200, "x", false, 200}, {200, `{"content":"eA=="}`, true, 304}, {200, "x", true, 304}},
		},
		{
			name:   "a changed resource is read again, never served stale",
			setup:  map[string]string{"/r|" + jsonType: `{"sha":"a"}`},
			steps:  []get{{path: "/r", accept: jsonType, token: "t1"}, {path: "/r", accept: jsonType, token: "t1"}},
			change: map[string]string{"/r|" + jsonType: `{"sha":"b"}`},
			want:   []want{{200, `{"sha":"a"}`, false, 200}, {200, `{"sha":"b"}`, false, 200}},
		},
		{
			name:   "a vanished resource drops the entry",
			setup:  map[string]string{"/r|" + jsonType: `{"sha":"a"}`},
			steps:  []get{{path: "/r", accept: jsonType, token: "t1"}, {path: "/r", accept: jsonType, token: "t2"}},
			change: map[string]string{"/r|" + jsonType: ""},
			want:   []want{{200, `{"sha":"a"}`, false, 200}, {404, "", false, 404}},
		},
		{
			name:  "the caller's own conditional request gets its own 304",
			setup: map[string]string{"/r|" + jsonType: `{"sha":"a"}`},
			steps: []get{{path: "/r", accept: jsonType, token: "t1"}, {path: "/r", accept: jsonType, token: "t1", inm: "*"}},
			want:  []want{{200, `{"sha":"a"}`, false, 200}, {304, "", false, 304}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gh := &etagServer{bodies: map[string]string{}}
			for k, v := range tc.setup {
				path, accept, _ := strings.Cut(k, "|")
				gh.set(path, accept, v)
			}
			srv := httptest.NewServer(gh)
			defer srv.Close()
			lru := NewByteLRU(1 << 20)
			client := &http.Client{Transport: newConditionalCache(http.DefaultTransport, lru)}
			for i, step := range tc.steps {
				if i == len(tc.steps)-1 {
					for k, v := range tc.change {
						path, accept, _ := strings.Cut(k, "|")
						gh.set(path, accept, v)
					}
				}
				req, _ := http.NewRequest(http.MethodGet, srv.URL+step.path, nil)
				req.Header.Set("Accept", step.accept)
				req.Header.Set("Authorization", step.token)
				if step.inm != "" {
					req.Header.Set("If-None-Match", step.inm)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("step %d: %v", i+1, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				w := tc.want[i]
				wire := gh.answered()
				if resp.StatusCode != w.status || string(body) != w.body || (resp.Header.Get(revalidatedHeader) != "") != w.revalidated {
					t.Errorf("step %d: got %d %q revalidated=%v, want %d %q revalidated=%v", i+1, resp.StatusCode, body,
						resp.Header.Get(revalidatedHeader) != "", w.status, w.body, w.revalidated)
				}
				if resp.Header.Get(credentialHeader) != "" {
					t.Errorf("step %d: the stored credential digest reached the caller", i+1)
				}
				if len(wire) != 1 || wire[0] != w.wire {
					t.Errorf("step %d: GitHub answered %v, want [%d]", i+1, wire, w.wire)
				}
				if w.revalidated && resp.Header.Get("X-RateLimit-Remaining") != "4998" {
					t.Errorf("step %d: X-RateLimit-Remaining %q, want the 304's current figure", i+1, resp.Header.Get("X-RateLimit-Remaining"))
				}
			}
		})
	}
}

// TestConditionalCacheHoldsNoCredential: stored responses never carry the token (a cache keyed on, or
// varying by, Authorization keeps it beside every entry).
func TestConditionalCacheHoldsNoCredential(t *testing.T) {
	gh := &etagServer{bodies: map[string]string{"/r|": `{"sha":"a"}`}}
	srv := httptest.NewServer(gh)
	defer srv.Close()
	lru := NewByteLRU(1 << 20)
	client := &http.Client{Transport: newConditionalCache(http.DefaultTransport, lru)}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/r", nil)
	req.Header.Set("Authorization", "token ghs_secretvalue")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if lru.Size() == 0 {
		t.Fatal("nothing cached")
	}
	for _, el := range lru.items {
		if v := el.Value.(*cacheItem).value; bytes.Contains(v, []byte("ghs_secretvalue")) {
			t.Errorf("cached entry %q holds the token", el.Value.(*cacheItem).key)
		}
	}
}

func TestConditionalCacheSkipsOversizedBodies(t *testing.T) {
	gh := &etagServer{bodies: map[string]string{"/big|": strings.Repeat("x", 4096)}}
	srv := httptest.NewServer(gh)
	defer srv.Close()
	lru := NewByteLRU(1024)
	client := &http.Client{Transport: newConditionalCache(http.DefaultTransport, lru)}
	for i := 0; i < 2; i++ {
		resp, err := client.Get(srv.URL + "/big")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) != 4096 {
			t.Fatalf("read %d bytes, want 4096", len(b))
		}
	}
	if lru.Size() != 0 {
		t.Errorf("cache holds %d bytes, want nothing: the body is larger than the cache", lru.Size())
	}
}

// TestConditionalCacheStoresBodiesReadWithoutEOF: go-github decodes JSON and closes the body without reading
// to io.EOF; a chunked answer reports EOF only on a further read. The response is stored all the same.
func TestConditionalCacheStoresBodiesReadWithoutEOF(t *testing.T) {
	var answered []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const etag = `"v1"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") != "" && strings.Contains(r.Header.Get("If-None-Match"), etag) {
			answered = append(answered, 304)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		answered = append(answered, 200)
		_, _ = io.WriteString(w, `{"sha":"a"}`)
		w.(http.Flusher).Flush() // chunked: the value, and a moment later the rest and the end
		time.Sleep(100 * time.Millisecond)
		_, _ = io.WriteString(w, "\n")
	}))
	defer srv.Close()
	client := &http.Client{Transport: newConditionalCache(http.DefaultTransport, NewByteLRU(1<<20))}
	for i := 0; i < 2; i++ {
		resp, err := client.Get(srv.URL + "/r")
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ SHA string }
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.SHA != "a" {
			t.Fatalf("read %d: %v %+v", i+1, err, v)
		}
		resp.Body.Close()
	}
	if diff := cmp.Diff([]int{200, 304}, answered); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}
