package rollout

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v50/github"
)

// memGitHub is an in-memory GitHub for one repository, holding what the controller reads and writes:
// branches as commit lists, deployments with statuses, workflow runs created by dispatches, merged PRs and
// comments. It refuses what GitHub refuses: a dispatch of a workflow that does not exist (404).
type memGitHub struct {
	mu        sync.Mutex
	nextID    int64
	branches  map[string][]string              // branch → commits, oldest first
	versions  map[string]map[Version]bool      // commit → versions present
	workflows map[string]bool                  // workflow files that exist
	deps      []*memDeployment                 // oldest first
	runs      []*memRun                        // oldest first
	prs       map[int]memPR                    // number → merge
	comments  map[int][]string                 // number → bodies
	calls     map[string]int                   // method → count
	dispatchs []map[string]string              // every dispatch's inputs, in order
	failNext  map[string]error                 // method → error for its next call
	onRun     func(workflow string, r *memRun) // called (unlocked) when a dispatch creates a run
}

type memDeployment struct {
	Deployment
	states []string
}

type memRun struct {
	Run
	workflow, branch string
	inputs           map[string]string
}

type memPR struct {
	branch, mergeSHA string
}

// errMemNotFound is GitHub's 404, as go-github returns it.
var errMemNotFound = &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusNotFound}, Message: "Not Found"}

func newMemGitHub(branches ...string) *memGitHub {
	m := &memGitHub{nextID: 100, branches: map[string][]string{}, versions: map[string]map[Version]bool{},
		workflows: map[string]bool{}, prs: map[int]memPR{}, comments: map[int][]string{}, calls: map[string]int{},
		failNext: map[string]error{}}
	for _, b := range branches {
		m.commit(b, nil)
	}
	return m
}

func (m *memGitHub) id() int64 { m.nextID++; return m.nextID }

// commit adds a commit to branch with the branch's versions plus added, and returns its SHA.
func (m *memGitHub) commit(branch string, added []Version) string {
	sha := fmt.Sprintf("%040x", m.id())
	vs := map[Version]bool{}
	if h := m.branches[branch]; len(h) > 0 {
		for v := range m.versions[h[len(h)-1]] {
			vs[v] = true
		}
	}
	for _, v := range added {
		vs[v] = true
	}
	m.versions[sha] = vs
	m.branches[branch] = append(m.branches[branch], sha)
	return sha
}

// merge merges PR number into branch adding versions.
func (m *memGitHub) merge(number int, branch string, added ...Version) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	sha := m.commit(branch, added)
	m.prs[number] = memPR{branch: branch, mergeSHA: sha}
	return sha
}

func (m *memGitHub) count(method string) error {
	m.calls[method]++
	if err := m.failNext[method]; err != nil {
		delete(m.failNext, method)
		return err
	}
	return nil
}

func (m *memGitHub) BranchHeads(_ context.Context, branches []string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.count("BranchHeads"); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, b := range branches {
		if h := m.branches[b]; len(h) > 0 {
			out[b] = h[len(h)-1]
		}
	}
	return out, nil
}

func (m *memGitHub) Deployments(_ context.Context, envs []string) (map[string][]Deployment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.count("Deployments"); err != nil {
		return nil, err
	}
	out := map[string][]Deployment{}
	for _, env := range envs {
		for i := len(m.deps) - 1; i >= 0; i-- {
			if m.deps[i].Payload.Distribution != env {
				continue
			}
			d := m.deps[i].Deployment
			if n := len(m.deps[i].states); n > 0 {
				d.State = m.deps[i].states[n-1]
			}
			out[env] = append(out[env], d)
			if d.State == StateSuccess {
				break
			}
		}
	}
	return out, nil
}

func (m *memGitHub) CreateDeployment(_ context.Context, env, ref string, p Payload) (Deployment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.count("CreateDeployment"); err != nil {
		return Deployment{}, err
	}
	d := &memDeployment{Deployment: Deployment{ID: m.id(), Ref: ref, Payload: p, Created: time.Now(), StateSince: time.Now()}}
	m.deps = append(m.deps, d)
	return d.Deployment, nil
}

func (m *memGitHub) SetDeploymentState(_ context.Context, id int64, state, _, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.count("SetDeploymentState"); err != nil {
		return err
	}
	for _, d := range m.deps {
		if d.ID == id {
			d.states = append(d.states, state)
			d.StateSince = time.Now()
			return nil
		}
	}
	return errMemNotFound
}

func (m *memGitHub) DispatchWorkflow(_ context.Context, workflow, ref string, inputs map[string]string) error {
	m.mu.Lock()
	if err := m.count("DispatchWorkflow"); err != nil {
		m.mu.Unlock()
		return err
	}
	if !m.workflows[workflow] {
		m.mu.Unlock()
		return errMemNotFound
	}
	m.dispatchs = append(m.dispatchs, inputs)
	h := m.branches[ref]
	title := "storagebot build " + inputs["build_key"]
	if id, ok := inputs["deployment_id"]; ok {
		title = "storagebot deploy " + id
	}
	r := &memRun{Run: Run{ID: m.id(), Title: title, HeadSHA: h[len(h)-1], Status: "queued", Created: time.Now(),
		URL: fmt.Sprintf("https://github.test/runs/%d", m.nextID)}, workflow: workflow, branch: ref, inputs: inputs}
	m.runs = append(m.runs, r)
	hook := m.onRun
	m.mu.Unlock()
	if hook != nil {
		hook(workflow, r)
	}
	return nil
}

func (m *memGitHub) WorkflowRuns(_ context.Context, workflow, branch string) ([]Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.count("WorkflowRuns"); err != nil {
		return nil, err
	}
	var out []Run
	for i := len(m.runs) - 1; i >= 0; i-- {
		if m.runs[i].workflow == workflow && m.runs[i].branch == branch {
			out = append(out, m.runs[i].Run)
		}
	}
	return out, nil
}

// finishRuns completes every unfinished build run of workflow with conclusion and returns how many.
func (m *memGitHub) finishRuns(workflow, conclusion string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.runs {
		if r.workflow == workflow && r.Status != "completed" {
			r.Status, r.Conclusion = "completed", conclusion
			n++
		}
	}
	return n
}

func (m *memGitHub) MergedPulls(_ context.Context, branch, from, to string) ([]MergedPull, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.count("MergedPulls"); err != nil {
		return nil, err
	}
	if from == "" {
		return nil, nil
	}
	h := m.branches[branch]
	inRange, seenFrom := map[string]int{}, false
	for i, sha := range h {
		if seenFrom {
			inRange[sha] = i
		}
		if sha == from {
			seenFrom = true
		}
		if sha == to {
			break
		}
	}
	var out []MergedPull
	for n, pr := range m.prs {
		if _, ok := inRange[pr.mergeSHA]; ok && pr.branch == branch {
			out = append(out, MergedPull{Number: n, MergeSHA: pr.mergeSHA})
		}
	}
	sort.Slice(out, func(i, j int) bool { return inRange[out[i].MergeSHA] < inRange[out[j].MergeSHA] })
	return out, nil
}

func (m *memGitHub) AddedVersions(_ context.Context, from, to string) ([]Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.count("AddedVersions"); err != nil {
		return nil, err
	}
	var out []Version
	for v := range m.versions[to] {
		if !m.versions[from][v] {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

func (m *memGitHub) CommentOnce(_ context.Context, number int, marker, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.count("CommentOnce"); err != nil {
		return err
	}
	for _, c := range m.comments[number] {
		if strings.Contains(c, marker) {
			return nil
		}
	}
	m.comments[number] = append(m.comments[number], body)
	return nil
}

// builds returns, in order, the distribution and ref of every build dispatch.
func (m *memGitHub) builds() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, in := range m.dispatchs {
		if k, _, ok := ParseBuildKey(in["build_key"]); ok {
			out = append(out, k.Distribution)
		}
	}
	return out
}

// lastState returns the newest deployment of env and its state history.
func (m *memGitHub) lastState(env string) (Deployment, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.deps) - 1; i >= 0; i-- {
		if m.deps[i].Payload.Distribution == env {
			return m.deps[i].Deployment, append([]string(nil), m.deps[i].states...)
		}
	}
	return Deployment{}, nil
}

func (m *memGitHub) commentsOn(n int) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.comments[n]...)
}
