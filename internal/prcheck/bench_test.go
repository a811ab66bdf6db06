package prcheck

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/ghclient"
	"github.com/storagebot/storagebot/internal/githubapi"
	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoctx"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/internal/storagegen"
	"github.com/storagebot/storagebot/internal/testkit"
	"github.com/storagebot/storagebot/policy"
)

// The benchmarks in this file measure what one PR evaluation costs in GitHub API calls (docs/architecture.md §8): Service.CheckPR
// cold (fresh object cache and client), warm (the same Service, cache and client after a new push to the PR), and
// the naive baseline a simple bot would use, all counted by the fake GitHub on the same PRs. They report figures and
// never fail on a target; docs/benchmarks.md holds the results and the command that produced them.

var callBreakdown = flag.Bool("prcheck.breakdown", false, "log the GitHub API calls per route of every benchmark case")

const (
	benchOwner = "storage-org"
	benchRepo  = "package-storage"
	benchBot   = "storagebot[bot]"
	// benchVersionsPerPackage is how many versions each generated package has on snapshot; staging holds all
	// but the newest, production all but the two newest, so each channel has trees of its own.
	benchVersionsPerPackage = 10
	// benchNewVersion is the version every PR adds: above every generated one (1.0.0 … 1.9.0).
	benchNewVersion = "2.0.0"

	routeAccessToken = "POST /app/installations/{installation_id}/access_tokens"
)

// benchConfig is the repository config on the default branch: the built-in channels, spelled out as a real
// installation would.
const benchConfig = `channels:
  - {name: snapshot, branch: snapshot}
  - {name: staging, branch: staging}
  - {name: production, branch: production}
fix_titles: false
`

// benchStorage is a fake GitHub holding a generated storage repository.
type benchStorage struct {
	server *githubfake.Server
	repo   *githubfake.Repo
	// packages is the number of generated packages, each with benchVersionsPerPackage versions on snapshot.
	packages int
}

// newBenchStorage starts a fake GitHub (webhooks recorded, never sent) holding a storage of about `versions`
// versions of 3 small files each, spread over versions/10 packages. Its default branch, production, holds the
// repository config.
func newBenchStorage(tb testing.TB, versions int) *benchStorage {
	tb.Helper()
	s := githubfake.New(githubfake.Options{})
	tb.Cleanup(s.Close)
	repo := s.CreateRepo(benchOwner, benchRepo, "production")
	bs := &benchStorage{server: s, repo: repo, packages: versions / benchVersionsPerPackage}

	files := map[string]*githubfake.File{
		".github/storagebot.yml": {Content: []byte(benchConfig)},
		"Dockerfile":             {Content: []byte(storagegen.Dockerfile("v1.15.0"))},
		"go.mod":                 {Content: []byte(storagegen.GoMod("v1.15.0"))},
	}
	for p := 0; p < bs.packages; p++ {
		for v := 0; v < benchVersionsPerPackage-2; v++ {
			addVersion(files, storagegen.PackageName(p), storagegen.VersionName(v), 3, uint64(p*benchVersionsPerPackage+v))
		}
	}
	head, err := repo.Commit("production", "Generated storage", files)
	if err != nil {
		tb.Fatalf("commit production storage: %v", err)
	}
	// staging = production + each package's next version; snapshot = staging + the one after.
	for i, branch := range []string{"staging", "snapshot"} {
		if err := repo.CreateBranch(branch, head); err != nil {
			tb.Fatal(err)
		}
		v := storagegen.VersionName(benchVersionsPerPackage - 2 + i)
		files := map[string]*githubfake.File{}
		for p := 0; p < bs.packages; p++ {
			addVersion(files, storagegen.PackageName(p), v, 3, uint64(p*benchVersionsPerPackage+benchVersionsPerPackage-2+i))
		}
		if head, err = repo.Commit(branch, "Add "+v+" of every package", files); err != nil {
			tb.Fatalf("commit %s storage: %v", branch, err)
		}
	}
	return bs
}

// addVersion puts the generated files of pkg@version into files.
func addVersion(files map[string]*githubfake.File, pkg, version string, count int, seed uint64) {
	for path, data := range storagegen.VersionFiles(pkg, version, count, 64, seed) {
		files[storage.VersionPath(pkg, version)+"/"+path] = &githubfake.File{Content: data}
	}
}

// benchPR is an open PR to snapshot adding benchNewVersion to k packages, each version with f files.
type benchPR struct {
	number int
	k, f   int
	// pushes counts the pushes made to the PR after it was opened.
	pushes int
}

// openPR opens the PR of one benchmark case on its own branch.
func (bs *benchStorage) openPR(tb testing.TB, k, f int) *benchPR {
	tb.Helper()
	branch := fmt.Sprintf("add-k%d-f%d", k, f)
	if err := bs.repo.CreateBranch(branch, bs.repo.BranchSHA("snapshot")); err != nil {
		tb.Fatal(err)
	}
	files := map[string]*githubfake.File{}
	for p := 0; p < k; p++ {
		addVersion(files, storagegen.PackageName(p), benchNewVersion, f, uint64(1_000_000+p))
	}
	if _, err := bs.repo.Commit(branch, fmt.Sprintf("Add %d packages", k), files); err != nil {
		tb.Fatalf("commit PR branch %s: %v", branch, err)
	}
	pr, err := bs.repo.OpenPullRequest(githubfake.PROptions{
		Head: branch, Base: "snapshot", User: "author",
		Title: fmt.Sprintf("[snapshot] Add %s of %d packages (%d files each)", benchNewVersion, k, f),
	})
	if err != nil {
		tb.Fatalf("open PR from %s: %v", branch, err)
	}
	return &benchPR{number: pr.Number, k: k, f: f}
}

// push edits docs/README.md of the first `versions` versions the PR adds, as a follow-up commit would.
func (bs *benchStorage) push(tb testing.TB, pr *benchPR, versions int) {
	tb.Helper()
	pr.pushes++
	files := map[string]*githubfake.File{}
	for p := 0; p < versions; p++ {
		path := storage.VersionPath(storagegen.PackageName(p), benchNewVersion) + "/docs/README.md"
		files[path] = &githubfake.File{Content: []byte(fmt.Sprintf("# %s\n\nRevision %d.\n", storagegen.PackageName(p), pr.pushes))}
	}
	if _, err := bs.repo.PushToPullRequest(pr.number, fmt.Sprintf("Revision %d", pr.pushes), files); err != nil {
		tb.Fatalf("push to #%d: %v", pr.number, err)
	}
}

// productionClient is an installation client built the way `serve` builds it: ghclient's creator with the
// ETag-revalidating HTTP cache, a fresh cache per call.
func (bs *benchStorage) productionClient(tb testing.TB) *github.Client {
	return testkit.ServeClient(tb, bs.server, ghclient.Options{UserAgent: "storagebot-bench"})
}

// plainClient is an installation client with no cache at all, as a simple bot would have.
func (bs *benchStorage) plainClient(tb testing.TB) *github.Client {
	tb.Helper()
	c, err := bs.server.InstallationClient()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// fetchPR reads the PR as a webhook would deliver it. It is not part of an evaluation.
func fetchPR(tb testing.TB, client *github.Client, number int) *github.PullRequest {
	tb.Helper()
	pr, _, err := client.PullRequests.Get(context.Background(), benchOwner, benchRepo, number)
	if err != nil {
		tb.Fatalf("get PR #%d: %v", number, err)
	}
	return pr
}

// benchAPIs are the two ways of reading git data measured side by side: GraphQL batch reads (the default)
// and REST alone (one object a call, the fallback).
var benchAPIs = []string{"graphql", "rest"}

func newBenchService(api string) *Service {
	cache := storage.NewObjectCache(0)
	cache.SetGraphQL(api != "rest")
	return &Service{
		Cache:    cache,
		BotLogin: func(context.Context) (string, error) { return benchBot, nil },
	}
}

// evaluate runs one evaluation and checks it judged the change rather than failing to read it.
func evaluate(tb testing.TB, svc *Service, client *github.Client, pr *github.PullRequest) Outcome {
	tb.Helper()
	// The repository context is built here as a handler builds it, so the figures count the config read.
	ctx := context.Background()
	gh := githubapi.New(client, svc.Cache)
	repo, err := repoctx.Load(ctx, gh, pr.GetBase().GetRepo())
	if err != nil {
		tb.Fatalf("repository context of #%d: %v", pr.GetNumber(), err)
	}
	out, err := svc.CheckPR(ctx, gh, repo, pr)
	if err != nil {
		tb.Fatalf("evaluate #%d: %v", pr.GetNumber(), err)
	}
	return out
}

// traffic is the GitHub API traffic of some evaluations as the fake counted it.
type traffic struct {
	// calls are the requests answered other than 304: the ones that cost rate limit. Installation-token
	// exchanges are left out (one an hour per installation, whatever the load).
	calls int
	// notModified are revalidations answered 304, free on GitHub.
	notModified int
	// byRoute is calls and notModified per route, for the breakdown.
	byRoute map[string][2]int
}

// takeTraffic reads the fake's counters and zeroes them.
func takeTraffic(s *githubfake.Server) traffic {
	t := traffic{byRoute: map[string][2]int{}}
	for route, n := range s.CallCounts() {
		if route == routeAccessToken || n == 0 {
			continue
		}
		nm := s.NotModified(route)
		t.calls += n - nm
		t.notModified += nm
		t.byRoute[route] = [2]int{n - nm, nm}
	}
	s.ResetCalls()
	return t
}

func (t *traffic) add(o traffic) {
	t.calls += o.calls
	t.notModified += o.notModified
	if t.byRoute == nil {
		t.byRoute = map[string][2]int{}
	}
	for route, c := range o.byRoute {
		sum := t.byRoute[route]
		t.byRoute[route] = [2]int{sum[0] + c[0], sum[1] + c[1]}
	}
}

// report publishes the per-evaluation figures of n evaluations and, with -prcheck.breakdown, the routes.
func (t traffic) report(b *testing.B, n int) {
	b.ReportMetric(float64(t.calls)/float64(n), "api-calls/op")
	b.ReportMetric(float64(t.notModified)/float64(n), "304s/op")
	if !*callBreakdown {
		return
	}
	routes := make([]string, 0, len(t.byRoute))
	for r := range t.byRoute {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	var sb strings.Builder
	for _, r := range routes {
		c := t.byRoute[r]
		fmt.Fprintf(&sb, "\n  %-70s %6.1f calls %6.1f 304s", r, float64(c[0])/float64(n), float64(c[1])/float64(n))
	}
	b.Logf("per evaluation:%s", sb.String())
}

// naiveCheck is the baseline: what a simple bot reads to judge a PR. It lists the PR's files (100 a page; GitHub
// stops at 3,000 files, so a bigger PR is silently judged on part of its change), derives the changed versions
// from their paths, and looks each one up in every other channel through the contents API. It returns the
// versions it saw, as "name@version", in path order.
func naiveCheck(ctx context.Context, client *github.Client, number int, others []string) ([]string, error) {
	var versions []string
	seen := map[string]bool{}
	opts := &github.ListOptions{PerPage: 100}
	for {
		files, resp, err := client.PullRequests.ListFiles(ctx, benchOwner, benchRepo, number, opts)
		if err != nil {
			return nil, fmt.Errorf("list files of #%d (page %d): %w", number, opts.Page, err)
		}
		for _, f := range files {
			// packages/<name>/<version>/<file>: what a naive bot parses out of each listed path.
			parts := strings.SplitN(f.GetFilename(), "/", 4)
			ok := len(parts) == 4 && parts[0] == storage.PackagesDir && parts[1] != "" && parts[2] != ""
			if !ok {
				continue
			}
			if key := parts[1] + "@" + parts[2]; !seen[key] {
				seen[key] = true
				versions = append(versions, key)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	for _, key := range versions {
		pkg, version, _ := strings.Cut(key, "@")
		for _, channel := range others {
			_, _, resp, err := client.Repositories.GetContents(ctx, benchOwner, benchRepo, storage.VersionPath(pkg, version),
				&github.RepositoryContentGetOptions{Ref: channel})
			if err != nil && (resp == nil || resp.StatusCode != http.StatusNotFound) {
				return nil, fmt.Errorf("look up %s in %s: %w", key, channel, err)
			}
		}
	}
	return versions, nil
}

// benchCases are the PR shapes measured: k packages touched, f files in each added version.
var benchCases = []struct{ k, f int }{
	{1, 5}, {1, 500}, {5, 5}, {5, 500}, {10, 5}, {10, 500}, {100, 5},
}

// BenchmarkCheckPR reports the GitHub API calls of one storage-policy evaluation (api-calls/op, and revalidations
// answered 304 as 304s/op) for PRs adding a version to k packages, on storages of S versions: cold, warm (after a
// push editing every version of the PR, or only one) and the naive baseline (which also reports the changed
// versions it never saw, missed-versions/op). Run with -args -prcheck.breakdown -test.v for the calls per route.
func BenchmarkCheckPR(b *testing.B) {
	for _, size := range []int{200, 2000} {
		b.Run(fmt.Sprintf("S=%d", size), func(b *testing.B) {
			bs := newBenchStorage(b, size)
			for _, c := range benchCases {
				if c.k > bs.packages {
					continue // the PR would add packages, not versions
				}
				pr := bs.openPR(b, c.k, c.f)
				b.Run(fmt.Sprintf("k=%d/F=%d", c.k, c.f), func(b *testing.B) {
					for _, api := range benchAPIs {
						b.Run("cold/api="+api, func(b *testing.B) { benchCold(b, bs, pr, api) })
						b.Run("warm/api="+api, func(b *testing.B) { benchWarm(b, bs, pr, pr.k, api) })
						b.Run("warm-one/api="+api, func(b *testing.B) { benchWarm(b, bs, pr, 1, api) })
					}
					b.Run("naive", func(b *testing.B) { benchNaive(b, bs, pr) })
				})
			}
		})
	}
}

// benchCold evaluates the PR with nothing cached: a fresh Service (object cache) and a fresh client each time.
func benchCold(b *testing.B, bs *benchStorage, pr *benchPR, api string) {
	measureEvaluations(b, bs, pr, func() (*Service, *github.Client) { return newBenchService(api), bs.productionClient(b) })
}

// measureEvaluations times b.N evaluations of the PR, each with the service and client next returns (set up
// outside the timer, as is reading the PR), and reports the GitHub traffic of the evaluations alone.
func measureEvaluations(b *testing.B, bs *benchStorage, pr *benchPR, next func() (*Service, *github.Client)) {
	var total traffic
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		svc, client := next()
		ghPR := fetchPR(b, client, pr.number)
		takeTraffic(bs.server)
		b.StartTimer()
		evaluate(b, svc, client, ghPR)
		b.StopTimer()
		total.add(takeTraffic(bs.server))
	}
	total.report(b, b.N)
}

// benchWarm evaluates the PR once to fill the caches, then measures re-evaluations, each after a new push that
// edits `edited` of the PR's versions: all of them ("warm", the upper bound) or one ("warm-one", a typical fix-up).
func benchWarm(b *testing.B, bs *benchStorage, pr *benchPR, edited int, api string) {
	svc, client := newBenchService(api), bs.productionClient(b)
	evaluate(b, svc, client, fetchPR(b, client, pr.number))
	measureEvaluations(b, bs, pr, func() (*Service, *github.Client) {
		bs.push(b, pr, edited)
		return svc, client
	})
}

// benchNaive runs the naive baseline on the PR.
func benchNaive(b *testing.B, bs *benchStorage, pr *benchPR) {
	client := bs.plainClient(b)
	fetchPR(b, client, pr.number) // the installation token, outside the measure
	var total traffic
	missed := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		takeTraffic(bs.server)
		b.StartTimer()
		seen, err := naiveCheck(context.Background(), client, pr.number, []string{"staging", "production"})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		missed += pr.k - len(seen)
		total.add(takeTraffic(bs.server))
	}
	total.report(b, b.N)
	b.ReportMetric(float64(missed)/float64(b.N), "missed-versions/op")
}

// TestBenchmarkScenarios checks what the benchmarks measure is a real evaluation: on a small storage, CheckPR
// cold and warm judges every added version (and a pushed revision), and the naive baseline sees every changed
// version below GitHub's 3,000-file listing limit but not above it.
func TestBenchmarkScenarios(t *testing.T) {
	bs := newBenchStorage(t, 40)
	tests := []struct {
		name            string
		k, f            int
		wantNaiveMissed int
	}{
		{name: "small PR", k: 2, f: 5},
		{name: "past the files listing limit", k: 7, f: 500, wantNaiveMissed: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pr := bs.openPR(t, tc.k, tc.f)
			var wantChanges []string
			for p := 0; p < tc.k; p++ {
				wantChanges = append(wantChanges, storagegen.PackageName(p)+"@"+benchNewVersion)
			}
			// Both ways of reading git data judge the same: GraphQL batch reads and REST alone.
			for _, api := range benchAPIs {
				svc, client := newBenchService(api), bs.productionClient(t)
				for pass := range 2 {
					if pass > 0 {
						bs.push(t, pr, tc.k)
					}
					ghPR := fetchPR(t, client, pr.number)
					bs.server.ResetCalls()
					out := evaluate(t, svc, client, ghPR)
					if n := bs.server.Calls(githubfake.GraphQLRoute); (n > 0) != (api == "graphql") {
						t.Errorf("%s pass %d: %d GraphQL calls", api, pass, n)
					}
					if out.Skipped || out.Channel != "snapshot" || out.Conclusion != policy.ConclusionSuccess {
						t.Errorf("%s pass %d: outcome skipped=%v channel=%q conclusion=%q findings=%v; want a successful snapshot check",
							api, pass, out.Skipped, out.Channel, out.Conclusion, out.Findings)
					}
					gh := githubapi.New(client, svc.Cache)
					repo, err := repoctx.Load(context.Background(), gh, ghPR.GetBase().GetRepo())
					if err != nil {
						t.Fatal(err)
					}
					change, ok, err := svc.ChangeOf(context.Background(), gh, repo, ghPR)
					if err != nil || !ok {
						t.Fatalf("pass %d: change: ok=%v err=%v", pass, ok, err)
					}
					var got []string
					for _, c := range change.Input.Changes {
						if c.Kind != policy.Added || len(c.Paths) != tc.f {
							t.Errorf("pass %d: %s@%s is %v with %d paths; want added with %d", pass, c.Package, c.Version, c.Kind, len(c.Paths), tc.f)
						}
						got = append(got, c.Package+"@"+c.Version)
					}
					if diff := cmp.Diff(wantChanges, got); diff != "" {
						t.Errorf("%s pass %d: changes (-want +got):\n%s", api, pass, diff)
					}
				}
			}
			seen, err := naiveCheck(context.Background(), bs.plainClient(t), pr.number, []string{"staging", "production"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantChanges[:tc.k-tc.wantNaiveMissed], seen); diff != "" {
				t.Errorf("versions the naive check saw (-want +got):\n%s", diff)
			}
		})
	}
}
