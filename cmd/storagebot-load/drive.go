package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"text/tabwriter"
	"time"
)

// webhookPath is where serve takes deliveries.
const webhookPath = "/api/github/hook"

// result is one run's figures. The first fields are the contract scripts depend on; the rest are details.
type result struct {
	Deliveries         int     `json:"deliveries"`
	Concurrency        int     `json:"concurrency"`
	Rate               float64 `json:"rate"`
	Versions           int     `json:"versions"`
	AckP50Ms           float64 `json:"ack_p50_ms"`
	AckP99Ms           float64 `json:"ack_p99_ms"`
	DeliveriesPerS     float64 `json:"deliveries_per_s"`
	VerdictP50Ms       float64 `json:"verdict_p50_ms"`
	VerdictP99Ms       float64 `json:"verdict_p99_ms"`
	APICallsPerVerdict float64 `json:"api_calls_per_verdict"`
	PeakRSSMB          float64 `json:"peak_rss_mb"`

	// Accepted deliveries were answered 2xx; Refused got another status (503: queue full); Failed got no
	// answer within GitHub's 10 s delivery timeout.
	Accepted int `json:"accepted"`
	Refused  int `json:"refused"`
	Failed   int `json:"failed"`
	// Verdicts is how many accepted pull_request deliveries got their storage-policy run completed;
	// VerdictsMissing how many did not before the timeout.
	Verdicts        int `json:"verdicts"`
	VerdictsMissing int `json:"verdicts_missing"`
	// APICalls counts GitHub requests during the run other than those answered 304 (free on GitHub).
	APICalls int `json:"api_calls"`
	// APICallsByRoute splits APICalls by route ("GET /repos/{owner}/{repo}/git/trees/{sha}"), 304s included.
	APICallsByRoute map[string]int `json:"api_calls_by_route"`
	SendingS        float64        `json:"sending_s"`
	AckMaxMs        float64        `json:"ack_max_ms"`
	VerdictMax      float64        `json:"verdict_max_ms"`
}

// sample is what happened to one delivery.
type sample struct {
	scheduled time.Time // open loop: when it was due; closed loop: when it was sent
	answered  time.Time
	status    int
	err       error
}

// drive runs the whole measurement: fixture, serve, deliveries, verdicts, figures.
func drive(ctx context.Context, o options, binary string, stderr io.Writer) (*result, error) {
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	fx, err := newFixture(o.versions, o.deliveries, o.mix, "load-"+hex.EncodeToString(runID))
	if err != nil {
		return nil, fmt.Errorf("prepare the fake GitHub and the deliveries: %w", err)
	}
	defer fx.fake.Close()
	srv, err := startServe(ctx, binary, fx)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.stop()
		}
	}()
	// serve reconciles once at start; let that finish so its calls are not counted as the run's.
	settle(ctx, fx)
	fx.fake.ResetCalls()

	client := &http.Client{
		Timeout:   10 * time.Second, // GitHub's delivery timeout
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute},
	}
	defer client.CloseIdleConnections()
	url := "http://" + srv.addr + webhookPath
	samples := make([]sample, len(fx.deliveries))
	send := func(i int, due time.Time) {
		d := fx.deliveries[i]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.body))
		if err != nil {
			samples[i] = sample{scheduled: due, answered: time.Now(), err: err}
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "GitHub-Hookshot/storagebot-load")
		req.Header.Set("X-GitHub-Event", d.event)
		req.Header.Set("X-GitHub-Delivery", d.id)
		req.Header.Set("X-Hub-Signature-256", d.signature)
		resp, err := client.Do(req)
		if err != nil {
			samples[i] = sample{scheduled: due, answered: time.Now(), err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		samples[i] = sample{scheduled: due, answered: time.Now(), status: resp.StatusCode}
	}

	start := time.Now()
	var wg sync.WaitGroup
	if o.rate > 0 {
		// Open loop: delivery i is due at start + i/rate and is sent on its own goroutine, whatever became of
		// the earlier ones; its latencies count from when it was due.
		period := float64(time.Second) / o.rate
		for i := range fx.deliveries {
			due := start.Add(time.Duration(math.Round(float64(i) * period)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() { defer wg.Done(); send(i, due) }()
		}
	} else {
		var next int
		var mu sync.Mutex
		for c := 0; c < o.concurrency; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					if i >= len(fx.deliveries) {
						return
					}
					send(i, time.Now())
				}
			}()
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("the run did not finish within --timeout (%v); raise it or send fewer deliveries", ctx.Err())
	}

	var want []string
	for i, d := range fx.deliveries {
		if d.kind == kindPR && samples[i].err == nil && samples[i].status/100 == 2 {
			want = append(want, d.id)
		}
	}
	srv.waitVerdicts(ctx, want)
	verdicts := srv.verdictTimes()

	res := &result{Deliveries: o.deliveries, Concurrency: o.concurrency, Rate: o.rate, Versions: o.versions}
	var acks, verdictLat []time.Duration
	var last time.Time
	for i, s := range samples {
		switch {
		case s.scheduled.IsZero():
			continue // never sent: the context ended
		case s.err != nil:
			res.Failed++
			continue
		case s.status/100 != 2:
			res.Refused++
		default:
			res.Accepted++
		}
		acks = append(acks, s.answered.Sub(s.scheduled))
		if s.answered.After(last) {
			last = s.answered
		}
		if fx.deliveries[i].kind == kindPR && s.status/100 == 2 {
			if at, ok := verdicts[fx.deliveries[i].id]; ok {
				verdictLat = append(verdictLat, at.Sub(s.scheduled))
			} else {
				res.VerdictsMissing++
			}
		}
	}
	res.Verdicts = len(verdictLat)
	res.SendingS = round(last.Sub(start).Seconds(), 3)
	if res.SendingS > 0 {
		res.DeliveriesPerS = round(float64(res.Accepted)/last.Sub(start).Seconds(), 1)
	}
	res.AckP50Ms, res.AckP99Ms, res.AckMaxMs = percentileMs(acks, 50), percentileMs(acks, 99), percentileMs(acks, 100)
	res.VerdictP50Ms, res.VerdictP99Ms, res.VerdictMax = percentileMs(verdictLat, 50), percentileMs(verdictLat, 99), percentileMs(verdictLat, 100)
	res.APICallsByRoute = fx.fake.CallCounts()
	for route, n := range res.APICallsByRoute {
		res.APICalls += n - fx.fake.NotModified(route)
	}
	if res.Verdicts > 0 {
		res.APICallsPerVerdict = round(float64(res.APICalls)/float64(res.Verdicts), 1)
	}
	rss, err := srv.peakRSSBytes()
	if err != nil {
		fmt.Fprintf(stderr, "storagebot-load: %v (peak_rss_mb reported as 0)\n", err)
	}
	res.PeakRSSMB = round(float64(rss)/(1<<20), 1)
	stopped = true
	if err := srv.stop(); err != nil {
		return nil, err
	}
	return res, nil
}

// settle waits until the fake has seen no request for 300ms (at most 10s), so work serve does on its own at
// start is over before the run's calls are counted.
func settle(ctx context.Context, fx *fixture) {
	total := func() int {
		n := 0
		for _, c := range fx.fake.CallCounts() {
			n += c
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	last, quietSince := total(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if n := total(); n != last {
			last, quietSince = n, time.Now()
		} else if time.Since(quietSince) >= 300*time.Millisecond {
			return
		}
	}
}

// percentileMs is the nearest-rank p-th percentile in milliseconds (0 for no samples).
func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return round(float64(s[rank-1])/float64(time.Millisecond), 2)
}

func round(x float64, places int) float64 {
	f := math.Pow(10, float64(places))
	return math.Round(x*f) / f
}

// write prints the result as one JSON object or as a small table.
func (r *result) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		return enc.Encode(r)
	}
	loop := fmt.Sprintf("open loop at %g deliveries/s", r.Rate)
	if r.Concurrency > 0 {
		loop = fmt.Sprintf("closed loop of %d clients", r.Concurrency)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%d deliveries, %s, storage of %d versions\n", r.Deliveries, loop, r.Versions)
	fmt.Fprintf(tw, "accepted\t%d\trefused %d, no answer %d\n", r.Accepted, r.Refused, r.Failed)
	fmt.Fprintf(tw, "acknowledgement\tp50 %.2f ms\tp99 %.2f ms\tmax %.2f ms\n", r.AckP50Ms, r.AckP99Ms, r.AckMaxMs)
	fmt.Fprintf(tw, "throughput\t%.1f deliveries/s\tover %.3f s\n", r.DeliveriesPerS, r.SendingS)
	fmt.Fprintf(tw, "verdict\tp50 %.2f ms\tp99 %.2f ms\tmax %.2f ms\t(%d verdicts, %d missing)\n", r.VerdictP50Ms, r.VerdictP99Ms, r.VerdictMax, r.Verdicts, r.VerdictsMissing)
	fmt.Fprintf(tw, "GitHub API calls\t%.1f per verdict\t%d in all\n", r.APICallsPerVerdict, r.APICalls)
	fmt.Fprintf(tw, "serve peak RSS\t%.1f MiB\n", r.PeakRSSMB)
	return tw.Flush()
}
