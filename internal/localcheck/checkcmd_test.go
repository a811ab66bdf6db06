package localcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storagebot/storagebot/internal/storagegen"
)

// scenario is a generated storage (pkg000…pkg002 at 1.0.0 and 1.1.0 on every channel) with these branches:
//   - add: snapshot plus pkg000 2.0.0
//   - edit-prod: production with a file of pkg001 1.0.0 changed
//   - promote: staging plus pkg000 2.0.0 copied from "add" (not from the snapshot branch)
type scenario struct {
	repo *storagegen.Repo
	// addHead is the head of branch add: the state holding pkg000 2.0.0 as promoted.
	addHead string
}

func newScenario(t *testing.T, bare bool) scenario {
	t.Helper()
	repo, err := storagegen.Generate(t.TempDir(), storagegen.Options{Bare: bare})
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { return repo.Branch("add", "snapshot") },
		func() error { _, err := repo.AddVersion("add", "pkg000", "2.0.0"); return err },
		func() error { return repo.Branch("edit-prod", "production") },
		func() error {
			_, err := repo.ModifyFile("edit-prod", "packages/pkg001/1.0.0/docs/README.md", []byte("edited\n"))
			return err
		},
		func() error { return repo.Branch("promote", "staging") },
		func() error { _, err := repo.CopyVersion("add", "promote", "pkg000", "2.0.0"); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	head, err := repo.Head("add")
	if err != nil {
		t.Fatal(err)
	}
	return scenario{repo: repo, addHead: head}
}

// jsonReport is the --format json contract, findings without their prose.
type jsonReport struct {
	Channel    string `json:"channel"`
	Base       string `json:"base"`
	Head       string `json:"head"`
	Conclusion string `json:"conclusion"`
	Changes    []struct {
		Package string `json:"package"`
		Version string `json:"version"`
		Change  string `json:"change"`
	} `json:"changes"`
	Findings []struct {
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
		Package  string `json:"package"`
		Version  string `json:"version"`
		Path     string `json:"path"`
		Message  string `json:"message"`
	} `json:"findings"`
}

// summary is what a test states about a report: one line per change and per finding.
func summary(rep jsonReport) []string {
	out := []string{"channel " + rep.Channel, "conclusion " + rep.Conclusion}
	for _, c := range rep.Changes {
		out = append(out, "change "+c.Package+"@"+c.Version+" "+c.Change)
	}
	for _, f := range rep.Findings {
		out = append(out, "finding "+f.Severity+" "+f.Rule+" "+f.Package+"@"+f.Version+" "+f.Path)
	}
	return out
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRunJSON(t *testing.T) {
	tests := []struct {
		name string
		bare bool
		// args after --repo; {add} is replaced by the head of branch add.
		args     []string
		wantCode int
		want     []string
		// wantBase and wantHead are the revisions whose SHAs the report must carry.
		wantBase, wantHead string
	}{
		{
			name:     "version added to snapshot",
			args:     []string{"--channel", "snapshot", "--base", "snapshot", "--head", "add"},
			want:     []string{"channel snapshot", "conclusion success", "change pkg000@2.0.0 added"},
			wantBase: "snapshot", wantHead: "add",
		},
		{
			name:     "bare repository",
			bare:     true,
			args:     []string{"--channel", "snapshot", "--base", "snapshot", "--head", "add"},
			want:     []string{"channel snapshot", "conclusion success", "change pkg000@2.0.0 added"},
			wantBase: "snapshot", wantHead: "add",
		},
		{
			name:     "production version edited",
			args:     []string{"--channel", "production", "--base", "production", "--head", "edit-prod"},
			wantCode: ExitFailure,
			want: []string{"channel production", "conclusion failure", "change pkg001@1.0.0 modified",
				"finding error overwrite pkg001@1.0.0 packages/pkg001/1.0.0"},
			wantBase: "production", wantHead: "edit-prod",
		},
		{
			name:     "promotion whose source is not in the snapshot branch",
			args:     []string{"--channel", "staging", "--base", "staging", "--head", "promote"},
			wantCode: ExitFailure,
			want: []string{"channel staging", "conclusion failure", "change pkg000@2.0.0 added",
				"finding error promotion-source pkg000@2.0.0 packages/pkg000/2.0.0"},
			wantBase: "staging", wantHead: "promote",
		},
		{
			name:     "promotion with the snapshot state pinned by --ref",
			args:     []string{"--channel", "staging", "--base", "staging", "--head", "promote", "--ref", "snapshot={add}"},
			want:     []string{"channel staging", "conclusion success", "change pkg000@2.0.0 added"},
			wantBase: "staging", wantHead: "promote",
		},
		{
			name:     "nothing changed",
			args:     []string{"--channel", "staging", "--base", "staging", "--head", "staging"},
			want:     []string{"channel staging", "conclusion success"},
			wantBase: "staging", wantHead: "staging",
		},
		{
			name:     "title without the branch prefix",
			args:     []string{"--channel", "snapshot", "--base", "snapshot", "--head", "add", "--title", "Add pkg000"},
			wantCode: ExitFailure,
			want:     []string{"channel snapshot", "conclusion failure", "change pkg000@2.0.0 added", "finding error title-prefix @ "},
			wantBase: "snapshot", wantHead: "add",
		},
		{
			name:     "title with the branch prefix",
			args:     []string{"--channel", "snapshot", "--base", "snapshot", "--head", "add", "--title", "[snapshot] Add pkg000"},
			want:     []string{"channel snapshot", "conclusion success", "change pkg000@2.0.0 added"},
			wantBase: "snapshot", wantHead: "add",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := newScenario(t, tc.bare)
			args := []string{"--repo", sc.repo.Dir, "--format", "json"}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "{add}", sc.addHead))
			}
			code, stdout, stderr := run(t, args...)
			if code != tc.wantCode {
				t.Fatalf("exit status %d, want %d; stderr:\n%s\nstdout:\n%s", code, tc.wantCode, stderr, stdout)
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
			}
			var gotKeys []string
			for k := range keys {
				gotKeys = append(gotKeys, k)
			}
			sort.Strings(gotKeys)
			if diff := cmp.Diff([]string{"base", "changes", "channel", "conclusion", "findings", "head", "resolved"}, gotKeys); diff != "" {
				t.Errorf("JSON keys (-want +got):\n%s", diff)
			}
			for _, k := range []string{"changes", "findings"} {
				if string(keys[k]) == "null" {
					t.Errorf("%s is null, want []", k)
				}
			}
			var rep jsonReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, summary(rep)); diff != "" {
				t.Errorf("report (-want +got):\n%s\nfull output:\n%s", diff, stdout)
			}
			for _, f := range rep.Findings {
				if f.Message == "" {
					t.Errorf("finding %s has no message", f.Rule)
				}
			}
			for _, side := range []struct{ got, rev string }{{rep.Base, tc.wantBase}, {rep.Head, tc.wantHead}} {
				want, err := sc.repo.Head(side.rev)
				if err != nil {
					t.Fatal(err)
				}
				if side.got != want {
					t.Errorf("report names commit %s, want %s (head of %s)", side.got, want, side.rev)
				}
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	sc := newScenario(t, false)
	dir := sc.repo.Dir
	badConfig := filepath.Join(t.TempDir(), "storagebot.yml")
	if err := os.WriteFile(badConfig, []byte("channels: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		// wantStderr are fragments the message must contain, notStderr one it must not.
		wantStderr []string
		notStderr  string
	}{
		{name: "unknown channel", args: []string{"--repo", dir, "--channel", "nightly", "--base", "snapshot", "--head", "add"},
			wantStderr: []string{`--channel "nightly"`, "snapshot, staging, production"}},
		{name: "unknown base", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "no-such-branch", "--head", "add"},
			wantStderr: []string{`--base "no-such-branch"`}},
		{name: "unknown head", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot", "--head", "deadbeef"},
			wantStderr: []string{`--head "deadbeef"`}},
		{name: "unknown pinned revision", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot", "--head", "add", "--ref", "staging=nope"},
			wantStderr: []string{"--ref staging=nope"}},
		{name: "pin of an unknown channel", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot", "--head", "add", "--ref", "nightly=add"},
			wantStderr: []string{"--ref nightly", `unknown channel "nightly"`}},
		{name: "pin of the target channel", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot", "--head", "add", "--ref", "snapshot=add"},
			wantStderr: []string{"--ref snapshot", "--base"}},
		{name: "malformed pin", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot", "--head", "add", "--ref", "staging"},
			wantStderr: []string{"-ref", "CHANNEL=REV"}},
		{name: "missing flag", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot"},
			wantStderr: []string{"missing --head"}},
		{name: "bad format", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot", "--head", "add", "--format", "yaml"},
			wantStderr: []string{`--format "yaml"`}},
		{name: "not a repository", args: []string{"--repo", t.TempDir(), "--channel", "snapshot", "--base", "snapshot", "--head", "add"},
			wantStderr: []string{"--repo"}},
		{name: "invalid --config", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot", "--head", "add", "--config", badConfig},
			wantStderr: []string{"--config " + badConfig, badConfig + ":1:", "channels"}, notStderr: ".github/storagebot.yml"},
		{name: "stray argument", args: []string{"--repo", dir, "--channel", "snapshot", "--base", "snapshot", "--head", "add", "extra"},
			wantStderr: []string{`"extra"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tc.args...)
			if code != ExitUsage {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", code, ExitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing on a usage error", stdout)
			}
			for _, frag := range tc.wantStderr {
				if !strings.Contains(stderr, frag) {
					t.Errorf("stderr does not name %q:\n%s", frag, stderr)
				}
			}
			if tc.notStderr != "" && strings.Contains(stderr, tc.notStderr) {
				t.Errorf("stderr names %q:\n%s", tc.notStderr, stderr)
			}
		})
	}
}

func TestRunChannelSources(t *testing.T) {
	tests := []struct {
		name string
		// prepare changes the repository before the run.
		prepare    func(t *testing.T, sc scenario)
		wantCode   int
		wantStderr string
	}{
		{
			name: "other channel only as a remote-tracking branch",
			prepare: func(t *testing.T, sc scenario) {
				gitRun(t, sc.repo.Dir, "update-ref", "refs/remotes/origin/production", "refs/heads/production")
				gitRun(t, sc.repo.Dir, "update-ref", "-d", "refs/heads/production")
			},
		},
		{
			name:       "other channel missing",
			prepare:    func(t *testing.T, sc scenario) { gitRun(t, sc.repo.Dir, "update-ref", "-d", "refs/heads/production") },
			wantCode:   ExitUsage,
			wantStderr: "channel production",
		},
		{
			name: "invalid configuration at HEAD",
			prepare: func(t *testing.T, sc scenario) {
				if _, err := sc.repo.Commit("production", "config", storagegen.Put(".github/storagebot.yml", []byte("channels: 3\n"))); err != nil {
					t.Fatal(err)
				}
			},
			wantCode:   ExitUsage,
			wantStderr: ".github/storagebot.yml",
		},
		{
			name: "configuration at HEAD maps channels to other branches",
			prepare: func(t *testing.T, sc scenario) {
				cfg := "channels:\n  - {name: snapshot, branch: snapshot}\n  - {name: staging, branch: staging}\n  - {name: production, branch: prod}\n"
				if _, err := sc.repo.Commit("production", "config", storagegen.Put(".github/storagebot.yml", []byte(cfg))); err != nil {
					t.Fatal(err)
				}
			},
			wantCode:   ExitUsage,
			wantStderr: `channel production: branch "prod" not found`,
		},
		{
			name: "configuration at HEAD maps a channel to an existing branch",
			prepare: func(t *testing.T, sc scenario) {
				cfg := "channels:\n  - {name: snapshot, branch: snapshot}\n  - {name: staging, branch: staging}\n  - {name: production, branch: prod}\n"
				if _, err := sc.repo.Commit("production", "config", storagegen.Put(".github/storagebot.yml", []byte(cfg))); err != nil {
					t.Fatal(err)
				}
				if err := sc.repo.Branch("prod", "production"); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := newScenario(t, false)
			tc.prepare(t, sc)
			code, stdout, stderr := run(t, "--repo", sc.repo.Dir, "--channel", "staging", "--base", "staging", "--head", "promote", "--ref", "snapshot="+sc.addHead)
			if code != tc.wantCode {
				t.Fatalf("exit status %d, want %d; stderr:\n%s\nstdout:\n%s", code, tc.wantCode, stderr, stdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.wantStderr, stderr)
			}
		})
	}
}

func TestRunText(t *testing.T) {
	sc := newScenario(t, false)
	code, stdout, stderr := run(t, "--repo", sc.repo.Dir, "--channel", "production", "--base", "production", "--head", "edit-prod")
	if code != ExitFailure {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", code, ExitFailure, stderr)
	}
	lines := strings.Split(stdout, "\n")
	want := []string{
		"PACKAGE  VERSION  CHANGE    VERDICT",
		"pkg001   1.0.0    modified  error (overwrite)",
		"Findings:",
		"Result: failure (1 error, 0 warnings, 0 notices)",
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			if l == w {
				found = true
			}
		}
		if !found {
			t.Errorf("text output lacks the line %q:\n%s", w, stdout)
		}
	}
}

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
}

// cloneWithEditedBranch is the README's scenario on a real clone: `git clone`, then `git checkout -b bad
// origin/production`, a production manifest edited and committed. origin/HEAD points at production.
func cloneWithEditedBranch(t *testing.T) (dir, bad string) {
	t.Helper()
	sc := newScenario(t, true)
	dir = filepath.Join(t.TempDir(), "clone")
	gitRun(t, sc.repo.Dir, "clone", "-q", sc.repo.Dir, dir)
	gitRun(t, dir, "checkout", "-q", "-b", "bad", "origin/production")
	manifest := filepath.Join(dir, "packages", "pkg001", "1.0.0", "manifest.yml")
	if err := os.WriteFile(manifest, []byte("name: pkg001\nversion: 1.0.0\ntitle: edited in place\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-am", "edit a released manifest")
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.TrimSpace(string(out))
}

// TestRunHeadIsTheCheckedOutCommit: `--head HEAD` is the clone's own HEAD (the edited branch), not
// origin/HEAD, so the edit of a released version fails; the report names what each revision resolved to.
func TestRunHeadIsTheCheckedOutCommit(t *testing.T) {
	dir, bad := cloneWithEditedBranch(t)
	for _, head := range []string{"HEAD", "bad", "@", bad[:10]} {
		t.Run(head, func(t *testing.T) {
			code, stdout, stderr := run(t, "--repo", dir, "--channel", "production", "--base", "origin/production", "--head", head, "--format", "json")
			if code != ExitFailure {
				t.Fatalf("exit status %d, want %d (the edit of pkg001 1.0.0 fails overwrite); stderr:\n%s\nstdout:\n%s", code, ExitFailure, stderr, stdout)
			}
			var rep struct {
				Head     string `json:"head"`
				Resolved struct {
					Base, Head struct{ Rev, Ref, Commit string }
					Channels   map[string]struct{ Rev, Ref, Commit string }
					Config     struct{ Source string }
				}
			}
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Head != bad || rep.Resolved.Head.Commit != bad || rep.Resolved.Head.Rev != head {
				t.Errorf("head resolved to %s (%+v), want %s", rep.Head, rep.Resolved.Head, bad)
			}
			if want := map[string]string{"HEAD": "refs/heads/bad", "bad": "refs/heads/bad", "@": "refs/heads/bad"}[head]; rep.Resolved.Head.Ref != want {
				t.Errorf("head ref = %q, want %q", rep.Resolved.Head.Ref, want)
			}
			if rep.Resolved.Base.Ref != "refs/remotes/origin/production" {
				t.Errorf("base ref = %q, want refs/remotes/origin/production", rep.Resolved.Base.Ref)
			}
			// The clone has no local snapshot or staging branch: origin's are read.
			if got := rep.Resolved.Channels["staging"].Ref; got != "refs/remotes/origin/staging" {
				t.Errorf("staging read from %q, want refs/remotes/origin/staging", got)
			}
		})
	}
	code, stdout, _ := run(t, "--repo", dir, "--channel", "production", "--base", "origin/production", "--head", "HEAD")
	if code != ExitFailure {
		t.Fatalf("text: exit status %d, want %d", code, ExitFailure)
	}
	for _, want := range []string{"head               HEAD = " + bad + " (refs/heads/bad)", "base               origin/production = "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestRunConfigAtHeadOfCheckedOutBranch: the configuration "at HEAD" is read from the checked-out branch.
func TestRunConfigAtHeadOfCheckedOutBranch(t *testing.T) {
	dir, _ := cloneWithEditedBranch(t)
	if err := os.MkdirAll(filepath.Join(dir, ".github"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".github", "storagebot.yml"), []byte("channels: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, dir, "add", ".github")
	gitRun(t, dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "config")
	code, _, stderr := run(t, "--repo", dir, "--channel", "production", "--base", "origin/production", "--head", "HEAD")
	if code != ExitUsage || !strings.Contains(stderr, "invalid configuration at HEAD (refs/heads/bad") {
		t.Fatalf("exit status %d, want %d with the configuration of refs/heads/bad refused; stderr:\n%s", code, ExitUsage, stderr)
	}
}

// TestRunRemoteOnlyBranchHint: git does not resolve a bare channel name to origin's branch; the error says
// which name would work.
func TestRunRemoteOnlyBranchHint(t *testing.T) {
	dir, _ := cloneWithEditedBranch(t)
	code, _, stderr := run(t, "--repo", dir, "--channel", "staging", "--base", "staging", "--head", "HEAD")
	if code != ExitUsage || !strings.Contains(stderr, "did you mean origin/staging?") {
		t.Fatalf("exit status %d, want %d with a hint naming origin/staging; stderr:\n%s", code, ExitUsage, stderr)
	}
}

// TestRunShallowClone: in a depth-1 clone a change on top of a fetched branch is checked; a change whose
// merge base lies past the boundary is refused naming `git fetch --unshallow`.
func TestRunShallowClone(t *testing.T) {
	sc := newScenario(t, true)
	dir := filepath.Join(t.TempDir(), "clone")
	gitRun(t, sc.repo.Dir, "clone", "-q", "--depth", "1", "--no-single-branch", "file://"+sc.repo.Dir, dir)
	gitRun(t, dir, "checkout", "-q", "-b", "edit", "origin/production")
	manifest := filepath.Join(dir, "packages", "pkg001", "1.0.0", "manifest.yml")
	if err := os.WriteFile(manifest, []byte("name: pkg001\nversion: 1.0.0\ntitle: edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-am", "edit")

	code, stdout, stderr := run(t, "--repo", dir, "--channel", "production", "--base", "origin/production", "--head", "HEAD")
	if code != ExitFailure || !strings.Contains(stdout, "pkg001   1.0.0    modified  error (overwrite)") {
		t.Fatalf("exit status %d, want %d with the overwrite of pkg001 1.0.0; stderr:\n%s\nstdout:\n%s", code, ExitFailure, stderr, stdout)
	}
	code, _, stderr = run(t, "--repo", dir, "--channel", "staging", "--base", "origin/staging", "--head", "origin/add")
	if code != ExitUsage || !strings.Contains(stderr, "git fetch --unshallow") {
		t.Fatalf("exit status %d, want %d naming git fetch --unshallow; stderr:\n%s", code, ExitUsage, stderr)
	}
}

// TestRunMarkdown: the check run's summary with a verdict heading, the revisions checked and a command that
// reproduces the check with every revision pinned, and a footer for CI rather than for slash commands.
func TestRunMarkdown(t *testing.T) {
	sc := newScenario(t, false)
	code, stdout, stderr := run(t, "--repo", sc.repo.Dir, "--channel", "production", "--base", "production", "--head", "edit-prod", "--format", "markdown")
	if code != ExitFailure {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", code, ExitFailure, stderr)
	}
	base := strings.TrimSpace(gitOut(t, sc.repo.Dir, "rev-parse", "production"))
	head := strings.TrimSpace(gitOut(t, sc.repo.Dir, "rev-parse", "edit-prod"))
	snapshot := strings.TrimSpace(gitOut(t, sc.repo.Dir, "rev-parse", "snapshot"))
	for _, w := range []string{
		"## ❌ storage-policy: 1 error in 1 changed version\n",
		"| pkg001 | 1.0.0 | modified | ❌ 1 error |",
		"- ❌ **overwrite** (error) in `packages/pkg001/1.0.0`",
		"Fix the errors above and push again.",
		"| base | `production` (`refs/heads/production`) | `" + base + "` |",
		"| config | built-in defaults | |",
		"`storagebot check --repo . --channel production --base " + base + " --head " + head + " --ref snapshot=" + snapshot,
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("markdown lacks %q:\n%s", w, stdout)
		}
	}
	if strings.Contains(stdout, "/recheck") {
		t.Errorf("markdown offers /recheck, which only the App answers:\n%s", stdout)
	}
}

// TestRunConfigRevAndListChannels: --config-rev reads the configuration at a revision other than HEAD (the
// default branch, as the App does), and --list-channels prints its channels and branches.
func TestRunConfigRevAndListChannels(t *testing.T) {
	sc := newScenario(t, false)
	cfg := "channels:\n  - {name: snapshot, branch: snapshot}\n  - {name: staging, branch: staging}\n  - {name: production, branch: prod}\n"
	if _, err := sc.repo.Commit("main", "config", storagegen.Put(".github/storagebot.yml", []byte(cfg))); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "--repo", sc.repo.Dir, "--config-rev", "main", "--list-channels")
	if code != ExitSuccess || stdout != "snapshot snapshot\nstaging staging\nproduction prod\n" {
		t.Fatalf("exit status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = run(t, "--repo", sc.repo.Dir, "--list-channels")
	if code != ExitSuccess || stdout != "snapshot snapshot\nstaging staging\nproduction production\n" {
		t.Fatalf("without --config-rev (defaults at HEAD): exit status %d, stdout %q", code, stdout)
	}
	// HEAD's configuration would pass; the one at main names a production branch that does not exist.
	code, _, stderr = run(t, "--repo", sc.repo.Dir, "--channel", "staging", "--base", "staging", "--head", "promote", "--config-rev", "main")
	if code != ExitUsage || !strings.Contains(stderr, `channel production: branch "prod" not found`) {
		t.Fatalf("exit status %d, want %d naming branch prod; stderr:\n%s", code, ExitUsage, stderr)
	}
	if err := sc.repo.Branch("prod", "production"); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run(t, "--repo", sc.repo.Dir, "--channel", "staging", "--base", "staging", "--head", "promote", "--config-rev", "main", "--ref", "snapshot="+sc.addHead)
	if code != ExitSuccess || !strings.Contains(stdout, ".github/storagebot.yml at main = ") {
		t.Fatalf("exit status %d, want %d with the config read at main; stderr:\n%s\nstdout:\n%s", code, ExitSuccess, stderr, stdout)
	}
	code, _, stderr = run(t, "--repo", sc.repo.Dir, "--channel", "staging", "--base", "staging", "--head", "promote", "--config-rev", "main", "--config", "x.yml")
	if code != ExitUsage || !strings.Contains(stderr, "--config and --config-rev") {
		t.Fatalf("exit status %d with both --config and --config-rev; stderr:\n%s", code, stderr)
	}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return string(out)
}
