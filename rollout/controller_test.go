package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/rollout/rollouttest"
)

const testConfig = `
distributions:
  - name: production
    image: ghcr.io/o/production
    build: {workflow: build.yml}
    deploy: {kubernetes: {namespace: registry, deployment: production}, timeout: %s}
    verify: {registry: "%s", timeout: 2s}
  - name: staging
    image: ghcr.io/o/staging
    build: {workflow: build.yml}
    deploy: {kubernetes: {namespace: registry, deployment: staging}, timeout: %s}
    verify: {registry: "%s", timeout: 2s}
  - name: snapshot
    image: ghcr.io/o/snapshot
    build: {workflow: build.yml}
    deploy: {kubernetes: {namespace: registry, deployment: snapshot}, timeout: %s}
`

// env is one storage repository with a Kubernetes cluster and a registry, driven pass by pass.
type env struct {
	t        *testing.T
	gh       *memGitHub
	kube     *fake.Clientset
	cfg      *repoconfig.Config
	served   map[string]bool // "name/version" the registry serves
	servedMu sync.Mutex
	ready    map[string]bool // Deployments whose new pods become available
	stuck    map[string]bool // Deployments that exceed their progress deadline
	kubeMu   sync.Mutex
	ctrl     *Controller
}

func newEnv(t *testing.T, deployTimeout string) *env {
	t.Helper()
	e := &env{t: t, gh: newMemGitHub("production", "staging", "snapshot"), served: map[string]bool{},
		ready: map[string]bool{"production": true, "staging": true, "snapshot": true}, stuck: map[string]bool{}}
	e.gh.workflows["build.yml"] = true
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.servedMu.Lock()
		ok := e.served[strings.Trim(strings.TrimPrefix(r.URL.Path, "/package/"), "/")]
		e.servedMu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(reg.Close)
	text := testConfig
	for _, v := range []string{deployTimeout, reg.URL, deployTimeout, reg.URL, deployTimeout} {
		text = strings.Replace(text, "%s", v, 1)
	}
	e.cfg = rollouttest.Config(t, text)
	var objs []*appsv1.Deployment
	for _, n := range []string{"production", "staging", "snapshot"} {
		two := int32(2)
		objs = append(objs, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "registry", Generation: 1},
			Spec:   appsv1.DeploymentSpec{Replicas: &two},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}})
	}
	e.kube = fake.NewSimpleClientset(objs[0], objs[1], objs[2])
	bumpGenerationOnPatch(e.kube)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.playDeploymentController(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.ctrl = &Controller{
		Target: func(gh GitHub, d repoconfig.Distribution) (Target, error) {
			return &Kubernetes{Client: typedDeployments{e.kube}, Poll: 2 * time.Millisecond}, nil
		},
		Registry: &HTTPRegistry{FirstDelay: 2 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
	}
	return e
}

// bumpGenerationOnPatch makes the fake clientset apply a strategic merge patch to a Deployment as the API
// server does: a changed spec gets a new generation, which the Deployment controller has not observed yet.
func bumpGenerationOnPatch(c *fake.Clientset) {
	c.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pa := a.(k8stesting.PatchAction)
		gvr := appsv1.SchemeGroupVersion.WithResource("deployments")
		obj, err := c.Tracker().Get(gvr, pa.GetNamespace(), pa.GetName())
		if err != nil {
			return true, nil, err
		}
		cur := obj.(*appsv1.Deployment)
		orig, err := json.Marshal(cur)
		if err != nil {
			return true, nil, err
		}
		patched, err := strategicpatch.StrategicMergePatch(orig, pa.GetPatch(), appsv1.Deployment{})
		if err != nil {
			return true, nil, err
		}
		var next appsv1.Deployment
		if err := json.Unmarshal(patched, &next); err != nil {
			return true, nil, err
		}
		if !equality.Semantic.DeepEqual(cur.Spec, next.Spec) {
			next.Generation = cur.Generation + 1
		}
		return true, &next, c.Tracker().Update(gvr, &next, pa.GetNamespace())
	})
}

// playDeploymentController stands in for kube-controller-manager and the kubelet: a restarted Deployment
// gets a new generation, and its replicas become available unless the test says otherwise.
func (e *env) playDeploymentController(ctx context.Context) {
	seen := map[string]string{}
	for ctx.Err() == nil {
		list, err := e.kube.AppsV1().Deployments("registry").List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range list.Items {
				d := list.Items[i]
				id := d.Spec.Template.Annotations[AnnotationDeployment]
				if id == "" || seen[d.Name] == id {
					continue
				}
				seen[d.Name] = id
				e.kubeMu.Lock()
				ready, stuck := e.ready[d.Name], e.stuck[d.Name]
				e.kubeMu.Unlock()
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 2}
				if ready {
					d.Status.AvailableReplicas = 2
				}
				if stuck {
					d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing,
						Status: "False", Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "x" has timed out progressing.`}}
				}
				_, _ = e.kube.AppsV1().Deployments("registry").Update(ctx, &d, metav1.UpdateOptions{})
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		}
	}
}

func (e *env) serve(versions ...string) {
	e.servedMu.Lock()
	defer e.servedMu.Unlock()
	for _, v := range versions {
		e.served[strings.Replace(v, "@", "/", 1)] = true
	}
}

// pass runs one controller pass (as a fresh process would when restart is true) and returns the actions.
func (e *env) pass() map[string]Action {
	e.t.Helper()
	steps, err := e.ctrl.Pass(context.Background(), Repo{GitHub: e.gh, Config: e.cfg})
	if err != nil {
		e.t.Fatalf("pass: %v", err)
	}
	out := map[string]Action{}
	for _, s := range steps {
		out[s.Distribution] = s.Action
	}
	return out
}

// settle deploys the current state: it runs passes, finishing every build run successfully, until a pass
// finds every distribution up to date.
func (e *env) settle() {
	e.t.Helper()
	for i := 0; i < 20; i++ {
		got := e.pass()
		if got["production"] == ActionUpToDate && got["staging"] == ActionUpToDate && got["snapshot"] == ActionUpToDate {
			return
		}
		e.gh.finishRuns("build.yml", "success")
	}
	e.t.Fatalf("distributions did not settle in 20 passes")
}

func TestControllerProductionMergeRollsOutTheChainOnceInOrder(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle() // the initial deployments
	e.gh.mu.Lock()
	e.gh.dispatchs = nil
	e.gh.mu.Unlock()

	e.gh.merge(7, "production", Version{"apm", "8.1.0"})
	e.serve("apm@8.1.0")
	if diff := cmp.Diff(map[string]Action{"production": ActionDispatched, "staging": ActionWaiting, "snapshot": ActionWaiting}, e.pass()); diff != "" {
		t.Fatalf("first pass after the merge (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]Action{"production": ActionBuilding, "staging": ActionWaiting, "snapshot": ActionWaiting}, e.pass()); diff != "" {
		t.Fatalf("pass while building (-want +got):\n%s", diff)
	}
	e.gh.finishRuns("build.yml", "success")
	if diff := cmp.Diff(map[string]Action{"production": ActionDeployed, "staging": ActionDispatched, "snapshot": ActionWaiting}, e.pass()); diff != "" {
		t.Fatalf("pass after the production build (-want +got):\n%s", diff)
	}
	e.gh.finishRuns("build.yml", "success")
	if diff := cmp.Diff(map[string]Action{"production": ActionUpToDate, "staging": ActionDeployed, "snapshot": ActionDispatched}, e.pass()); diff != "" {
		t.Fatalf("pass after the staging build (-want +got):\n%s", diff)
	}
	e.gh.finishRuns("build.yml", "success")
	e.pass()
	if diff := cmp.Diff(map[string]Action{"production": ActionUpToDate, "staging": ActionUpToDate, "snapshot": ActionUpToDate}, e.pass()); diff != "" {
		t.Fatalf("final pass (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"production", "staging", "snapshot"}, e.gh.builds()); diff != "" {
		t.Errorf("builds dispatched (-want +got):\n%s", diff)
	}
	staging, states := e.gh.lastState("staging")
	prod, _ := e.gh.lastState("production")
	if staging.Payload.BaseDeployment != prod.ID || staging.Payload.BaseImage != prod.Payload.Image {
		t.Errorf("staging built on deployment %d (%s), want production's %d (%s)", staging.Payload.BaseDeployment,
			staging.Payload.BaseImage, prod.ID, prod.Payload.Image)
	}
	if diff := cmp.Diff([]string{StateInProgress, StateSuccess}, states); diff != "" {
		t.Errorf("staging deployment states (-want +got):\n%s", diff)
	}
	comments := e.gh.commentsOn(7)
	if len(comments) != 1 || !strings.Contains(comments[0], "Now live on **production**") || !strings.Contains(comments[0], "apm@8.1.0") {
		t.Errorf("comments on #7 = %q, want one saying apm@8.1.0 is live on production", comments)
	}
	dep, err := e.kube.AppsV1().Deployments("registry").Get(context.Background(), "snapshot", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Template.Annotations[AnnotationRestartedAt] == "" {
		t.Errorf("snapshot Deployment was not restarted: annotations %v", dep.Spec.Template.Annotations)
	}
}

func TestControllerConcurrentMergesRebuildEachDependentOnce(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.mu.Lock()
	e.gh.dispatchs = nil
	e.gh.mu.Unlock()

	e.gh.merge(8, "production", Version{"apm", "8.2.0"})
	e.gh.merge(9, "staging", Version{"nginx", "1.2.0"})
	e.gh.merge(10, "production", Version{"apm", "8.3.0"})
	e.serve("apm@8.2.0", "apm@8.3.0", "nginx@1.2.0")
	e.settle()
	if diff := cmp.Diff([]string{"production", "staging", "snapshot"}, e.gh.builds()); diff != "" {
		t.Errorf("builds dispatched (-want +got):\n%s", diff)
	}
	// Each PR is told the versions it brought, not every version of the deployment.
	for n, want := range map[int]string{8: "apm@8.2.0", 10: "apm@8.3.0"} {
		other := map[int]string{8: "apm@8.3.0", 10: "apm@8.2.0"}[n]
		if c := e.gh.commentsOn(n); len(c) != 1 || !strings.Contains(c[0], want) || strings.Contains(c[0], other) {
			t.Errorf("comments on #%d = %q, want one live comment naming %s and not %s", n, c, want, other)
		}
	}
}

func TestControllerBuildFailureStopsTheChainAndReports(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.mu.Lock()
	e.gh.dispatchs = nil
	e.gh.mu.Unlock()

	e.gh.merge(11, "production", Version{"apm", "9.0.0"})
	e.pass()
	e.gh.finishRuns("build.yml", "failure")
	if diff := cmp.Diff(map[string]Action{"production": ActionFailed, "staging": ActionWaiting, "snapshot": ActionWaiting}, e.pass()); diff != "" {
		t.Fatalf("pass after the failed build (-want +got):\n%s", diff)
	}
	for i := 0; i < 2; i++ {
		if diff := cmp.Diff(map[string]Action{"production": ActionStopped, "staging": ActionWaiting, "snapshot": ActionWaiting}, e.pass()); diff != "" {
			t.Fatalf("later pass (-want +got):\n%s", diff)
		}
	}
	if _, states := e.gh.lastState("production"); !cmp.Equal(states, []string{StateFailure}) {
		t.Errorf("production deployment states = %v, want [failure]", states)
	}
	c := e.gh.commentsOn(11)
	if len(c) != 1 || !strings.Contains(c[0], "ended failure") || !strings.Contains(c[0], "/rebuild production") {
		t.Errorf("comments on #11 = %q, want one saying the build failed and how to retry", c)
	}
	if got := e.gh.builds(); len(got) != 1 {
		t.Errorf("builds dispatched = %v, want the one that failed", got)
	}

	// /rebuild retries; the chain then goes on.
	e.serve("apm@9.0.0")
	if _, err := e.ctrl.Rebuild(context.Background(), Repo{GitHub: e.gh, Config: e.cfg}, "production"); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	e.settle()
	if diff := cmp.Diff([]string{"production", "production", "staging", "snapshot"}, e.gh.builds()); diff != "" {
		t.Errorf("builds dispatched (-want +got):\n%s", diff)
	}
}

// TestControllerFailureToldOnALaterPass: when GitHub fails the comment that tells a PR its build failed
// (a 502, not a refusal), the failure is not made final; the next pass meets the failed run again, tells the
// PR once and only then marks the deployment failed. A refusal (403) is final at once: retrying would not
// pass, and the chain must stop.
func TestControllerFailureToldOnALaterPass(t *testing.T) {
	for _, tc := range []struct {
		name       string
		commentErr error
		wantStates [][]string // production's deployment states after each pass
		wantTold   bool
	}{
		{"server error", &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusBadGateway}, Message: "Bad Gateway"},
			[][]string{nil, {StateFailure}}, true},
		{"refused", &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusForbidden}, Message: "Resource not accessible by integration"},
			[][]string{{StateFailure}, {StateFailure}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "2s")
			e.settle()
			e.gh.merge(11, "production", Version{"apm", "9.0.0"})
			e.pass()
			e.gh.finishRuns("build.yml", "failure")
			e.gh.mu.Lock()
			e.gh.failNext["CommentOnce"] = tc.commentErr
			e.gh.mu.Unlock()
			for i, want := range tc.wantStates {
				e.pass()
				if _, states := e.gh.lastState("production"); !cmp.Equal(states, want) {
					t.Fatalf("pass %d: production deployment states = %v, want %v", i+1, states, want)
				}
			}
			c := e.gh.commentsOn(11)
			if told := len(c) == 1 && strings.Contains(c[0], "ended failure"); told != tc.wantTold || len(c) > 1 {
				t.Errorf("comments on #11 = %q, want told: %v, at most once", c, tc.wantTold)
			}
		})
	}
}

// TestControllerUndispatchedBuildToldOnALaterPass: a build whose dispatch GitHub refused is failed at once;
// when the PR cannot be told then either (GitHub failing), the deployment is marked error, and the next pass
// tells the PR once and marks it failure.
func TestControllerUndispatchedBuildToldOnALaterPass(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.merge(12, "production", Version{"apm", "9.1.0"})
	e.gh.mu.Lock()
	e.gh.failNext["DispatchWorkflow"] = &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusUnprocessableEntity}, Message: "Unexpected inputs provided"}
	e.gh.failNext["CommentOnce"] = &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusBadGateway}, Message: "Bad Gateway"}
	e.gh.mu.Unlock()
	if got := e.pass()["production"]; got != ActionFailed {
		t.Fatalf("pass with the dispatch refused: production = %q, want %q", got, ActionFailed)
	}
	if _, states := e.gh.lastState("production"); !cmp.Equal(states, []string{StateError}) {
		t.Fatalf("states = %v, want [error] (failed, PR not told yet)", states)
	}
	if c := e.gh.commentsOn(12); len(c) != 0 {
		t.Fatalf("comments on #12 = %q, want none yet", c)
	}
	for i := 0; i < 2; i++ {
		if got := e.pass()["production"]; got != ActionStopped {
			t.Fatalf("later pass: production = %q, want %q", got, ActionStopped)
		}
	}
	if _, states := e.gh.lastState("production"); !cmp.Equal(states, []string{StateError, StateFailure}) {
		t.Errorf("states = %v, want [error failure]", states)
	}
	if c := e.gh.commentsOn(12); len(c) != 1 || !strings.Contains(c[0], "could not be started") {
		t.Errorf("comments on #12 = %q, want one saying the build could not be started", c)
	}
}

func TestControllerRestartMidChainResumes(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.mu.Lock()
	e.gh.dispatchs = nil
	e.gh.mu.Unlock()

	e.gh.merge(12, "production", Version{"apm", "9.1.0"})
	e.serve("apm@9.1.0")
	e.pass()
	e.gh.finishRuns("build.yml", "success")
	e.pass() // production deployed, staging dispatched
	// The process dies; a new one (another replica, or the same after a restart) knows only GitHub.
	e.ctrl = &Controller{Target: e.ctrl.Target, Registry: e.ctrl.Registry}
	if diff := cmp.Diff(map[string]Action{"production": ActionUpToDate, "staging": ActionBuilding, "snapshot": ActionWaiting}, e.pass()); diff != "" {
		t.Fatalf("first pass of the new process (-want +got):\n%s", diff)
	}
	e.settle()
	if diff := cmp.Diff([]string{"production", "staging", "snapshot"}, e.gh.builds()); diff != "" {
		t.Errorf("builds dispatched (-want +got):\n%s", diff)
	}

	// A rollout interrupted after its deployment was recorded resumes without a new build or restart.
	e.gh.merge(13, "snapshot", Version{"x", "1.0.0"})
	e.pass()
	e.gh.finishRuns("build.yml", "success")
	e.kubeMu.Lock()
	e.ready["snapshot"] = false
	e.kubeMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	steps, _ := e.ctrl.Pass(ctx, Repo{GitHub: e.gh, Config: e.cfg})
	cancel()
	if got := steps[2].Action; got != ActionInterrupt {
		t.Fatalf("snapshot action when the pass is cancelled mid-rollout = %q, want %q", got, ActionInterrupt)
	}
	e.kubeMu.Lock()
	e.ready["snapshot"] = true
	e.kubeMu.Unlock()
	before, _ := e.kube.AppsV1().Deployments("registry").Get(context.Background(), "snapshot", metav1.GetOptions{})
	// Make the Deployment available as the real controller would once pods turn ready.
	before.Status.AvailableReplicas = 2
	if _, err := e.kube.AppsV1().Deployments("registry").Update(context.Background(), before, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.ctrl = &Controller{Target: e.ctrl.Target, Registry: e.ctrl.Registry}
	if got := e.pass()["snapshot"]; got != ActionDeployed {
		t.Fatalf("snapshot after the restart = %q, want %q", got, ActionDeployed)
	}
	after, _ := e.kube.AppsV1().Deployments("registry").Get(context.Background(), "snapshot", metav1.GetOptions{})
	if a, b := before.Spec.Template.Annotations[AnnotationRestartedAt], after.Spec.Template.Annotations[AnnotationRestartedAt]; a != b {
		t.Errorf("resumed rollout restarted the pods again: restartedAt %q → %q", a, b)
	}
	if got := e.gh.builds(); len(got) != 4 {
		t.Errorf("builds dispatched = %v, want 4 (no rebuild on resume)", got)
	}
}

func TestControllerRolloutFailures(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(e *env)
		reason  string
	}{
		{"rollout past its deadline", func(e *env) { e.ready["production"] = false }, "did not finish rolling out"},
		{"progress deadline exceeded", func(e *env) { e.stuck["production"] = true }, "ProgressDeadlineExceeded"},
		{"deployment missing", func(e *env) {
			_ = e.kube.AppsV1().Deployments("registry").Delete(context.Background(), "production", metav1.DeleteOptions{})
		}, "no such Deployment"},
		{"registry never serves the version", func(e *env) {}, "does not serve apm@9.9.0"},
		{"build workflow missing", func(e *env) { delete(e.gh.workflows, "build.yml") }, "the build could not be started"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "300ms")
			e.settle()
			e.kubeMu.Lock()
			tc.prepare(e)
			e.kubeMu.Unlock()
			e.gh.merge(20, "production", Version{"apm", "9.9.0"})
			start := time.Now()
			var got map[string]Action
			for i := 0; i < 5; i++ {
				if got = e.pass(); got["production"] == ActionFailed {
					break
				}
				e.gh.finishRuns("build.yml", "success")
			}
			if got["production"] != ActionFailed {
				t.Fatalf("production = %q, want %q", got["production"], ActionFailed)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("failure took %s: a wait has no deadline", time.Since(start))
			}
			if _, states := e.gh.lastState("production"); states[len(states)-1] != StateFailure {
				t.Errorf("production states = %v, want failure last", states)
			}
			c := e.gh.commentsOn(20)
			if len(c) != 1 || !strings.Contains(c[0], tc.reason) || !strings.Contains(c[0], "/rebuild production") {
				t.Errorf("comments on #20 = %q, want one naming %q and /rebuild", c, tc.reason)
			}
			if got := e.pass(); got["production"] != ActionStopped || got["staging"] != ActionWaiting {
				t.Errorf("next pass = %v, want production stopped and staging waiting", got)
			}
		})
	}
}

// TestControllerIdlePassCalls counts the GitHub calls of a pass with nothing to do.
func TestControllerIdlePassCalls(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.mu.Lock()
	e.gh.calls = map[string]int{}
	e.gh.mu.Unlock()
	e.pass()
	e.gh.mu.Lock()
	defer e.gh.mu.Unlock()
	want := map[string]int{"BranchHeads": 1, "Deployments": 1}
	if diff := cmp.Diff(want, e.gh.calls); diff != "" {
		t.Errorf("calls of an idle pass (-want +got):\n%s", diff)
	}
}

func TestKeyRoundTrip(t *testing.T) {
	k := Key{Distribution: "staging", Ref: "0123abc", BaseDeployment: 42}
	got, claim, ok := buildKeyInTitle("storagebot build " + BuildKey(k, 7))
	if !ok || got != k || claim != 7 {
		t.Errorf("buildKeyInTitle(%q) = %v, %d, %v; want %v, 7", BuildKey(k, 7), got, claim, ok, k)
	}
	for _, bad := range []string{"", "staging", "staging@", "@abc+1", "staging@abc+x", "staging@abc+-1"} {
		if _, ok := ParseKey(bad); ok {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"staging@abc+1", "staging@abc+1#", "staging@abc+1#0", "staging@abc+1#x", "staging@abc#3"} {
		if _, _, ok := ParseBuildKey(bad); ok {
			t.Errorf("ParseBuildKey(%q) accepted", bad)
		}
	}
}

// TestControllerLostDispatchFailsTheClaim: a claimed build whose run never appears (the dispatch was lost,
// or its replica died before sending it) fails once runAppearDeadline has passed, instead of staying in
// flight forever.
func TestControllerLostDispatchFailsTheClaim(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.merge(30, "production", Version{"apm", "9.3.0"})
	if got := e.pass()["production"]; got != ActionDispatched {
		t.Fatalf("production = %q, want %q", got, ActionDispatched)
	}
	e.gh.mu.Lock()
	e.gh.runs = nil // GitHub never lists the run
	e.gh.mu.Unlock()
	if got := e.pass()["production"]; got != ActionBuilding {
		t.Fatalf("production right after the dispatch = %q, want %q (runs appear within seconds)", got, ActionBuilding)
	}
	e.ctrl.Now = func() time.Time { return time.Now().Add(runAppearDeadline + time.Minute) }
	if got := e.pass()["production"]; got != ActionFailed {
		t.Fatalf("production past the deadline = %q, want %q", got, ActionFailed)
	}
	if c := e.gh.commentsOn(30); len(c) != 1 || !strings.Contains(c[0], "no run of build.yml builds") {
		t.Errorf("comments on #30 = %q, want one saying the build run never appeared", c)
	}
}

func TestStateCacheTrustsOnlyAnUnchangedFinalState(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewStateCache()
	c.now = func() time.Time { return now }
	t0 := now.Add(-time.Hour)
	c.put(1, t0, StateSuccess, t0)
	c.put(2, t0, StateInProgress, t0) // in flight: never cached
	if st, _, ok := c.get(1, t0); !ok || st != StateSuccess {
		t.Errorf("get(1) = %q, %v; want success", st, ok)
	}
	if _, _, ok := c.get(2, t0); ok {
		t.Error("an in-progress state was cached")
	}
	if _, _, ok := c.get(1, t0.Add(time.Second)); ok {
		t.Error("a deployment whose updated_at moved was answered from the cache")
	}
	now = now.Add(stateTTL + time.Second)
	if _, _, ok := c.get(1, t0); ok {
		t.Error("a state older than stateTTL was trusted")
	}
	// A final state set moments ago is not cached: a status in its second would not move updated_at.
	c.put(4, now, StateSuccess, now.Add(-time.Second))
	if _, _, ok := c.get(4, now); ok {
		t.Error("a final state younger than stateSettle was cached")
	}
	var none *StateCache
	none.put(3, t0, StateSuccess, t0)
	if _, _, ok := none.get(3, t0); ok {
		t.Error("a nil cache answered")
	}
}

// TestControllerMissingBranchStopsOnlyItsDistribution: a distribution whose branch does not exist is an
// error naming the branch; the others still take their step.
func TestControllerMissingBranchStopsOnlyItsDistribution(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.mu.Lock()
	delete(e.gh.branches, "snapshot")
	e.gh.mu.Unlock()
	e.gh.merge(40, "production", Version{"apm", "9.4.0"})
	steps, err := e.ctrl.Pass(context.Background(), Repo{GitHub: e.gh, Config: e.cfg})
	if err == nil || !strings.Contains(err.Error(), "branch snapshot does not exist") {
		t.Errorf("pass error = %v, want one naming the missing branch", err)
	}
	if steps[0].Action != ActionDispatched || steps[2].Action != ActionError {
		t.Errorf("steps %+v, want production dispatched and snapshot in error", steps)
	}
}

// stoppingGitHub is GitHub seen by a replica that is told to stop right after it claimed a build: the pass's
// context ends, and every later read of this pass fails as the HTTP client would.
type stoppingGitHub struct {
	*memGitHub
	stop context.CancelFunc
}

func (s stoppingGitHub) CreateDeployment(ctx context.Context, env, ref string, p Payload) (Deployment, error) {
	d, err := s.memGitHub.CreateDeployment(ctx, env, ref, p)
	s.stop()
	return d, err
}

func (s stoppingGitHub) Deployments(ctx context.Context, envs []string) (map[string][]Deployment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.memGitHub.Deployments(ctx, envs)
}

// TestControllerStoppedAfterClaimWithdrawsIt: a replica stopped (SIGTERM, a rolling update) between its claim
// and the dispatch withdraws the claim on its way out, so the next pass dispatches the build at once instead
// of waiting runAppearDeadline for a run nobody dispatched.
func TestControllerStoppedAfterClaimWithdrawsIt(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.merge(30, "production", Version{"apm", "9.3.0"})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	if _, err := e.ctrl.Pass(ctx, Repo{GitHub: stoppingGitHub{e.gh, stop}, Config: e.cfg}); err == nil {
		t.Log("the stopped pass reported no error")
	}
	if got := e.pass()["production"]; got != ActionDispatched {
		t.Fatalf("production after the stopped replica's claim = %q, want %q (its claim withdrawn)", got, ActionDispatched)
	}
}

func (s stoppingGitHub) SetDeploymentState(ctx context.Context, id int64, state, description, url string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.memGitHub.SetDeploymentState(ctx, id, state, description, url)
}

// baseMovesGitHub is GitHub while another replica rolls production out again (a /rebuild) during this pass:
// the move lands just before the pass's second reading of the deployments.
type baseMovesGitHub struct {
	*memGitHub
	readings int
	move     func()
}

func (g *baseMovesGitHub) Deployments(ctx context.Context, envs []string) (map[string][]Deployment, error) {
	if g.readings++; g.readings == 2 {
		g.move()
	}
	return g.memGitHub.Deployments(ctx, envs)
}

// TestControllerDependentWaitsWhenItsBaseMovedOn: a pass that decided to build staging on production's
// deployment as it was when the pass began does not claim that build once production went live again in the
// meantime: the image would be built on a base that no longer runs (and, for a pair built before, twice).
// It waits; the next pass builds on the new base.
func TestControllerDependentWaitsWhenItsBaseMovedOn(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	old, _ := e.gh.lastState("production")
	e.gh.merge(41, "staging", Version{"apm", "9.4.0"})
	var moved Deployment
	gh := &baseMovesGitHub{memGitHub: e.gh, move: func() {
		p := old.Payload
		p.Rebuild = true
		d, err := e.gh.CreateDeployment(context.Background(), "production", old.Ref, p)
		if err == nil {
			err = e.gh.SetDeploymentState(context.Background(), d.ID, StateSuccess, "live", "")
		}
		if err != nil {
			t.Errorf("roll production out again: %v", err)
		}
		moved = d
	}}
	steps, err := e.ctrl.Pass(context.Background(), Repo{GitHub: gh, Config: e.cfg})
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	if steps[1].Action != ActionWaiting || !strings.Contains(steps[1].Detail, "moved on") {
		t.Fatalf("staging while production moved on = %s (%s), want %s", steps[1].Action, steps[1].Detail, ActionWaiting)
	}
	if cur, _ := e.gh.lastState("staging"); cur.Payload.BaseDeployment == old.ID && cur.Payload.Ref == e.gh.branches["staging"][len(e.gh.branches["staging"])-1] {
		t.Fatalf("staging deployment %d claimed on production %d, which no longer runs", cur.ID, old.ID)
	}
	if got := e.pass()["staging"]; got != ActionDispatched {
		t.Fatalf("staging on the next pass = %s, want %s", got, ActionDispatched)
	}
	if cur, _ := e.gh.lastState("staging"); cur.Payload.BaseDeployment != moved.ID {
		t.Errorf("staging built on production %d, want %d (the one that runs)", cur.Payload.BaseDeployment, moved.ID)
	}
}

// lostAnswerGitHub applies the next build dispatch but loses its answer, as a timeout does.
type lostAnswerGitHub struct {
	*memGitHub
	lost bool
}

func (g *lostAnswerGitHub) DispatchWorkflow(ctx context.Context, workflow, ref string, inputs map[string]string) error {
	if err := g.memGitHub.DispatchWorkflow(ctx, workflow, ref, inputs); err != nil || g.lost {
		return err
	}
	g.lost = true
	return &url.Error{Op: "Post", URL: "https://api.github.com/repos/o/r/actions/workflows/build.yml/dispatches", Err: context.DeadlineExceeded}
}

// TestControllerDispatchOutcomes: a build dispatch whose answer was lost is not failed when GitHub applied it
// (its run shows); one GitHub did not apply fails its claim once the settle time has passed; a rate-limited
// one withdraws its claim, and the next pass claims and dispatches again. No pull request is told of a
// failure that did not happen.
func TestControllerDispatchOutcomes(t *testing.T) {
	t.Run("answer lost, applied", func(t *testing.T) {
		e := newEnv(t, "2s")
		e.settle()
		e.ctrl.WriteSettle = 2 * time.Second
		e.gh.merge(50, "production", Version{"apm", "9.5.0"})
		e.serve("apm@9.5.0")
		steps, err := e.ctrl.Pass(context.Background(), Repo{GitHub: &lostAnswerGitHub{memGitHub: e.gh}, Config: e.cfg})
		if err != nil || steps[0].Action != ActionDispatched {
			t.Fatalf("production = %+v, %v; want %s", steps[0], err, ActionDispatched)
		}
		if _, states := e.gh.lastState("production"); len(states) != 0 {
			t.Errorf("production claim states = %v, want none (building)", states)
		}
		e.gh.finishRuns("build.yml", "success")
		if got := e.pass()["production"]; got != ActionDeployed {
			t.Errorf("production after its build = %s, want %s", got, ActionDeployed)
		}
		if c := e.gh.commentsOn(50); len(c) != 1 || !strings.Contains(c[0], "Now live") {
			t.Errorf("comments on #50 = %q, want only the live one", c)
		}
	})
	t.Run("answer lost, not applied", func(t *testing.T) {
		e := newEnv(t, "2s")
		e.settle()
		e.ctrl.WriteSettle = 50 * time.Millisecond
		e.gh.merge(51, "production", Version{"apm", "9.6.0"})
		e.gh.failNext["DispatchWorkflow"] = &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusBadGateway}, Message: "Bad Gateway"}
		if got := e.pass()["production"]; got != ActionFailed {
			t.Fatalf("production = %s, want %s", got, ActionFailed)
		}
		if c := e.gh.commentsOn(51); len(c) != 1 || !strings.Contains(c[0], "could not be started") {
			t.Errorf("comments on #51 = %q, want one saying the build could not be started", c)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		e := newEnv(t, "2s")
		e.settle()
		e.gh.merge(52, "production", Version{"apm", "9.7.0"})
		e.gh.failNext["DispatchWorkflow"] = &github.AbuseRateLimitError{Response: &http.Response{StatusCode: http.StatusForbidden}, Message: "secondary rate limit"}
		steps, err := e.ctrl.Pass(context.Background(), Repo{GitHub: e.gh, Config: e.cfg})
		if err == nil || steps[0].Action != ActionError {
			t.Fatalf("production = %+v, %v; want %s with an error", steps[0], err, ActionError)
		}
		if _, states := e.gh.lastState("production"); fmt.Sprint(states) != "[inactive]" {
			t.Errorf("rate-limited claim states = %v, want [inactive] (withdrawn)", states)
		}
		if got := e.pass()["production"]; got != ActionDispatched {
			t.Errorf("production on the next pass = %s, want %s", got, ActionDispatched)
		}
		if c := e.gh.commentsOn(52); len(c) != 0 {
			t.Errorf("comments on #52 = %q, want none", c)
		}
	})
}

// overtakenGitHub is GitHub while another replica's pass, deciding on a newer reading, claims and rolls out
// staging just before this pass's claim of staging lands.
type overtakenGitHub struct {
	*memGitHub
	overtake func()
}

func (g *overtakenGitHub) CreateDeployment(ctx context.Context, env, ref string, p Payload) (Deployment, error) {
	if g.overtake != nil {
		g.overtake()
		g.overtake = nil
	}
	return g.memGitHub.CreateDeployment(ctx, env, ref, p)
}

// TestControllerClaimOvertakenIsWithdrawn: a claim decided on a reading that another pass's claim overtook
// (the request was slow, or retried) is withdrawn instead of built: built, it would roll the distribution
// back to what the older reading wanted, or build a Key twice.
func TestControllerClaimOvertakenIsWithdrawn(t *testing.T) {
	e := newEnv(t, "2s")
	e.settle()
	e.gh.merge(60, "staging", Version{"apm", "9.8.0"})
	var theirs Deployment
	gh := &overtakenGitHub{memGitHub: e.gh, overtake: func() {
		// Production was rebuilt (/rebuild) and staging followed it, all on the other replica.
		old, _ := e.gh.lastState("production")
		p := old.Payload
		p.Rebuild = true
		prod, err := e.gh.CreateDeployment(context.Background(), "production", old.Ref, p)
		if err == nil {
			err = e.gh.SetDeploymentState(context.Background(), prod.ID, StateSuccess, "live", "")
		}
		if err != nil {
			t.Errorf("the other replica's production rollout: %v", err)
			return
		}
		head := e.gh.branches["staging"][len(e.gh.branches["staging"])-1]
		d, err := e.gh.CreateDeployment(context.Background(), "staging", head,
			Payload{Distribution: "staging", Ref: head, Base: "production", BaseDeployment: prod.ID, Image: "ghcr.io/o/staging:" + head})
		if err == nil {
			err = e.gh.SetDeploymentState(context.Background(), d.ID, StateSuccess, "live", "")
		}
		if err != nil {
			t.Errorf("the other replica's rollout: %v", err)
		}
		theirs = d
	}}
	dispatched := len(e.gh.builds())
	steps, err := e.ctrl.Pass(context.Background(), Repo{GitHub: gh, Config: e.cfg})
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	if steps[1].Action != ActionWaiting || steps[1].Deployment != theirs.ID {
		t.Fatalf("staging = %+v, want %s naming deployment %d", steps[1], ActionWaiting, theirs.ID)
	}
	if got := len(e.gh.builds()); got != dispatched {
		t.Errorf("builds dispatched = %d, want %d (none for the overtaken claim)", got, dispatched)
	}
	if mine, states := e.gh.lastState("staging"); mine.ID == theirs.ID || fmt.Sprint(states) != "[inactive]" {
		t.Errorf("the overtaken claim %d has states %v, want [inactive] (withdrawn)", mine.ID, states)
	}
	if got := e.pass()["staging"]; got != ActionUpToDate {
		t.Errorf("staging on the next pass = %s, want %s (the other replica's build)", got, ActionUpToDate)
	}
}
