package rollout

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// workflowSchema compiles SchemaStore's GitHub Actions workflow schema (testdata/github-workflow-schema,
// source and licence there).
func workflowSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile("testdata/github-workflow-schema/github-workflow.json")
	if err != nil {
		t.Fatalf("read the workflow schema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse the workflow schema: %v", err)
	}
	c := jsonschema.NewCompiler()
	const url = "https://json.schemastore.org/github-workflow.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatalf("add the workflow schema: %v", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile the workflow schema: %v", err)
	}
	return s
}

// yamlToJSONValue decodes a YAML document into the values JSON Schema validates (maps with string keys,
// numbers as json.Number), as GitHub reads a workflow file.
func yamlToJSONValue(t *testing.T, name string, text []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(text, &v); err != nil {
		t.Fatalf("%s: not YAML: %v", name, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: YAML that is no JSON value: %v", name, err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// callerExample returns the workflow a storage repository copies, from the header comment of a reusable
// workflow: the lines indented "#   ", without that prefix ("" when there are none).
func callerExample(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "#   "); ok {
			b.WriteString(rest + "\n")
		}
	}
	return b.String()
}

// TestWorkflowsMatchTheActionsSchema validates every workflow in .github/workflows, and the caller workflow
// each reusable one documents in its header, against the GitHub Actions workflow schema.
func TestWorkflowsMatchTheActionsSchema(t *testing.T) {
	schema := workflowSchema(t)
	files, err := filepath.Glob("../.github/workflows/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows found under .github/workflows (%v)", err)
	}
	examples := 0
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			if err := schema.Validate(yamlToJSONValue(t, name, text)); err != nil {
				t.Errorf("%s does not match the workflow schema:\n%v", name, err)
			}
		})
		if ex := callerExample(string(text)); ex != "" {
			examples++
			t.Run(name+" caller example", func(t *testing.T) {
				if err := schema.Validate(yamlToJSONValue(t, name+" caller example", []byte(ex))); err != nil {
					t.Errorf("the caller example in %s does not match the workflow schema:\n%v\n%s", name, err, ex)
				}
			})
		}
	}
	if examples < 2 {
		t.Errorf("found %d caller examples in the reusable workflows' headers, want one in each of distribution-build.yml and distribution-deploy.yml", examples)
	}
}

// TestWorkflowSchemaRejects makes sure the schema check is not vacuous: workflows GitHub refuses fail it.
func TestWorkflowSchemaRejects(t *testing.T) {
	schema := workflowSchema(t)
	tests := []struct{ name, yml string }{
		{"no jobs", "on: push\n"},
		{"unknown trigger", "on: pushed\njobs: {a: {runs-on: ubuntu-latest, steps: [{run: x}]}}\n"},
		{"step with uses and run", "on: push\njobs: {a: {runs-on: ubuntu-latest, steps: [{uses: actions/checkout@v4, run: x}]}}\n"},
		{"unknown job key", "on: push\njobs: {a: {runs-on: ubuntu-latest, timeout: 5, steps: [{run: x}]}}\n"},
		{"bad permission level", "on: push\npermissions: {contents: admin}\njobs: {a: {runs-on: ubuntu-latest, steps: [{run: x}]}}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := schema.Validate(yamlToJSONValue(t, tc.name, []byte(tc.yml))); err == nil {
				t.Errorf("schema accepted %q", tc.yml)
			}
		})
	}
}
