package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/internal/storagegen"
)

const (
	owner, repoName = "storage-org", "package-storage"
	// versionsPerPackage is how many versions each package has over the three channels (see generateStorage).
	versionsPerPackage = 10
	filesPerVersion    = 3
)

// repoConfig is the storage's .github/storagebot.yml: the built-in channels, spelled out.
const repoConfig = `channels:
  - {name: snapshot, branch: snapshot}
  - {name: staging, branch: staging}
  - {name: production, branch: production}
`

// kind is what a delivery is for.
type kind int

const (
	kindPR      kind = iota // pull_request opened or synchronize: the bot owes a storage-policy verdict
	kindComment             // issue_comment created: mostly conversation, every tenth a /help
	kindPing                // ping
)

// delivery is one pre-recorded, pre-signed webhook.
type delivery struct {
	kind      kind
	event     string
	id        string
	body      []byte
	signature string
}

// fixture is the fake GitHub, its storage and the deliveries to send, in sending order.
type fixture struct {
	fake       *githubfake.Server
	repo       *githubfake.Repo
	deliveries []delivery
}

// newFixture starts the fake (webhooks recorded, never sent by it) with a storage of about `versions`
// versions, then performs every action the deliveries describe so the payloads are GitHub's own shape and the
// objects they name exist: one pull request per PR delivery (half of them pushed to once more, for a
// synchronize), the comments, a ping. runID makes the delivery IDs unique across runs.
func newFixture(versions, n int, m mix, runID string) (*fixture, error) {
	fake := githubfake.New(githubfake.Options{})
	f := &fixture{fake: fake, repo: fake.CreateRepo(owner, repoName, "production")}
	if err := f.generateStorage(versions / versionsPerPackage); err != nil {
		fake.Close()
		return nil, err
	}
	kinds := schedule(n, m)
	packages := versions / versionsPerPackage
	wantAction := map[int]string{} // PR number → the action whose payload is sent
	prs, comments := 0, 0
	discussion := f.repo.OpenIssue("Storage maintenance", "Where maintainers talk.", "maintainer")
	for _, k := range kinds {
		switch k {
		case kindPR:
			number, action, err := f.openPR(prs, packages)
			if err != nil {
				fake.Close()
				return nil, err
			}
			wantAction[number] = action
			prs++
		case kindComment:
			body := fmt.Sprintf("Looks good to me (%d).", comments)
			if comments%10 == 9 {
				body = "/help"
			}
			if _, err := f.repo.Comment(discussion, "maintainer", body); err != nil {
				fake.Close()
				return nil, fmt.Errorf("comment %d on #%d: %w", comments, discussion, err)
			}
			comments++
		}
	}
	fake.Ping(f.repo)

	// Pick the recorded payloads, in the order their actions were taken, which is the sending order.
	var prBodies, commentBodies, pingBodies [][]byte
	for _, d := range fake.Deliveries() {
		switch {
		case d.Event == "pull_request":
			var p struct {
				Number int `json:"number"`
			}
			if err := json.Unmarshal(d.Body, &p); err != nil {
				fake.Close()
				return nil, fmt.Errorf("read recorded pull_request payload: %w", err)
			}
			if wantAction[p.Number] == d.Action {
				prBodies = append(prBodies, d.Body)
			}
		case d.Event == "issue_comment" && d.Action == "created":
			commentBodies = append(commentBodies, d.Body)
		case d.Event == "ping":
			pingBodies = append(pingBodies, d.Body)
		}
	}
	if len(prBodies) != prs || len(commentBodies) != comments || len(pingBodies) == 0 {
		fake.Close()
		return nil, fmt.Errorf("the fake recorded %d pull_request, %d issue_comment and %d ping payloads; want %d, %d and 1",
			len(prBodies), len(commentBodies), len(pingBodies), prs, comments)
	}
	secret := []byte(fake.WebhookSecret())
	for i, k := range kinds {
		d := delivery{kind: k, id: fmt.Sprintf("%s-%06d", runID, i)}
		switch k {
		case kindPR:
			d.event, d.body, prBodies = "pull_request", prBodies[0], prBodies[1:]
		case kindComment:
			d.event, d.body, commentBodies = "issue_comment", commentBodies[0], commentBodies[1:]
		case kindPing:
			d.event, d.body = "ping", pingBodies[0]
		}
		d.signature = sign(secret, d.body)
		f.deliveries = append(f.deliveries, d)
	}
	return f, nil
}

// schedule spreads n deliveries over the kinds by smooth weighted round robin, so every stretch of the run
// holds the mix, not a block of one kind after another.
func schedule(n int, m mix) []kind {
	weights := []int{m.pr, m.comment, m.ping}
	total := m.pr + m.comment + m.ping
	current := make([]int, len(weights))
	out := make([]kind, 0, n)
	for len(out) < n {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		out = append(out, kind(best))
	}
	return out
}

// generateStorage commits the three channel branches of `packages` packages. Each branch holds only its own
// versions, as a storage does once promotions' removal follow-ups are merged: production the 8 oldest of each
// package, staging the next, snapshot the newest. A version held by two channels would set serve's reconciler
// opening removal PRs during the run, work no delivery caused.
func (f *fixture) generateStorage(packages int) error {
	files := map[string]*githubfake.File{
		".github/storagebot.yml": {Content: []byte(repoConfig)},
		"Dockerfile":             {Content: []byte(storagegen.Dockerfile("v1.15.0"))},
		"go.mod":                 {Content: []byte(storagegen.GoMod("v1.15.0"))},
	}
	for p := 0; p < packages; p++ {
		for v := 0; v < versionsPerPackage-2; v++ {
			addVersion(files, storagegen.PackageName(p), storagegen.VersionName(v), uint64(p*versionsPerPackage+v))
		}
	}
	head, err := f.repo.Commit("production", "Generated storage", files)
	if err != nil {
		return fmt.Errorf("commit the production storage: %w", err)
	}
	for i, branch := range []string{"staging", "snapshot"} {
		if err := f.repo.CreateBranch(branch, head); err != nil {
			return fmt.Errorf("create %s: %w", branch, err)
		}
		if _, err := f.repo.Commit(branch, "Start "+branch+" without production's versions", map[string]*githubfake.File{"packages": nil}); err != nil {
			return fmt.Errorf("empty packages/ on %s: %w", branch, err)
		}
		v := storagegen.VersionName(versionsPerPackage - 2 + i)
		files := map[string]*githubfake.File{}
		for p := 0; p < packages; p++ {
			addVersion(files, storagegen.PackageName(p), v, uint64(p*versionsPerPackage+versionsPerPackage-2+i))
		}
		if _, err := f.repo.Commit(branch, "Add "+v+" of every package", files); err != nil {
			return fmt.Errorf("commit the %s storage: %w", branch, err)
		}
	}
	return nil
}

// activePackages bounds which packages the PRs touch: the first 200 (a production storage's count), whatever
// the storage size, so runs on storages of different sizes send the same stream of PRs and differ only in
// what the bot must read around them.
const activePackages = 200

// openPR opens the j-th pull request into snapshot: a new version of 1 to 3 packages (k = 1 + j%3), as
// package authors send them. Every other one is pushed to once more, and its synchronize is what is sent.
func (f *fixture) openPR(j, packages int) (number int, action string, err error) {
	packages = min(packages, activePackages)
	branch := fmt.Sprintf("load/pr-%d", j)
	if err := f.repo.CreateBranch(branch, f.repo.BranchSHA("snapshot")); err != nil {
		return 0, "", fmt.Errorf("create branch %s: %w", branch, err)
	}
	version := fmt.Sprintf("3.%d.0", j)
	k := 1 + j%3
	files := map[string]*githubfake.File{}
	var names []string
	for i := 0; i < k; i++ {
		pkg := storagegen.PackageName((j*7 + i) % packages)
		if _, dup := files[storage.VersionPath(pkg, version)+"/manifest.yml"]; dup {
			continue // fewer packages than k
		}
		addVersion(files, pkg, version, uint64(10_000_000+j*10+i))
		names = append(names, pkg)
	}
	if _, err := f.repo.Commit(branch, "Add "+version, files); err != nil {
		return 0, "", fmt.Errorf("commit %s: %w", branch, err)
	}
	pr, err := f.repo.OpenPullRequest(githubfake.PROptions{
		Head: branch, Base: "snapshot", User: "author",
		Title: fmt.Sprintf("[snapshot] Add %s of %v", version, names),
	})
	if err != nil {
		return 0, "", fmt.Errorf("open the pull request from %s: %w", branch, err)
	}
	if j%2 == 0 {
		return pr.Number, "opened", nil
	}
	pkg := names[0]
	edit := map[string]*githubfake.File{
		storage.VersionPath(pkg, version) + "/docs/README.md": {Content: []byte(fmt.Sprintf("# %s %s\n\nFixed a typo.\n", pkg, version))},
	}
	if _, err := f.repo.PushToPullRequest(pr.Number, "Fix a typo", edit); err != nil {
		return 0, "", fmt.Errorf("push to #%d: %w", pr.Number, err)
	}
	return pr.Number, "synchronize", nil
}

// addVersion puts the generated files of pkg@version into files.
func addVersion(files map[string]*githubfake.File, pkg, version string, seed uint64) {
	for path, data := range storagegen.VersionFiles(pkg, version, filesPerVersion, 64, seed) {
		files[storage.VersionPath(pkg, version)+"/"+path] = &githubfake.File{Content: data}
	}
}

// sign is GitHub's X-Hub-Signature-256 of body.
func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
