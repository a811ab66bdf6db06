package prcheck

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerdictLatency measures a PR verdict at real round trips: the time from the evaluation's start
// (the delivery handed to the Service) to the storage-policy run completed, on a production-sized storage
// (2,000 versions, 200 packages), with the fake GitHub answering every request after a round trip of RTT (and
// up to a tenth more, seeded jitter). It reports ms/verdict, the GitHub calls (api-calls/op, token exchange
// excluded) and the most requests in flight at once. Cases:
//
//   - k=1, 10, 100 touched packages at RTT 0, 50 and 200 ms, reads overlapped within the default bound
//     (storage.DefaultReadConcurrency), and within a bound of 16 where reads queue for slots;
//   - the same with the bound at 1 (storage reads one after another, as before overlapping; the comment
//     listing still overlaps them) for k ≤ 10;
//   - every default-bound case twice: api=rest (one object a call) and api=graphql (batch reads, three
//     GraphQL calls for the trees and manifests);
//   - "truncated": k=1 with GitHub's recursive-listing cap lowered so that every touched package's listing
//     comes back truncated, beside the same PR untruncated.
//
// Run: go test -run '^$' -bench VerdictLatency -benchtime 1x ./internal/prcheck/
func BenchmarkVerdictLatency(b *testing.B) {
	bs := newBenchStorage(b, 2000)
	prs := map[int]*benchPR{}
	for _, k := range []int{1, 10, 100} {
		prs[k] = bs.openPR(b, k, 5)
	}
	for _, rtt := range []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond} {
		for _, k := range []int{1, 10, 100} {
			for _, bound := range []int{0, 1, 16} {
				if bound == 1 && k > 10 {
					continue // minutes at 200 ms: the point is made at k ≤ 10
				}
				if bound == 16 && (k == 1 || rtt == 0) {
					continue // a wider bound only matters where reads queue for slots
				}
				name := fmt.Sprintf("rtt=%dms/k=%d/bound=%d", rtt.Milliseconds(), k, bound)
				if bound == 0 {
					name = fmt.Sprintf("rtt=%dms/k=%d/bound=default", rtt.Milliseconds(), k)
				}
				b.Run(name+"/api=rest", func(b *testing.B) { benchVerdict(b, bs, prs[k], rtt, bound, 0, "rest") })
				if bound == 0 {
					b.Run(name+"/api=graphql", func(b *testing.B) { benchVerdict(b, bs, prs[k], rtt, bound, 0, "graphql") })
				}
			}
		}
		// A package of 10 versions of 5 files lists about 100 entries recursively; a cap of 40 truncates every
		// touched package's listing but no version's.
		b.Run(fmt.Sprintf("rtt=%dms/k=1/untruncated", rtt.Milliseconds()), func(b *testing.B) { benchVerdict(b, bs, prs[1], rtt, 0, 0, "rest") })
		b.Run(fmt.Sprintf("rtt=%dms/k=1/truncated", rtt.Milliseconds()), func(b *testing.B) { benchVerdict(b, bs, prs[1], rtt, 0, 40, "rest") })
	}
}

// benchVerdict evaluates pr cold (fresh object cache and client) b.N times at the given round trip, read
// bound (0 = the default), recursive-listing entry cap (0 = GitHub's) and API ("graphql" batch reads or
// "rest" alone).
func benchVerdict(b *testing.B, bs *benchStorage, pr *benchPR, rtt time.Duration, bound, treeCap int, api string) {
	defer bs.server.SetLatency(0, 0, 0)
	defer bs.server.SetTreeLimits(0, 0)
	var total traffic
	var elapsed time.Duration
	inFlight := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		svc, client := newBenchService(api), bs.productionClient(b)
		if bound > 0 {
			svc.Cache.SetReadConcurrency(bound)
		}
		bs.server.SetLatency(0, 0, 0)
		ghPR := fetchPR(b, client, pr.number) // and the installation token, outside the measure
		bs.server.SetTreeLimits(treeCap, 0)
		bs.server.SetLatency(rtt, rtt/10, uint64(i+1))
		takeTraffic(bs.server)
		b.StartTimer()
		start := time.Now()
		out := evaluate(b, svc, client, ghPR)
		elapsed += time.Since(start)
		b.StopTimer()
		if len(out.Findings) == 0 && out.Conclusion == "" {
			b.Fatalf("evaluation of #%d came back without a verdict", pr.number)
		}
		inFlight = max(inFlight, bs.server.MaxInFlight())
		total.add(takeTraffic(bs.server))
	}
	b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/verdict")
	b.ReportMetric(float64(inFlight), "max-in-flight")
	total.report(b, b.N)
}
