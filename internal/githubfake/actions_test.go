package githubfake

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const buildWorkflow = `name: distribution
run-name: storagebot build ${{ inputs.build_key }}
on:
  workflow_dispatch:
    inputs:
      build_key: {required: true}
      ref: {required: false}
`

// TestActionsAndDeploymentsBehaveLikeGitHub drives dispatches, runs, deployments and statuses through
// go-github, checks GitHub's refusals, and validates every webhook emitted against GitHub's schemas.
func TestActionsAndDeploymentsBehaveLikeGitHub(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	const o, n = "storage-org", "package-storage"
	sha, err := repo.Commit("production", "CI", map[string]*File{".github/workflows/build.yml": {Content: []byte(buildWorkflow)},
		".github/workflows/push.yml": {Content: []byte("on: push\n")}})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	dispatch := func(file, ref string, inputs map[string]interface{}) error {
		_, err := gh.Actions.CreateWorkflowDispatchEventByFileName(ctx, o, n, file, github.CreateWorkflowDispatchEventRequest{Ref: ref, Inputs: inputs})
		return err
	}
	refusals := []struct {
		name, file, ref string
		inputs          map[string]interface{}
		want            int
	}{
		{"missing workflow", "nope.yml", "production", map[string]interface{}{"build_key": "k"}, http.StatusNotFound},
		{"no workflow_dispatch trigger", "push.yml", "production", nil, http.StatusUnprocessableEntity},
		{"unexpected input", "build.yml", "production", map[string]interface{}{"build_key": "k", "extra": "x"}, http.StatusUnprocessableEntity},
		{"required input missing", "build.yml", "production", nil, http.StatusUnprocessableEntity},
		{"unknown ref", "build.yml", "nope", map[string]interface{}{"build_key": "k"}, http.StatusUnprocessableEntity},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(dispatch(tc.file, tc.ref, tc.inputs)); got != tc.want {
				t.Errorf("dispatch answered %d, want %d", got, tc.want)
			}
		})
	}
	if err := dispatch("build.yml", "production", map[string]interface{}{"build_key": "production@abc+0", "ref": sha}); err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	runs, _, err := gh.Actions.ListWorkflowRunsByFileName(ctx, o, n, "build.yml", &github.ListWorkflowRunsOptions{Event: "workflow_dispatch", Branch: "production"})
	if err != nil || runs.GetTotalCount() != 1 {
		t.Fatalf("list runs: %v, %d runs", err, runs.GetTotalCount())
	}
	run := repo.WorkflowRuns()[0]
	if run.DisplayTitle != "storagebot build production@abc+0" || run.HeadSHA != sha || run.Status != "queued" {
		t.Errorf("run = %+v, want the run name rendered from the inputs, on the branch head, queued", run)
	}
	if err := repo.StartRun(run.ID); err != nil {
		t.Fatal(err)
	}
	if err := repo.CompleteRun(run.ID, "success"); err != nil {
		t.Fatal(err)
	}

	// Deployments: GitHub's defaults refuse a channel branch that lacks the default branch's head.
	if _, err := repo.Commit(repo.defaultBranch, "docs", map[string]*File{"docs.md": {Content: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{"distribution": "production"}
	_, _, err = gh.Repositories.CreateDeployment(ctx, o, n, &github.DeploymentRequest{Ref: github.String("production"),
		Environment: github.String("production"), Payload: payload, RequiredContexts: &[]string{}})
	if got := statusOf(err); got != http.StatusConflict {
		t.Errorf("deployment with auto_merge defaulted answered %d, want 409", got)
	}
	if _, _, err := gh.Checks.CreateCheckRun(ctx, o, n, github.CreateCheckRunOptions{Name: "ci", HeadSHA: sha,
		Conclusion: github.String("failure"), Output: &github.CheckRunOutput{Title: github.String("x"), Summary: github.String("x")}}); err != nil {
		t.Fatal(err)
	}
	_, _, err = gh.Repositories.CreateDeployment(ctx, o, n, &github.DeploymentRequest{Ref: github.String("production"),
		Environment: github.String("production"), Payload: payload, AutoMerge: github.Bool(false)})
	if got := statusOf(err); got != http.StatusConflict {
		t.Errorf("deployment with required_contexts unset and a failed check answered %d, want 409", got)
	}
	dep, _, err := gh.Repositories.CreateDeployment(ctx, o, n, &github.DeploymentRequest{Ref: github.String("production"),
		Environment: github.String("production"), Payload: payload, AutoMerge: github.Bool(false), RequiredContexts: &[]string{}})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	_, _, err = gh.Repositories.CreateDeploymentStatus(ctx, o, n, dep.GetID(), &github.DeploymentStatusRequest{
		State: github.String("success"), Description: github.String(strings.Repeat("x", 141))})
	if got := statusOf(err); got != http.StatusUnprocessableEntity {
		t.Errorf("status with a 141-character description answered %d, want 422", got)
	}
	for _, state := range []string{"in_progress", "success"} {
		if _, _, err := gh.Repositories.CreateDeploymentStatus(ctx, o, n, dep.GetID(), &github.DeploymentStatusRequest{State: github.String(state)}); err != nil {
			t.Fatalf("status %s: %v", state, err)
		}
	}
	list, _, err := gh.Repositories.ListDeployments(ctx, o, n, &github.DeploymentsListOptions{Environment: "production"})
	if err != nil || len(list) != 1 || string(list[0].Payload) != `{"distribution":"production"}` {
		t.Fatalf("list deployments: %v, %d, payload %s", err, len(list), func() string {
			if len(list) > 0 {
				return string(list[0].Payload)
			}
			return ""
		}())
	}
	sts, _, err := gh.Repositories.ListDeploymentStatuses(ctx, o, n, dep.GetID(), &github.ListOptions{PerPage: 1})
	if err != nil || len(sts) != 1 || sts[0].GetState() != "success" {
		t.Fatalf("newest status: %v, %v", err, sts)
	}

	var kinds []string
	c := schemaCompiler(t)
	for _, d := range s.Deliveries() {
		if d.Event != "workflow_run" && d.Event != "deployment_status" {
			continue
		}
		kinds = append(kinds, d.Event+"."+d.Action)
		file := d.Event + "-" + d.Action + ".schema.json"
		sch, err := c.Compile("https://schemas.test/" + file)
		if err != nil {
			t.Fatalf("compile %s: %v", file, err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.Body))
		if err != nil {
			t.Fatalf("parse payload: %v", err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s payload does not match %s: %v", d.Event, file, err)
		}
	}
	want := []string{"workflow_run.requested", "workflow_run.in_progress", "workflow_run.completed",
		"deployment_status.created", "deployment_status.created"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
