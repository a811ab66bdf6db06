package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/palantir/go-githubapp/githubapp"
	"github.com/rs/zerolog"
)

// BenchmarkWebhookAck is the load driver of docs/architecture.md §8 for the intake: 1, 10 and 200 concurrent clients post signed
// deliveries of GitHub's own pull_request example (28 KB) over loopback to a real HTTP server; the handler does
// nothing, so the figures are the acknowledgement path (size cap, HMAC, JSON check, dispatch, queue). It reports
// deliveries per second and the p50/p99 acknowledgement latency. Timing is reported, never asserted.
func BenchmarkWebhookAck(b *testing.B) {
	for _, clients := range []int{1, 10, 200} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchmarkWebhookAck(b, clients) })
	}
}

func benchmarkWebhookAck(b *testing.B, clients int) {
	body, err := os.ReadFile("testdata/pull_request.opened.payload.json")
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.Queue = QueueConfig{Size: 100000, Workers: 4}
	cfg.MaxBodyBytes = 25 << 20
	s := New(cfg, zerolog.Nop(), nil, []githubapp.EventHandler{&recordingHandler{}})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	transport := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: transport}
	sig := sign(body)

	latencies := make([]time.Duration, b.N)
	var next int
	var mu sync.Mutex
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		if next >= b.N {
			return -1
		}
		next++
		return next - 1
	}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := take(); i >= 0; i = take() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath, bytes.NewReader(body))
				req.Header.Set("X-GitHub-Event", "pull_request")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("load-%d", i))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Hub-Signature-256", sig)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				latencies[i] = time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					b.Errorf("delivery %d: status %d", i, resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(latencies[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[(b.N*99)/100].Microseconds())/1000, "p99-ms")
	if err := s.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}
