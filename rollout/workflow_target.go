package rollout

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/storagebot/storagebot/internal/repoconfig"
)

// DeployWorkflow rolls a distribution out by dispatching its deploy workflow and waiting for the run: the run's
// conclusion decides the deployment's status. The workflow gets the inputs distribution, image and
// deployment_id, and must name its run after them ("storagebot deploy <deployment_id>"), so a resumed
// rollout finds the run instead of deploying twice.
type DeployWorkflow struct {
	GitHub GitHub
	// Poll is how often the runs are listed while waiting; 0 means 10s.
	Poll time.Duration
	// Wake, when set, ends a wait early (a run completed).
	Wake *Waker
}

var _ Target = (*DeployWorkflow)(nil)

// deployRunName is the name of the run deploying deploymentID.
func deployRunName(deploymentID int64) string {
	return "storagebot deploy " + strconv.FormatInt(deploymentID, 10)
}

// deployRunListed reports whether GitHub lists a run of d's deploy workflow for deploymentID.
func deployRunListed(ctx context.Context, gh GitHub, d repoconfig.Distribution, deploymentID int64) (bool, error) {
	runs, err := gh.WorkflowRuns(ctx, d.Deploy.Workflow, d.Branch)
	if err != nil {
		return false, fmt.Errorf("list runs of %s: %w", d.Deploy.Workflow, err)
	}
	for _, r := range runs {
		if strings.Contains(r.Title, deployRunName(deploymentID)) {
			return true, nil
		}
	}
	return false, nil
}

// Rollout dispatches the deploy workflow once per deployment id and waits for its run.
func (w *DeployWorkflow) Rollout(ctx context.Context, d repoconfig.Distribution, deploymentID int64, image string, deadline time.Time) error {
	workflow := d.Deploy.Workflow
	want := deployRunName(deploymentID)
	poll := w.Poll
	if poll <= 0 {
		poll = 10 * time.Second
	}
	dispatched := false
	for {
		woken := w.Wake.C() // taken before listing, so a completion between the two is not missed
		runs, err := w.GitHub.WorkflowRuns(ctx, workflow, d.Branch)
		if err != nil {
			return fmt.Errorf("list runs of %s: %w", workflow, err)
		}
		var run *Run
		for i := range runs {
			if strings.Contains(runs[i].Title, want) && (run == nil || runs[i].ID > run.ID) {
				run = &runs[i]
			}
		}
		switch {
		case run != nil && run.Completed() && run.Conclusion == "success":
			return nil
		case run != nil && run.Completed():
			return fmt.Errorf("deploy run %s ended %s", run.URL, run.Conclusion)
		case run == nil && !dispatched:
			if err := w.GitHub.DispatchWorkflow(ctx, workflow, d.Branch, map[string]string{
				"distribution": d.Name, "image": image, "deployment_id": strconv.FormatInt(deploymentID, 10)}); err != nil {
				return fmt.Errorf("start the deploy workflow: %w", err)
			}
			dispatched = true
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("deploy workflow %s did not finish by %s", workflow, deadline.UTC().Format(time.RFC3339))
		}
		wait := time.NewTimer(min(poll, time.Until(deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-wait.C:
		case <-woken:
			wait.Stop()
		}
	}
}

// Waker lets waits end early when something they wait for may have happened (a workflow_run event), so
// polling is only the fallback for a lost event.
type Waker struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns a channel closed by the next Wake.
func (w *Waker) C() <-chan struct{} {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// Wake ends every current wait.
func (w *Waker) Wake() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}
