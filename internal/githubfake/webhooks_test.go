package githubfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaCompiler loads testdata/webhook-schemas with $id removed, so that relative $refs resolve
// by file location: event schemas sit at the root, common ones under common/.
func schemaCompiler(t *testing.T) *jsonschema.Compiler {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	// jsonschema v6 checks uri-template per path segment, so GitHub's own "{/sha}" templates fail it;
	// check only that braces pair up, across the whole string.
	c.RegisterFormat(&jsonschema.Format{Name: "uri-template", Validate: balancedBraces})
	dir := "testdata/webhook-schemas"
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".schema.json") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return err
		}
		delete(doc.(map[string]any), "$id")
		rel, _ := filepath.Rel(dir, path)
		url := "https://schemas.test/" + filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, "common") {
			url = "https://schemas.test/" + strings.ReplaceAll(filepath.ToSlash(rel), "/", "-")
		}
		return c.AddResource(url, doc)
	})
	if err != nil {
		t.Fatalf("load webhook schemas: %v", err)
	}
	return c
}

func balancedBraces(v any) error {
	str, ok := v.(string)
	if !ok {
		return nil
	}
	open := false
	for _, ch := range str {
		switch {
		case ch == '{' && !open:
			open = true
		case ch == '}' && open:
			open = false
		case ch == '{' || ch == '}':
			return fmt.Errorf("unbalanced braces in %q", str)
		}
	}
	if open {
		return fmt.Errorf("unclosed brace in %q", str)
	}
	return nil
}

// TestEmittedPayloadsMatchSchemas drives a flow that emits every kind of webhook the fake sends and
// validates each payload against GitHub's schema for its event and action.
func TestEmittedPayloadsMatchSchemas(t *testing.T) {
	ctx := context.Background()
	s, repo := newFake(t)
	repo.SetPermission("alice", "write")
	gh := newClient(t, s, s.PrivateKeyPEM())

	s.Ping(repo)
	if _, err := repo.Commit("add-a", "Add a", map[string]*File{"packages/a/1.0.0/manifest.yml": {Content: []byte("name: a\n")}}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	pr, err := repo.OpenPullRequest(PROptions{Head: "add-a", Base: "snapshot", Title: "Add a", User: "alice"})
	if err != nil {
		t.Fatalf("open PR: %v", err)
	}
	head, err := repo.PushToPullRequest(pr.Number, "Fix a", map[string]*File{"packages/a/1.0.0/run.sh": {Content: []byte("#!/bin/sh\n"), Mode: "100755"}})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if err := repo.EditPullRequestTitle(pr.Number, "[snapshot] Add a"); err != nil {
		t.Fatalf("edit title: %v", err)
	}
	cm, err := repo.Comment(pr.Number, "alice", "/recheck")
	if err != nil {
		t.Fatalf("comment: %v", err)
	}
	if err := repo.EditComment(cm.ID, "alice", "/recheck please"); err != nil {
		t.Fatalf("edit comment: %v", err)
	}
	issue := repo.OpenIssue("Promote a", "", "alice")
	if _, err := repo.Comment(issue, "bob", "/promote a@1.0.0"); err != nil {
		t.Fatalf("comment on issue: %v", err)
	}
	run, _, err := gh.Checks.CreateCheckRun(ctx, "storage-org", "package-storage", github.CreateCheckRunOptions{
		Name: "storage-policy", HeadSHA: head, Conclusion: github.String("success"),
		Output: &github.CheckRunOutput{Title: github.String("ok"), Summary: github.String("all good")},
	})
	if err != nil {
		t.Fatalf("create check run: %v", err)
	}
	if err := repo.RerequestCheckRun(run.GetID()); err != nil {
		t.Fatalf("rerequest: %v", err)
	}
	if _, err := repo.MergePullRequest(pr.Number, "squash"); err != nil {
		t.Fatalf("merge: %v", err)
	}

	ds := s.Deliveries()
	want := []string{
		"ping", "pull_request.opened", "push", "pull_request.synchronize", "pull_request.edited",
		"issue_comment.created", "issue_comment.edited", "issue_comment.created", "check_run.rerequested",
		"push", "pull_request.closed",
	}
	if diff := cmp.Diff(want, deliveryKinds(ds)); diff != "" {
		t.Fatalf("deliveries (-want +got):\n%s", diff)
	}
	c := schemaCompiler(t)
	for i, d := range ds {
		t.Run(want[i], func(t *testing.T) {
			if d.Status != http.StatusAccepted {
				t.Errorf("receiver answered %d, want 202 (signature and headers accepted)", d.Status)
			}
			file := d.Event + "-" + d.Action + ".schema.json"
			if d.Action == "" {
				file = d.Event + "-event.schema.json"
			}
			sch, err := c.Compile("https://schemas.test/" + file)
			if err != nil {
				t.Fatalf("compile %s: %v", file, err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.Body))
			if err != nil {
				t.Fatalf("parse payload: %v", err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Errorf("payload does not match %s: %v", file, err)
			}
		})
	}

	var onPR, onIssue struct {
		Issue struct {
			PullRequest *json.RawMessage `json:"pull_request"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(ds[5].Body, &onPR); err != nil || onPR.Issue.PullRequest == nil {
		t.Errorf("comment on a PR: issue.pull_request missing (%v)", err)
	}
	if err := json.Unmarshal(ds[7].Body, &onIssue); err != nil || onIssue.Issue.PullRequest != nil {
		t.Errorf("comment on an issue: issue.pull_request present (%v)", err)
	}
}

func TestDeliverRaw(t *testing.T) {
	s, _ := newFake(t)
	body := []byte(`{"action":"opened"}`)
	tests := []struct {
		name      string
		signature string
		want      int
	}{
		{"valid signature", s.sign(body), http.StatusAccepted},
		{"wrong signature", "sha256=00", http.StatusUnauthorized},
		{"no signature", "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.DeliverRaw("pull_request", "fixed-id", body, tc.signature)
			if err != nil {
				t.Fatalf("deliver: %v", err)
			}
			if got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
	ds := s.Deliveries()
	if len(ds) != 3 || ds[0].ID != "fixed-id" || ds[0].Action != "opened" {
		t.Errorf("deliveries = %+v, want three with the given ID and action", ds)
	}
}
