package promotion

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkPromote promotes a fresh version of a package with the given file count from snapshot to staging
// per iteration, reporting GitHub API calls per promotion (authentication aside) and blobs uploaded.
func BenchmarkPromote(b *testing.B) {
	for _, files := range []int{5, 700} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			e := newEnv(b)
			versions := make([]string, b.N)
			for i := range versions {
				versions[i] = fmt.Sprintf("foo@1.0.%d", i)
				e.put(b, "snapshot", files, "", versions[i])
			}
			e.fake.ResetCalls()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := e.svc.Promote(context.Background(), e.r, PromoteRequest{Versions: refs(versions[i]), Target: "staging"})
				if err != nil || len(res.Refusals) > 0 {
					b.Fatalf("Promote %s: %v %v", versions[i], err, res.Refusals)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(e.apiCalls())/float64(b.N), "api-calls/op")
			b.ReportMetric(float64(e.fake.Calls("POST /repos/{owner}/{repo}/git/blobs"))/float64(b.N), "blob-uploads/op")
		})
	}
}
