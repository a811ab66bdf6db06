package githubfake

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestPushTagEmitsGitHubsTagPush pushes tags and checks the push events against GitHub's push schema and
// the facts a receiver reads: the tag ref, created, the tagged commit, and base_ref only for a branch head.
func TestPushTagEmitsGitHubsTagPush(t *testing.T) {
	s, repo := newFake(t)
	old := repo.BranchSHA("snapshot")
	if err := repo.CreateBranch("production", old); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Commit("snapshot", "Move on", map[string]*File{"README.md": {Content: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	head, err := repo.Commit("production", "Add a", map[string]*File{"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.PushTag("8.12.0", head, "alice"); err != nil {
		t.Fatalf("push tag: %v", err)
	}
	if err := repo.PushTag("8.11.0-rc1", old, "alice"); err != nil {
		t.Fatalf("push tag: %v", err)
	}
	if err := repo.PushTag("8.12.0", old, "alice"); err == nil {
		t.Error("pushing an existing tag again was accepted; git refuses it without --force")
	}
	if err := repo.PushTag("8.13.0", "0123456789012345678901234567890123456789", "alice"); err == nil {
		t.Error("tagging a commit that does not exist was accepted")
	}
	sch, err := schemaCompiler(t).Compile("https://schemas.test/push-event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	type tagPush struct {
		Ref        string  `json:"ref"`
		Before     string  `json:"before"`
		After      string  `json:"after"`
		Created    bool    `json:"created"`
		BaseRef    *string `json:"base_ref"`
		HeadCommit struct {
			ID string `json:"id"`
		} `json:"head_commit"`
		Commits []any `json:"commits"`
	}
	var got []tagPush
	for _, d := range s.Deliveries() {
		if d.Event != "push" {
			continue
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.Body))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("tag push does not match push-event.schema.json: %v", err)
		}
		var p tagPush
		if err := json.Unmarshal(d.Body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Ref != "refs/heads/production" {
			got = append(got, p)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d tag pushes delivered, want 2", len(got))
	}
	if p := got[0]; p.Ref != "refs/tags/8.12.0" || !p.Created || p.Before != "0000000000000000000000000000000000000000" ||
		p.After != head || p.HeadCommit.ID != head || p.BaseRef == nil || *p.BaseRef != "refs/heads/production" || len(p.Commits) != 0 {
		t.Errorf("tag push on the production head = %+v", p)
	}
	if p := got[1]; p.Ref != "refs/tags/8.11.0-rc1" || p.HeadCommit.ID != old || p.BaseRef != nil {
		t.Errorf("tag push on an older commit = %+v (base_ref must be null: no branch has it as head)", p)
	}
	if tags := repo.Tags(); tags["8.12.0"] != head || tags["8.11.0-rc1"] != old {
		t.Errorf("tags = %v", tags)
	}
}
