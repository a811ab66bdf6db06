package ghclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func fastPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxWait: 2 * time.Second}
}

func TestRetryTransport(t *testing.T) {
	type answer struct {
		status  int
		headers map[string]string
		body    string
	}
	tests := []struct {
		name       string
		method     string
		answers    []answer
		wantStatus int
		wantCalls  int
		wantRetry  []string
	}{
		{name: "5xx retried until success", method: "GET", answers: []answer{{status: 502}, {status: 500}, {status: 200}}, wantStatus: 200, wantCalls: 3, wantRetry: []string{"server_error", "server_error"}},
		{name: "5xx gives up after max attempts", method: "GET", answers: []answer{{status: 503}, {status: 503}, {status: 503}, {status: 200}}, wantStatus: 503, wantCalls: 3, wantRetry: []string{"server_error", "server_error"}},
		{name: "GET retried after a 503 honouring its Retry-After", method: "GET", answers: []answer{{status: 503, headers: map[string]string{"Retry-After": "0"}}, {status: 200}}, wantStatus: 200, wantCalls: 2, wantRetry: []string{"server_error"}},
		{name: "POST not retried after a 5xx: the write may have landed", method: "POST", answers: []answer{{status: 502}, {status: 201}}, wantStatus: 502, wantCalls: 1},
		{name: "PATCH not retried after a 5xx: annotations would be appended twice", method: "PATCH", answers: []answer{{status: 500}, {status: 200}}, wantStatus: 500, wantCalls: 1},
		{name: "PUT retried after a 5xx with its body replayed", method: "PUT", answers: []answer{{status: 500}, {status: 200}}, wantStatus: 200, wantCalls: 2, wantRetry: []string{"server_error"}},
		{name: "POST retried after a rate limit: GitHub applied nothing", method: "POST", answers: []answer{{status: 403, headers: map[string]string{"Retry-After": "0"}, body: `{"message":"You have exceeded a secondary rate limit."}`}, {status: 201}}, wantStatus: 201, wantCalls: 2, wantRetry: []string{"rate_limit"}},
		{name: "secondary rate limit with Retry-After", method: "GET", answers: []answer{{status: 403, headers: map[string]string{"Retry-After": "1"}}, {status: 200}}, wantStatus: 200, wantCalls: 2, wantRetry: []string{"rate_limit"}},
		{name: "plain 403 not retried", method: "GET", answers: []answer{{status: 403, body: `{"message":"Resource not accessible by integration"}`}, {status: 200}}, wantStatus: 403, wantCalls: 1},
		{name: "404 not retried", method: "GET", answers: []answer{{status: 404}, {status: 200}}, wantStatus: 404, wantCalls: 1},
		{name: "422 not retried", method: "POST", answers: []answer{{status: 422}, {status: 201}}, wantStatus: 422, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				if r.Method == "POST" {
					b, _ := io.ReadAll(r.Body)
					if string(b) != "payload" {
						t.Errorf("attempt %d body = %q, want the original body replayed", n+1, b)
					}
				}
				a := tc.answers[n]
				for k, v := range a.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(a.status)
				_, _ = io.WriteString(w, a.body)
			}))
			defer srv.Close()
			var retries []string
			client := &http.Client{Transport: NewRetryTransport(http.DefaultTransport, fastPolicy(), func(r string) { retries = append(retries, r) })}
			var body io.Reader
			if tc.method != "GET" {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequest(tc.method, srv.URL, body)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if last := tc.answers[int(calls.Load())-1]; string(b) != last.body {
				t.Errorf("body = %q, want the last answer's %q intact", b, last.body)
			}
			if int(calls.Load()) != tc.wantCalls {
				t.Errorf("calls = %d, want %d", calls.Load(), tc.wantCalls)
			}
			if diff := cmp.Diff(tc.wantRetry, retries); diff != "" {
				t.Errorf("retries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestByteLRU(t *testing.T) {
	c := NewByteLRU(10)
	c.Set("a", []byte("aaaa"))
	c.Set("b", []byte("bbbb"))
	if _, ok := c.Get("a"); !ok { // a becomes most recent
		t.Fatal("a missing")
	}
	c.Set("c", []byte("cccc")) // evicts b, the least recently used
	if _, ok := c.Get("b"); ok {
		t.Error("b should have been evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%s evicted, want kept", k)
		}
	}
	if c.Size() != 8 {
		t.Errorf("size = %d, want 8", c.Size())
	}
	c.Set("huge", make([]byte, 11))
	if _, ok := c.Get("huge"); ok {
		t.Error("an entry larger than the cache must not be stored")
	}
	c.Delete("a")
	if c.Size() != 4 {
		t.Errorf("size after delete = %d, want 4", c.Size())
	}
}
