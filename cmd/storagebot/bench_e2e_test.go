package main

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCommentToPromotionPR measures, through serve and the fake GitHub over loopback, the time from a
// `/promote` comment being delivered to the promotion PR existing, and the API calls the bot made for it.
func BenchmarkCommentToPromotionPR(b *testing.B) {
	h := newHarness(b)
	h.repo.SetPermission("writer", "write")
	for i := 0; i < b.N; i++ {
		h.commit("snapshot", "seed", pkgFiles("foo", fmt.Sprintf("1.0.%d", i), 20, "v"))
	}
	issue := h.repo.OpenIssue("promotions", "", "writer")
	h.settle()
	h.fake.ResetCalls()
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		version := fmt.Sprintf("1.0.%d", i)
		start := time.Now()
		if _, err := h.repo.Comment(issue, "writer", "/promote foo@"+version); err != nil {
			b.Fatal(err)
		}
		branch := "storagebot/promote/staging/foo-" + version
		h.waitFor("promotion PR", func() bool { return len(h.pullsInto("staging", branch)) == 1 })
		total += time.Since(start)
		h.settle()
	}
	b.StopTimer()
	calls := 0
	for _, n := range h.fake.CallCounts() {
		calls += n
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-comment-to-PR")
	b.ReportMetric(float64(calls)/float64(b.N), "api-calls/op")
	b.ReportMetric(float64(h.fake.Calls("POST /repos/{owner}/{repo}/git/blobs"))/float64(b.N), "blob-uploads/op")
}
