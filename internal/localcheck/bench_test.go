package localcheck

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/storagebot/storagebot/internal/storagegen"
)

// benchRoot holds the generated benchmark repositories, built once per process and removed by TestMain.
var benchRoot struct {
	sync.Mutex
	dir   string
	repos map[int]*benchRepo
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchRoot.dir != "" {
		os.RemoveAll(benchRoot.dir)
	}
	os.Exit(code)
}

// benchRepo is a generated storage scale× the production size with two PR branches off snapshot:
//   - small: 3 versions added and one file edited in 2 more versions (k = 5 packages)
//   - large: one version of 5,000 files added (k = 1)
type benchRepo struct {
	dir   string
	files int
	base  string
	heads map[string]string
}

func benchStorage(b *testing.B, scale int) *benchRepo {
	b.Helper()
	benchRoot.Lock()
	defer benchRoot.Unlock()
	if r, ok := benchRoot.repos[scale]; ok {
		return r
	}
	if benchRoot.dir == "" {
		dir, err := os.MkdirTemp("", "storagebot-check-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchRoot.dir, benchRoot.repos = dir, map[int]*benchRepo{}
	}
	opts := storagegen.ProductionSize()
	opts.Packages *= scale
	opts.Bare = true
	start := time.Now()
	repo, err := storagegen.Generate(fmt.Sprintf("%s/x%d", benchRoot.dir, scale), opts)
	if err != nil {
		b.Fatal(err)
	}
	br := &benchRepo{dir: repo.Dir, files: opts.Packages * opts.VersionsPerPackage * opts.FilesPerVersion, heads: map[string]string{}}
	if br.base, err = repo.Head("snapshot"); err != nil {
		b.Fatal(err)
	}
	steps := []func() (string, error){
		func() (string, error) { return "", repo.Branch("small", "snapshot") },
		func() (string, error) { return repo.AddVersion("small", storagegen.PackageName(0), "9.0.0") },
		func() (string, error) { return repo.AddVersion("small", storagegen.PackageName(1), "9.0.0") },
		func() (string, error) { return repo.AddVersion("small", storagegen.PackageName(2), "9.0.0") },
		func() (string, error) {
			return repo.ModifyFile("small", "packages/"+storagegen.PackageName(3)+"/1.0.0/docs/README.md", []byte("edited\n"))
		},
		func() (string, error) {
			return repo.ModifyFile("small", "packages/"+storagegen.PackageName(4)+"/1.1.0/docs/README.md", []byte("edited\n"))
		},
		func() (string, error) { return "", repo.Branch("large", "snapshot") },
		func() (string, error) {
			ops := []storagegen.Op{storagegen.Put("packages/pkg005/9.0.0/manifest.yml", []byte(storagegen.Manifest("pkg005", "9.0.0")))}
			for i := 1; i < 5000; i++ {
				ops = append(ops, storagegen.Put(fmt.Sprintf("packages/pkg005/9.0.0/data_stream/ds%02d/fields/f%04d.yml", i/100, i), []byte("field: "+strconv.Itoa(i)+"\n")))
			}
			return repo.Commit("large", "Add pkg005 9.0.0 with 5,000 files", ops...)
		},
	}
	for _, step := range steps {
		if _, err := step(); err != nil {
			b.Fatal(err)
		}
	}
	for _, h := range []string{"small", "large"} {
		if br.heads[h], err = repo.Head(h); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("generated %d-file storage (x%d) in %v", br.files, scale, time.Since(start).Round(time.Millisecond))
	benchRoot.repos[scale] = br
	return br
}

// BenchmarkCheck times `storagebot check` against `git diff-tree -r` on the same two commits of a
// production-sized storage (and 10× that with STORAGEBOT_BENCH_10X=1). Each iteration runs both; the
// figures that matter are reported per operation: check-ms, diff-tree-ms and their ratio.
func BenchmarkCheck(b *testing.B) {
	scales := []int{1}
	if os.Getenv("STORAGEBOT_BENCH_10X") != "" {
		scales = append(scales, 10)
	}
	for _, scale := range scales {
		for _, pr := range []string{"small", "large"} {
			b.Run(fmt.Sprintf("storage=x%d/pr=%s", scale, pr), func(b *testing.B) {
				repo := benchStorage(b, scale)
				head := repo.heads[pr]
				args := []string{"--repo", repo.dir, "--channel", "snapshot", "--base", repo.base, "--head", head, "--format", "json"}
				var checkTime, diffTime time.Duration
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					start := time.Now()
					if code := Run(context.Background(), args, io.Discard, io.Discard); code == ExitUsage {
						b.Fatalf("check failed with status %d", code)
					}
					checkTime += time.Since(start)

					start = time.Now()
					cmd := exec.Command("git", "-C", repo.dir, "diff-tree", "-r", repo.base, head)
					cmd.Stdout = io.Discard
					if err := cmd.Run(); err != nil {
						b.Fatal(err)
					}
					diffTime += time.Since(start)
				}
				n := float64(b.N)
				b.ReportMetric(float64(checkTime.Microseconds())/1000/n, "check-ms/op")
				b.ReportMetric(float64(diffTime.Microseconds())/1000/n, "diff-tree-ms/op")
				b.ReportMetric(float64(checkTime)/float64(diffTime), "check/diff-tree")
				b.ReportMetric(float64(repo.files), "storage-files")
			})
		}
	}
}
