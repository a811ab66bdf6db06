package githubfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v50/github"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

func annotation(path string) *github.CheckRunAnnotation {
	return &github.CheckRunAnnotation{
		Path: github.String(path), StartLine: github.Int(1), EndLine: github.Int(1),
		AnnotationLevel: github.String("failure"), Message: github.String("wrong"),
	}
}

func statusOf(err error) int {
	var ge *github.ErrorResponse
	if errors.As(err, &ge) && ge.Response != nil {
		return ge.Response.StatusCode
	}
	return 0
}

// TestCheckRunAnnotationsAppend: GitHub appends the annotations of every update to the run's, never
// replacing them, and refuses more than 50 in one request or a summary past 65,535 characters.
func TestCheckRunAnnotationsAppend(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	sha := repo.BranchSHA("snapshot")
	run, _, err := gh.Checks.CreateCheckRun(ctx, "storage-org", "package-storage", github.CreateCheckRunOptions{
		Name: "storage-policy", HeadSHA: sha, Status: github.String("in_progress"),
		Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Annotations: []*github.CheckRunAnnotation{annotation("a")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"b", "a"} {
		if _, _, err := gh.Checks.UpdateCheckRun(ctx, "storage-org", "package-storage", run.GetID(), github.UpdateCheckRunOptions{
			Name: "storage-policy", Conclusion: github.String("failure"),
			Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Annotations: []*github.CheckRunAnnotation{annotation(p)}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	runs := repo.CheckRuns(sha)
	if len(runs) != 1 || len(runs[0].Annotations) != 3 {
		t.Fatalf("runs = %+v, want one run holding all three annotations", runs)
	}
	got, _, err := gh.Checks.ListCheckRunAnnotations(ctx, "storage-org", "package-storage", run.GetID(), nil)
	if err != nil || len(got) != 3 || got[0].GetPath() != "a" || got[1].GetPath() != "b" || got[2].GetPath() != "a" {
		t.Errorf("listed annotations = %v (%v), want a, b, a", got, err)
	}

	tooMany := make([]*github.CheckRunAnnotation, 51)
	for i := range tooMany {
		tooMany[i] = annotation("x")
	}
	_, _, err = gh.Checks.CreateCheckRun(ctx, "storage-org", "package-storage", github.CreateCheckRunOptions{
		Name: "storage-policy", HeadSHA: sha,
		Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Annotations: tooMany},
	})
	if statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("create with 51 annotations: %v, want 422", err)
	}
	long := strings.Repeat("x", 65536)
	_, _, err = gh.Checks.UpdateCheckRun(ctx, "storage-org", "package-storage", run.GetID(), github.UpdateCheckRunOptions{
		Name: "storage-policy", Output: &github.CheckRunOutput{Title: github.String("t"), Summary: &long},
	})
	if statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("update with a 65,536-character summary: %v, want 422", err)
	}
	_, _, err = gh.Checks.UpdateCheckRun(ctx, "storage-org", "package-storage", run.GetID(), github.UpdateCheckRunOptions{
		Name: "storage-policy", Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Text: &long},
	})
	if statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("update with a 65,536-character text: %v, want 422", err)
	}
	if runs := repo.CheckRuns(sha); len(runs) != 1 || len(runs[0].Annotations) != 3 {
		t.Errorf("refused writes changed the runs: %+v", runs)
	}
	// The limit is in characters: 65,535 three-byte characters fit.
	wide := strings.Repeat("✅", 65535)
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, "storage-org", "package-storage", run.GetID(), github.UpdateCheckRunOptions{
		Name: "storage-policy", Output: &github.CheckRunOutput{Title: github.String("t"), Summary: &wide},
	}); err != nil {
		t.Errorf("update with a 65,535-character summary of multi-byte characters: %v, want it accepted", err)
	}
}

// TestCheckRunsBelongToTheirApp: a run another App created can be read and listed but not written (403),
// listing filters by app_id and check_name, and filter=latest (the default) keeps each App's newest run.
func TestCheckRunsBelongToTheirApp(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	sha := repo.BranchSHA("snapshot")
	other := OtherApp{ID: s.AppID() + 1, Slug: "github-actions"}
	theirs, err := repo.CreateCheckRunAs(other, CheckRunOptions{Name: "storage-policy", HeadSHA: sha, Conclusion: "success", Title: "ok", Summary: "fine"})
	if err != nil {
		t.Fatal(err)
	}
	if theirs.AppID != other.ID {
		t.Fatalf("run app = %d, want %d", theirs.AppID, other.ID)
	}
	_, _, err = gh.Checks.UpdateCheckRun(ctx, "storage-org", "package-storage", theirs.ID, github.UpdateCheckRunOptions{
		Name: "storage-policy", Status: github.String("in_progress"),
	})
	if statusOf(err) != http.StatusForbidden {
		t.Fatalf("PATCH of another App's run: %v, want 403", err)
	}
	read, _, err := gh.Checks.GetCheckRun(ctx, "storage-org", "package-storage", theirs.ID)
	if err != nil || read.GetApp().GetID() != other.ID || read.GetApp().GetSlug() != "github-actions" {
		t.Fatalf("GET another App's run = %+v (%v), want it readable with its app", read.GetApp(), err)
	}
	var ours []int64
	for i := 0; i < 2; i++ {
		run, _, err := gh.Checks.CreateCheckRun(ctx, "storage-org", "package-storage", github.CreateCheckRunOptions{
			Name: "storage-policy", HeadSHA: sha, Conclusion: github.String("failure"),
			Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if run.GetApp().GetID() != s.AppID() {
			t.Errorf("created run's app = %d, want the fake App %d", run.GetApp().GetID(), s.AppID())
		}
		ours = append(ours, run.GetID())
	}
	if _, err := repo.CreateCheckRunAs(other, CheckRunOptions{Name: "build", HeadSHA: sha, Conclusion: "success", Summary: "built"}); err != nil {
		t.Fatal(err)
	}

	list := func(o *github.ListCheckRunsOptions) []int64 {
		t.Helper()
		res, _, err := gh.Checks.ListCheckRunsForRef(ctx, "storage-org", "package-storage", sha, o)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, r := range res.CheckRuns {
			ids = append(ids, r.GetID())
		}
		if res.GetTotal() != len(ids) {
			t.Errorf("total_count %d for %d runs", res.GetTotal(), len(ids))
		}
		return ids
	}
	name := github.String("storage-policy")
	if got := list(&github.ListCheckRunsOptions{CheckName: name, AppID: github.Int64(s.AppID())}); len(got) != 1 || got[0] != ours[1] {
		t.Errorf("latest storage-policy of our App = %v, want only the newest %d", got, ours[1])
	}
	if got := list(&github.ListCheckRunsOptions{CheckName: name, AppID: github.Int64(s.AppID()), Filter: github.String("all")}); len(got) != 2 || got[0] != ours[1] || got[1] != ours[0] {
		t.Errorf("all storage-policy runs of our App = %v, want %v newest first", got, ours)
	}
	if got := list(&github.ListCheckRunsOptions{CheckName: name}); len(got) != 2 {
		t.Errorf("latest storage-policy of every App = %v, want one per App", got)
	}
	if got := list(&github.ListCheckRunsOptions{AppID: github.Int64(other.ID)}); len(got) != 2 {
		t.Errorf("latest runs of the other App = %v, want its storage-policy and build", got)
	}
	_, _, err = gh.Checks.ListCheckRunsForRef(ctx, "storage-org", "package-storage", sha, &github.ListCheckRunsOptions{Filter: github.String("newest")})
	if statusOf(err) != http.StatusUnprocessableEntity {
		t.Errorf("filter=newest: %v, want 422", err)
	}
	// "Re-run" on another App's run notifies that App, not this one.
	before := len(s.Deliveries())
	if err := repo.RerequestCheckRun(theirs.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Deliveries()); n != before {
		t.Errorf("re-running another App's run sent %d webhooks to this App", n-before)
	}
}

// TestForkPullRequestPayloads: a fork PR's head is in the fork, and a check_run event on its head carries no
// pull_requests, as GitHub sends it; both payloads match GitHub's schemas.
func TestForkPullRequestPayloads(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	gh := newClient(t, s, s.PrivateKeyPEM())
	if _, err := repo.Commit("feature", "Add a", map[string]*File{"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\n")}}); err != nil {
		t.Fatal(err)
	}
	pr, err := repo.OpenPullRequest(PROptions{Head: "feature", Base: "snapshot", Title: "Add a", User: "mallory", Fork: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := gh.PullRequests.Get(ctx, "storage-org", "package-storage", pr.Number)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetHead().GetRepo().GetFullName() != "mallory/package-storage" || !got.GetHead().GetRepo().GetFork() ||
		got.GetHead().GetLabel() != "mallory:feature" || got.GetBase().GetRepo().GetFullName() != "storage-org/package-storage" {
		t.Errorf("fork PR head = %s in %s, base in %s", got.GetHead().GetLabel(), got.GetHead().GetRepo().GetFullName(), got.GetBase().GetRepo().GetFullName())
	}
	listed, _, err := gh.PullRequests.List(ctx, "storage-org", "package-storage", &github.PullRequestListOptions{Head: "mallory:feature"})
	if err != nil || len(listed) != 1 {
		t.Errorf("list by head mallory:feature = %d PRs (%v), want 1", len(listed), err)
	}
	run, _, err := gh.Checks.CreateCheckRun(ctx, "storage-org", "package-storage", github.CreateCheckRunOptions{
		Name: "storage-policy", HeadSHA: pr.HeadSHA, Conclusion: github.String("failure"),
		Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.PullRequests) != 0 {
		t.Errorf("run on a fork PR's head lists %d pull requests, want none", len(run.PullRequests))
	}
	if err := repo.RerequestCheckRun(run.GetID()); err != nil {
		t.Fatal(err)
	}
	ds := s.Deliveries()
	if len(ds) != 2 || ds[0].Event != "pull_request" || ds[1].Event != "check_run" {
		t.Fatalf("deliveries = %v, want pull_request then check_run", deliveryKinds(ds))
	}
	var ev github.CheckRunEvent
	if err := json.Unmarshal(ds[1].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetCheckRun().PullRequests == nil || len(ev.GetCheckRun().PullRequests) != 0 ||
		len(ev.GetCheckRun().GetCheckSuite().PullRequests) != 0 || ev.GetCheckRun().GetHeadSHA() != pr.HeadSHA {
		t.Errorf("check_run payload: pull_requests %v, suite pull_requests %v, head %s; want empty lists on %s",
			ev.GetCheckRun().PullRequests, ev.GetCheckRun().GetCheckSuite().PullRequests, ev.GetCheckRun().GetHeadSHA(), pr.HeadSHA)
	}
	c := schemaCompiler(t)
	for _, d := range ds {
		file := d.Event + "-" + d.Action + ".schema.json"
		sch, err := c.Compile("https://schemas.test/" + file)
		if err != nil {
			t.Fatalf("compile %s: %v", file, err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.Body))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s payload does not match its schema: %v", file, err)
		}
	}
}

// TestEditPullRequestReportsChanges: pull_request "edited" names what changed (body, title, base) with the
// previous values, as GitHub's payload does, and matches GitHub's schema.
func TestEditPullRequestReportsChanges(t *testing.T) {
	s, repo := newFake(t)
	if _, err := repo.Commit("feature", "Add a", map[string]*File{"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := repo.CreateBranch("staging", repo.BranchSHA("snapshot")); err != nil {
		t.Fatal(err)
	}
	pr, err := repo.OpenPullRequest(PROptions{Head: "feature", Base: "snapshot", Title: "Add a", Body: "old", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	body, base := "new", "staging"
	if err := repo.EditPullRequest(pr.Number, "alice", PREdit{Body: &body}); err != nil {
		t.Fatal(err)
	}
	if err := repo.EditPullRequest(pr.Number, "alice", PREdit{Base: &base}); err != nil {
		t.Fatal(err)
	}
	if got := repo.PullRequest(pr.Number); got.Base != "staging" || got.Body != "new" {
		t.Fatalf("PR after edits: base %q body %q", got.Base, got.Body)
	}
	ds := s.Deliveries()
	if len(ds) != 3 {
		t.Fatalf("deliveries = %v, want opened and two edited", deliveryKinds(ds))
	}
	c := schemaCompiler(t)
	sch, err := c.Compile("https://schemas.test/pull_request-edited.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"body", "base"}
	for i, d := range ds[1:] {
		var ev github.PullRequestEvent
		if err := json.Unmarshal(d.Body, &ev); err != nil {
			t.Fatal(err)
		}
		ch := ev.GetChanges()
		switch wantKeys[i] {
		case "body":
			if ch.GetBody().GetFrom() != "old" || ch.Title != nil || ch.Base != nil {
				t.Errorf("body edit changes = %+v, want body from \"old\" only", ch)
			}
		case "base":
			if ch.GetBase().GetRef().GetFrom() != "snapshot" || ch.GetBase().GetSHA().GetFrom() != repo.BranchSHA("snapshot") || ch.Body != nil {
				t.Errorf("base edit changes = %+v, want base from snapshot only", ch)
			}
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.Body))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("edited payload does not match its schema: %v", err)
		}
	}
}
