package authoraction

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/storagebot/storagebot/internal/storagegen"
)

// actionDir is the action under test, relative to this package.
const actionDir = "../../.github/actions/storage-policy"

// action is the part of action.yml the runner reads for a composite action.
type action struct {
	Inputs map[string]struct {
		Default string `yaml:"default"`
	} `yaml:"inputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			If    string            `yaml:"if"`
			Uses  string            `yaml:"uses"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

func readAction(t *testing.T) action {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(actionDir, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a action
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("parse action.yml: %v", err)
	}
	return a
}

var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// evaluate substitutes the ${{ }} expressions of s the way the runner does for the plain context paths
// action.yml uses (github.*, inputs.*). Any other expression fails the test rather than pass unevaluated.
func evaluate(t *testing.T, s string, ctx map[string]any) string {
	t.Helper()
	return expression.ReplaceAllStringFunc(s, func(m string) string {
		path := expression.FindStringSubmatch(m)[1]
		if !regexp.MustCompile(`^[a-z_]+(\.[a-z_-]+)+$`).MatchString(path) {
			t.Fatalf("expression %q: the test evaluates only context paths", m)
		}
		var v any = ctx
		for _, key := range strings.Split(path, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("expression %q: %s is not an object", m, key)
			}
			if v, ok = obj[key]; !ok {
				t.Fatalf("expression %q: no %s in the context", m, key)
			}
		}
		switch v := v.(type) {
		case string:
			return v
		case float64:
			return fmt.Sprint(int64(v))
		default:
			t.Fatalf("expression %q: %T is not a string or number", m, v)
			return ""
		}
	})
}

// origin is the storage repository on "GitHub": a generated storage (pkg000…pkg002 at 1.0.0 and 1.1.0 on
// every channel; HEAD, the default branch, is production) that serves reachable commits by SHA, as GitHub
// does for actions/checkout.
type origin struct {
	repo *storagegen.Repo
	url  string
}

func newOrigin(t *testing.T) origin {
	t.Helper()
	repo, err := storagegen.Generate(filepath.Join(t.TempDir(), "origin.git"), storagegen.Options{Bare: true})
	if err != nil {
		t.Fatal(err)
	}
	git(t, repo.Dir, "config", "uploadpack.allowReachableSHA1InWant", "true")
	return origin{repo: repo, url: "file://" + repo.Dir}
}

// pullRequest is a PR on origin: its head commit and the merge commit GitHub keeps at refs/pull/N/merge.
type pullRequest struct {
	number      int
	base, title string
	head, merge string
}

// openPR makes the merge commit of head into base (as GitHub does for refs/pull/N/merge) and stores it there.
func (o origin) openPR(t *testing.T, number int, base, headBranch, title string) pullRequest {
	t.Helper()
	head := git(t, o.repo.Dir, "rev-parse", "refs/heads/"+headBranch)
	baseSHA := git(t, o.repo.Dir, "rev-parse", "refs/heads/"+base)
	tree := strings.Fields(git(t, o.repo.Dir, "merge-tree", "--write-tree", baseSHA, head))[0]
	merge := git(t, o.repo.Dir, "-c", "user.name=GitHub", "-c", "user.email=noreply@github.com",
		"commit-tree", tree, "-p", baseSHA, "-p", head, "-m", fmt.Sprintf("Merge %s into %s", head, baseSHA))
	git(t, o.repo.Dir, "update-ref", fmt.Sprintf("refs/pull/%d/head", number), head)
	git(t, o.repo.Dir, "update-ref", fmt.Sprintf("refs/pull/%d/merge", number), merge)
	return pullRequest{number: number, base: base, title: title, head: head, merge: merge}
}

// checkout makes the workspace actions/checkout makes for a pull_request event: the merge commit, detached,
// fetched at depth (0: the whole history and every branch, as fetch-depth: 0 does).
func (o origin) checkout(t *testing.T, pr pullRequest, depth int) string {
	t.Helper()
	ws := filepath.Join(t.TempDir(), "workspace")
	git(t, "", "init", "-q", ws)
	git(t, ws, "remote", "add", "origin", o.url)
	mergeRef := fmt.Sprintf("refs/remotes/pull/%d/merge", pr.number)
	if depth > 0 {
		git(t, ws, "fetch", "-q", "--no-tags", "--prune", fmt.Sprintf("--depth=%d", depth), "origin", "+"+pr.merge+":"+mergeRef)
	} else {
		git(t, ws, "fetch", "-q", "--prune", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*", "+"+pr.merge+":"+mergeRef)
	}
	git(t, ws, "checkout", "-q", "--detach", mergeRef)
	return ws
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// result is what one run of the action left: its exit status, the job summary and the log.
type result struct {
	status  int
	summary string
	log     string
}

// runAction runs action.yml's steps for a pull_request event of pr on the workspace ws, with inputs
// overriding the defaults: the run steps with their env evaluated, the uses steps skipped (the one there sets
// Go up, and this machine has it).
func runAction(t *testing.T, o origin, pr pullRequest, ws string, inputs map[string]string) result {
	t.Helper()
	a := readAction(t)
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using %q, want composite", a.Runs.Using)
	}
	actionPath, err := filepath.Abs(actionDir)
	if err != nil {
		t.Fatal(err)
	}
	defaultBranch := strings.TrimPrefix(git(t, o.repo.Dir, "symbolic-ref", "HEAD"), "refs/heads/")
	event := map[string]any{
		"action": "opened",
		"number": pr.number,
		"pull_request": map[string]any{
			"number": pr.number,
			"title":  pr.title,
			"head":   map[string]any{"sha": pr.head, "ref": "feature"},
			"base":   map[string]any{"ref": pr.base},
		},
		"repository": map[string]any{"default_branch": defaultBranch, "full_name": "acme/package-storage"},
	}
	eventJSON, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	var eventAny map[string]any
	if err := json.Unmarshal(eventJSON, &eventAny); err != nil {
		t.Fatal(err)
	}
	runner := t.TempDir()
	eventPath := filepath.Join(runner, "event.json")
	summaryPath := filepath.Join(runner, "step_summary.md")
	for path, data := range map[string][]byte{eventPath: eventJSON, summaryPath: nil} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in := map[string]any{}
	for name, spec := range a.Inputs {
		in[name] = spec.Default
	}
	for name, v := range inputs {
		if _, ok := in[name]; !ok {
			t.Fatalf("input %q is not declared in action.yml", name)
		}
		in[name] = v
	}
	ctx := map[string]any{
		"github": map[string]any{"event": eventAny, "action_path": actionPath, "event_name": "pull_request"},
		"inputs": in,
	}
	env := append(os.Environ(),
		"CI=true",
		"GITHUB_ACTIONS=true",
		"GITHUB_EVENT_NAME=pull_request",
		"GITHUB_EVENT_PATH="+eventPath,
		"GITHUB_BASE_REF="+pr.base,
		"GITHUB_HEAD_REF=feature",
		fmt.Sprintf("GITHUB_REF=refs/pull/%d/merge", pr.number),
		"GITHUB_SHA="+pr.merge,
		"GITHUB_REPOSITORY=acme/package-storage",
		"GITHUB_WORKSPACE="+ws,
		"GITHUB_STEP_SUMMARY="+summaryPath,
		"GITHUB_ACTION_PATH="+actionPath,
		"RUNNER_TEMP="+runner,
	)
	res := result{}
	ran := false
	for i, step := range a.Runs.Steps {
		if step.Uses != "" {
			continue
		}
		if step.Shell != "bash" || step.If != "" {
			t.Fatalf("step %d: shell %q, if %q: the test runs unconditional bash steps", i, step.Shell, step.If)
		}
		script := filepath.Join(runner, fmt.Sprintf("step-%d.sh", i))
		if err := os.WriteFile(script, []byte(evaluate(t, step.Run, ctx)), 0o644); err != nil {
			t.Fatal(err)
		}
		stepEnv := append([]string(nil), env...)
		for k, v := range step.Env {
			stepEnv = append(stepEnv, k+"="+evaluate(t, v, ctx))
		}
		// The runner's command line for shell: bash.
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir, cmd.Env = ws, stepEnv
		out, err := cmd.CombinedOutput()
		res.log += string(out)
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			res.status = ee.ExitCode()
		case err != nil:
			t.Fatalf("step %d: %v", i, err)
		}
		ran = true
		if res.status != 0 {
			break
		}
	}
	if !ran {
		t.Fatal("action.yml has no run step")
	}
	summary, err := os.ReadFile(summaryPath)
	if err != nil {
		t.Fatal(err)
	}
	res.summary = string(summary)
	return res
}

func TestActionOnPullRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds storagebot and runs git: not in -short")
	}
	o := newOrigin(t)
	repo := o.repo

	// A PR into snapshot adding a new version: passes.
	must(t, repo.Branch("add", "snapshot"))
	_, err := repo.AddVersion("add", "pkg000", "2.0.0")
	must(t, err)
	add := o.openPR(t, 1, "snapshot", "add", "[snapshot] Add pkg000 2.0.0")

	// The default branch (production) holds the configuration. A PR into production edits a released version
	// and breaks the configuration in its own head, which must not count (the App reads the default branch's);
	// it is branched three production commits ago, so a depth-1 checkout holds neither the merge base nor the
	// head's history. It fails with overwrite.
	_, err = repo.Commit("production", "configure", storagegen.Put(".github/storagebot.yml", []byte("fix_titles: false\n")))
	must(t, err)
	must(t, repo.Branch("edit", "production"))
	_, err = repo.Commit("edit", "edit", storagegen.Put("packages/pkg001/1.0.0/docs/README.md", []byte("edited after release\n")),
		storagegen.Put(".github/storagebot.yml", []byte("channels: 3\n")))
	must(t, err)
	for i := 0; i < 3; i++ {
		_, err = repo.Commit("production", fmt.Sprintf("CI change %d", i), storagegen.Put(".ci/step", []byte(fmt.Sprint(i))))
		must(t, err)
	}
	edit := o.openPR(t, 2, "production", "edit", "[production] Fix the pkg001 README")

	// A PR adding a version to a branch that is no channel: nothing to check.
	must(t, repo.Branch("docs", "production"))
	must(t, repo.Branch("docs-edit", "docs"))
	_, err = repo.Commit("docs-edit", "docs", storagegen.Put("README.md", []byte("docs\n")))
	must(t, err)
	docs := o.openPR(t, 3, "docs", "docs-edit", "Docs")

	tests := []struct {
		name   string
		pr     pullRequest
		depth  int // of the checkout; 0 = the whole history
		inputs map[string]string
		status int
		want   []string // in the job summary
		log    []string
	}{
		{
			name:   "passing PR, full checkout",
			pr:     add,
			status: 0,
			want: []string{
				"## ✅ storage-policy: The changed version passes",
				"| pkg000 | 2.0.0 | added | ✅ pass |",
				"| base | `refs/remotes/origin/snapshot` |",
				"| head | `refs/remotes/pull/1/head` | `" + add.head + "` |",
				"| config | `.github/storagebot.yml` at `refs/remotes/origin/production` |",
			},
		},
		{
			name:   "failing PR, depth-1 checkout deepened step by step",
			pr:     edit,
			depth:  1,
			inputs: map[string]string{"fetch-depth": "1"},
			status: 1,
			want: []string{
				"## ❌ storage-policy: 1 error in 1 changed version",
				"| pkg001 | 1.0.0 | modified | ❌ 1 error |",
				"**overwrite** (error)",
				"Fix the errors above and push again.",
				"| head | `refs/remotes/pull/2/head` | `" + edit.head + "` |",
				"| channel snapshot | `refs/remotes/origin/snapshot` |",
				"| config | `.github/storagebot.yml` at `refs/remotes/origin/production` |",
			},
			log: []string{
				"fetching 4.",
				"::error title=storage-policy::storage-policy: 1 error in 1 changed version",
			},
		},
		{
			name:   "PR into a branch that is no channel",
			pr:     docs,
			depth:  1,
			status: 0,
			want:   []string{"## storage-policy: nothing to check", "targets `docs`, which is no channel branch"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws := o.checkout(t, tc.pr, tc.depth)
			res := runAction(t, o, tc.pr, ws, tc.inputs)
			if res.status != tc.status {
				t.Fatalf("exit status %d, want %d; log:\n%s\nsummary:\n%s", res.status, tc.status, res.log, res.summary)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.summary, w) {
					t.Errorf("job summary lacks %q; summary:\n%s", w, res.summary)
				}
			}
			for _, w := range tc.log {
				if !strings.Contains(res.log, w) {
					t.Errorf("log lacks %q; log:\n%s", w, res.log)
				}
			}
			if got := git(t, ws, "rev-parse", "HEAD"); got != tc.pr.merge {
				t.Errorf("HEAD moved to %s, want the checked-out merge commit %s", got, tc.pr.merge)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
