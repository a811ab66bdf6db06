package promotion

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/internal/storagegen"
)

// Latency benchmark storage: latencyPackages packages, each with three versions in production, three others in
// staging and latencySpare in snapshot, so that every channel's package trees differ (the reconciler reads
// all of them) and each benchmark run promotes versions no earlier run touched.
const (
	latencyPackages = 100
	latencySpare    = 12
)

// latencyEnv is an env over the latency benchmark storage of packages packages; next hands out the
// snapshot versions not yet promoted, k per run.
type latencyEnv struct {
	*env
	packages int
	next     int
}

func newLatencyEnv(tb testing.TB, packages int) *latencyEnv {
	tb.Helper()
	e := newEnv(tb)
	files := func(from, to int) map[string]*githubfake.File {
		out := map[string]*githubfake.File{}
		for p := 0; p < packages; p++ {
			pkg := storagegen.PackageName(p)
			for v := from; v < to; v++ {
				for path, data := range storagegen.VersionFiles(pkg, storagegen.VersionName(v), 3, 64, uint64(p*100+v)) {
					out[storage.VersionPath(pkg, storagegen.VersionName(v))+"/"+path] = &githubfake.File{Content: data}
				}
			}
		}
		return out
	}
	for _, c := range []struct {
		branch   string
		from, to int
	}{{"production", 0, 3}, {"staging", 3, 6}, {"snapshot", 6, 6 + latencySpare}} {
		if _, err := e.repo.Commit(c.branch, "Generated storage", files(c.from, c.to)); err != nil {
			tb.Fatalf("commit %s storage: %v", c.branch, err)
		}
	}
	return &latencyEnv{env: e, packages: packages}
}

// take returns k snapshot versions (of k packages) no earlier run promoted.
func (l *latencyEnv) take(tb testing.TB, k int) []string {
	tb.Helper()
	if l.next >= latencySpare || k > l.packages {
		tb.Skipf("the benchmark storage has no spare snapshot versions left for another run (%d used)", l.next)
	}
	v := storagegen.VersionName(6 + l.next)
	l.next++
	list := make([]string, k)
	for i := range list {
		list[i] = storagegen.PackageName(i) + "@" + v
	}
	return list
}

// cold is the repository as a fresh process sees it (empty object cache) reading at most bound GitHub reads
// at once (0: storage.DefaultReadConcurrency).
func (l *latencyEnv) cold(bound int) Repo {
	cache := storage.NewObjectCache(0)
	if bound > 0 {
		cache.SetReadConcurrency(bound)
	}
	return Repo{Client: githubapi.New(l.gh, cache), Owner: owner, Name: name, Config: repoconfig.Default()}
}

// latencyMeasure times op at a round trip of rtt (and up to a tenth more, seeded jitter) and reports
// ms/op, API calls per op and the most requests in flight at once.
type latencyMeasure struct {
	elapsed  time.Duration
	calls    int
	inFlight int
	n        int
}

func (m *latencyMeasure) run(b *testing.B, l *latencyEnv, rtt time.Duration, seed int, op func() error) {
	b.Helper()
	l.fake.ResetCalls()
	l.fake.SetLatency(rtt, rtt/10, uint64(seed))
	b.StartTimer()
	start := time.Now()
	err := op()
	m.elapsed += time.Since(start)
	b.StopTimer()
	l.fake.SetLatency(0, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	m.calls += l.apiCalls()
	m.inFlight = max(m.inFlight, l.fake.MaxInFlight())
	m.n++
}

func (m *latencyMeasure) report(b *testing.B) {
	if m.n == 0 {
		return
	}
	b.ReportMetric(float64(m.elapsed.Milliseconds())/float64(m.n), "ms/op")
	b.ReportMetric(float64(m.calls)/float64(m.n), "api-calls/op")
	b.ReportMetric(float64(m.inFlight), "max-in-flight")
}

var (
	latencyRTTs   = []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond}
	latencyBounds = []int{1, 0} // reads one after another; the default bound
)

func boundName(bound int) string {
	if bound == 0 {
		return "default"
	}
	return fmt.Sprint(bound)
}

// BenchmarkPromoteLatency measures /promote of k versions (target implied: each version's lowest channel is
// snapshot, so staging) against the fake GitHub at a round trip of 0, 50 and 200 ms, cold (fresh object
// cache), with reads one after another (bound=1) and overlapped within the default bound. The time includes
// the writes (tree, commit, branch, PR), which stay one after another.
//
// Run: go test -run '^$' -bench PromoteLatency -benchtime 1x ./internal/promotion/
func BenchmarkPromoteLatency(b *testing.B) {
	latencyGrid(b, func(b *testing.B, l *latencyEnv, k, bound int) func() error {
		versions, repo := l.take(b, k), l.cold(bound)
		return func() error {
			res, err := l.svc.Promote(context.Background(), repo, PromoteRequest{Versions: refs(versions...)})
			if err == nil && (len(res.Refusals) > 0 || res.PR.Number == 0) {
				err = fmt.Errorf("promote %v: refused %+v", versions, res.Refusals)
			}
			return err
		}
	})
}

// BenchmarkFollowUpLatency measures the removal follow-up of a promotion of k versions merged into staging
// (the versions read, compared with their snapshot copies and the removal PR opened), cold, at a round trip of
// 0, 50 and 200 ms, with reads one after another (bound=1) and overlapped within the default bound.
//
// Run: go test -run '^$' -bench FollowUpLatency -benchtime 1x ./internal/promotion/
func BenchmarkFollowUpLatency(b *testing.B) {
	latencyGrid(b, func(b *testing.B, l *latencyEnv, k, bound int) func() error {
		versions := l.take(b, k)
		merged := l.pr(b, l.promoteAndMergeTo(b, versions))
		repo := l.cold(bound)
		return func() error {
			results, err := l.svc.FollowUp(context.Background(), repo, merged)
			if err == nil && (len(results) != 1 || len(results[0].Removed) != k) {
				err = fmt.Errorf("follow-up of #%d: %+v, want one removal PR of %d versions", merged.GetNumber(), results, k)
			}
			return err
		}
	})
}

// latencyGrid runs a sub-benchmark for each round trip, k (versions per operation) and read bound. Each
// iteration calls prepare, untimed, for the operation to measure, then measures it.
func latencyGrid(b *testing.B, prepare func(b *testing.B, l *latencyEnv, k, bound int) (op func() error)) {
	l := newLatencyEnv(b, latencyPackages)
	for _, rtt := range latencyRTTs {
		for _, k := range []int{1, 10} {
			for _, bound := range latencyBounds {
				b.Run(fmt.Sprintf("rtt=%dms/k=%d/bound=%s", rtt.Milliseconds(), k, boundName(bound)), func(b *testing.B) {
					b.StopTimer()
					var m latencyMeasure
					for i := 0; i < b.N; i++ {
						m.run(b, l, rtt, i+1, prepare(b, l, k, bound))
					}
					m.report(b)
				})
			}
		}
	}
}

// promoteAndMergeTo promotes versions to the channel above their lowest one and merges the PR.
func (l *latencyEnv) promoteAndMergeTo(tb testing.TB, versions []string) int {
	tb.Helper()
	res, err := l.svc.Promote(context.Background(), l.r, PromoteRequest{Versions: refs(versions...)})
	if err != nil || len(res.Refusals) > 0 {
		tb.Fatalf("promote %v: %v %+v", versions, err, res.Refusals)
	}
	if _, err := l.repo.MergePullRequest(res.PR.Number, "merge"); err != nil {
		tb.Fatalf("merge #%d: %v", res.PR.Number, err)
	}
	return res.PR.Number
}

// BenchmarkReconcileLatency measures one reconcile pass (ReconcileRemovals) over the benchmark storage, whose
// channels hold no version twice: every package tree of the three channels is read and compared, nothing is
// written. Cold, at a round trip of 0, 50 and 200 ms, with reads one after another (bound=1) and overlapped
// within the default bound.
//
// Run: go test -run '^$' -bench ReconcileLatency -benchtime 1x ./internal/promotion/
func BenchmarkReconcileLatency(b *testing.B) {
	l := newLatencyEnv(b, latencyPackages)
	for _, rtt := range latencyRTTs {
		for _, bound := range latencyBounds {
			b.Run(fmt.Sprintf("rtt=%dms/packages=%d/bound=%s", rtt.Milliseconds(), latencyPackages, boundName(bound)), func(b *testing.B) {
				b.StopTimer()
				var m latencyMeasure
				for i := 0; i < b.N; i++ {
					repo := l.cold(bound)
					m.run(b, l, rtt, i+1, func() error {
						res, err := l.svc.ReconcileRemovals(context.Background(), repo)
						if err == nil && (len(res.Removals) > 0 || len(res.Conflicts) > 0) {
							err = fmt.Errorf("reconcile of a storage without duplicates: %+v", res)
						}
						return err
					})
				}
				m.report(b)
			})
		}
	}
}
