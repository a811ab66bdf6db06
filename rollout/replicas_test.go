package rollout

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/rollout/rollouttest"
)

// barrier holds every caller of wait until n have arrived, so two replicas are made to read the same state
// and both decide to build before either writes.
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	<-b.all
}

// racingClient is one replica's GitHub seam whose first deployment creation waits for the other replica's.
type racingClient struct {
	*Client
	race *barrier
	once sync.Once
}

func (r *racingClient) CreateDeployment(ctx context.Context, environment, ref string, p Payload) (Deployment, error) {
	r.once.Do(r.race.wait)
	return r.Client.CreateDeployment(ctx, environment, ref, p)
}

// TestTwoReplicasDispatchOneBuild runs two controllers — two replicas, each with its own client and caches —
// against one fake GitHub. Both see the same merge at the same moment and both claim its build; GitHub's
// ordering of the claims decides, so exactly one build is dispatched, then one for each dependent.
func TestTwoReplicasDispatchOneBuild(t *testing.T) {
	for _, via := range []string{"pass", "rebuild"} {
		t.Run(via, func(t *testing.T) {
			ctx := context.Background()
			st := rollouttest.NewStorage(t, rollouttest.Quiet, []string{"production", "staging"},
				map[string]string{".github/workflows/build.yml": rollouttest.BuildWorkflow()})
			repo, gh := st.Repo, st.GH
			cfg := rollouttest.Config(t, `
distributions:
  - {name: production, image: r/p, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
  - {name: staging, image: r/s, build: {workflow: build.yml}, deploy: {workflow: deploy.yml}}
`)
			race := newBarrier(2)
			var replicas [2]Repo
			var ctrls [2]*Controller
			for i := range replicas {
				replicas[i] = Repo{Config: cfg, GitHub: &racingClient{race: race,
					Client: &Client{GH: gh, Owner: "storage-org", Repo: "package-storage", States: NewStateCache()}}}
				ctrls[i] = &Controller{Target: func(GitHub, repoconfig.Distribution) (Target, error) { return instantTarget{}, nil }}
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var outcomes []string
			for i := range replicas {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					var out string
					if via == "rebuild" {
						_, err := ctrls[i].Rebuild(ctx, replicas[i], "production")
						out = "dispatched"
						if err != nil {
							out = err.Error()
						}
					} else {
						steps, err := ctrls[i].Pass(ctx, replicas[i])
						if err != nil {
							t.Errorf("replica %d: %v", i, err)
							return
						}
						out = string(steps[0].Action)
					}
					mu.Lock()
					outcomes = append(outcomes, out)
					mu.Unlock()
				}(i)
			}
			wg.Wait()
			builds := buildRuns(repo)
			if len(builds) != 1 {
				t.Fatalf("%d builds dispatched by two replicas (%v), want 1; outcomes %q", len(builds), builds, outcomes)
			}
			var dispatched, busy int
			for _, o := range outcomes {
				switch {
				case o == "dispatched":
					dispatched++
				case o == string(ActionBuilding) || strings.Contains(o, "already builds"):
					busy++
				}
			}
			if dispatched != 1 || busy != 1 {
				t.Errorf("outcomes %q, want one replica dispatching and the other finding its claim", outcomes)
			}
			// The losing claim is retired, so the environment shows one build in flight.
			var live int
			for _, d := range repo.Deployments() {
				if d.Environment == "production" && (len(d.States) == 0 || d.States[len(d.States)-1] != StateInactive) {
					live++
				}
			}
			if live != 1 {
				t.Errorf("%d production deployments not inactive, want the one claim that builds: %+v", live, repo.Deployments())
			}

			// The build succeeds: both replicas pass again at once; production goes live once and staging is
			// built once.
			if err := repo.CompleteRun(builds[0].ID, "success"); err != nil {
				t.Fatal(err)
			}
			for i := range replicas {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					if _, err := ctrls[i].Pass(ctx, replicas[i]); err != nil {
						t.Errorf("replica %d: %v", i, err)
					}
				}(i)
			}
			wg.Wait()
			for i := 0; i < 2; i++ {
				if _, err := ctrls[i].Pass(ctx, replicas[i]); err != nil {
					t.Fatalf("replica %d: %v", i, err)
				}
			}
			var names []string
			for _, r := range buildRuns(repo) {
				names = append(names, r.Inputs["distribution"])
			}
			if strings.Join(names, ",") != "production,staging" {
				t.Errorf("builds dispatched = %v, want production then staging, once each", names)
			}
		})
	}
}

func buildRuns(repo *githubfake.Repo) []githubfake.WorkflowRun {
	var out []githubfake.WorkflowRun
	for _, r := range repo.WorkflowRuns() {
		if strings.HasPrefix(r.DisplayTitle, "storagebot build ") {
			out = append(out, r)
		}
	}
	return out
}

// instantTarget is a rollout that is done at once.
type instantTarget struct{}

func (instantTarget) Rollout(context.Context, repoconfig.Distribution, int64, string, time.Time) error {
	return nil
}
