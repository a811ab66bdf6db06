package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-github/v50/github"
	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/repoconfig"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
	"github.com/storagebot/storagebot/policy"
)

// Service runs controller passes for the repositories the App is installed on: at most one pass per
// repository at a time, and triggers that arrive during a pass coalesce into one more pass after it — so a
// burst of merges and run events costs one or two passes, and a rollout wait never blocks a webhook worker.
type Service struct {
	Controller *Controller
	Cache      *storage.ObjectCache
	// Wake, when set, is woken by every trigger: a rollout waiting for a run re-reads it at once.
	Wake *Waker
	// States remembers deployments' final states between passes, so an idle pass does not read them again.
	States *StateCache
	// OnRunning, when set, is told how many repositories have a triggered pass running (or due right after
	// the one running) whenever that changes: a metric, and what a test waits on to know the rollouts idle.
	OnRunning func(n int)

	ctx     context.Context // the server's lifetime: passes outlive the event that triggered them
	mu      sync.Mutex
	repos   map[string]*repoPasses
	running int // repositories whose pass loop runs (guarded by mu)
	wg      sync.WaitGroup
}

// runningChanged reports the count to OnRunning; s.mu is held.
func (s *Service) runningChanged() {
	if s.OnRunning != nil {
		s.OnRunning(s.running)
	}
}

type repoPasses struct {
	running, again bool
	client         *github.Client
	repo           *github.Repository
}

// NewService builds a service whose passes run until ctx ends.
func NewService(ctx context.Context, c *Controller, cache *storage.ObjectCache) *Service {
	return &Service{Controller: c, Cache: cache, States: NewStateCache(), ctx: ctx, repos: map[string]*repoPasses{}}
}

// Wait blocks until every pass has returned (after the service's context is cancelled, passes stop at
// their next wait and leave rollouts in progress for the next replica).
func (s *Service) Wait() { s.wg.Wait() }

// Trigger asks for a pass over repo. It returns at once.
func (s *Service) Trigger(client *github.Client, repo *github.Repository) {
	s.Wake.Wake()
	key := strings.ToLower(repo.GetFullName())
	s.mu.Lock()
	rp := s.repos[key]
	if rp == nil {
		rp = &repoPasses{}
		s.repos[key] = rp
	}
	rp.client, rp.repo = client, repo
	if rp.running {
		rp.again = true
		s.mu.Unlock()
		return
	}
	rp.running = true
	s.running++
	s.runningChanged()
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		for {
			s.mu.Lock()
			client, repo := rp.client, rp.repo
			rp.again = false
			s.mu.Unlock()
			if s.ctx.Err() == nil {
				if _, err := s.Pass(s.ctx, client, repo); err != nil {
					zerolog.Ctx(s.ctx).Error().Err(err).Str("repository", repo.GetFullName()).Msg("rollout pass")
				}
			}
			s.mu.Lock()
			if !rp.again || s.ctx.Err() != nil {
				rp.running = false
				s.running--
				s.runningChanged()
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		}
	}()
}

// Pass runs one controller pass over repo now, reading its configuration from the default branch. A
// repository without distributions has nothing to do.
func (s *Service) Pass(ctx context.Context, client *github.Client, repo *github.Repository) ([]Step, error) {
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	cfg, err := repoconfig.Load(ctx, client, owner, name, repo.GetDefaultBranch())
	if err != nil {
		if _, invalid := repoconfig.IsInvalid(err); invalid {
			zerolog.Ctx(ctx).Warn().Err(err).Str("repository", repo.GetFullName()).Msg("rollout skipped: repository config invalid")
			return nil, nil
		}
		return nil, fmt.Errorf("load the configuration of %s: %w", repo.GetFullName(), err)
	}
	return s.PassWithConfig(ctx, client, repo, cfg)
}

// PassWithConfig runs one pass with a configuration the caller already loaded.
func (s *Service) PassWithConfig(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config) ([]Step, error) {
	if len(cfg.Distributions) == 0 {
		return nil, nil
	}
	log := zerolog.Ctx(ctx).With().Str("repository", repo.GetFullName()).Logger()
	return s.Controller.Pass(log.WithContext(ctx), s.repo(client, repo, cfg))
}

func (s *Service) repo(client *github.Client, repo *github.Repository, cfg *repoconfig.Config) Repo {
	return Repo{GitHub: &Client{GH: client, Owner: repo.GetOwner().GetLogin(), Repo: repo.GetName(), Cache: s.Cache, States: s.States,
		WriteSettle: s.Controller.WriteSettle}, Config: cfg}
}

// Rebuild answers `/rebuild [<distribution>]`: it starts the build and returns the reply. fallbackBranch is
// the pull request's base branch, whose distribution is rebuilt when no name is given.
func (s *Service) Rebuild(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config, name, fallbackBranch string) string {
	if len(cfg.Distributions) == 0 {
		return fmt.Sprintf("❌ Nothing to rebuild: `%s` lists no `distributions`. Add them to configure builds and rollouts.", repoconfig.Path)
	}
	if name == "" {
		on := cfg.DistributionsOnBranch(fallbackBranch)
		if len(on) != 1 {
			return fmt.Sprintf("❌ Name the distribution to rebuild: `/rebuild <distribution>`, one of %s.", distributionNames(cfg))
		}
		name = on[0].Name
	}
	if _, ok := cfg.DistributionByName(name); !ok {
		return fmt.Sprintf("❌ There is no distribution `%s`; the distributions are %s.", name, distributionNames(cfg))
	}
	key, err := s.Controller.Rebuild(ctx, s.repo(client, repo, cfg), name)
	switch {
	case errors.Is(err, ErrBusy):
		return fmt.Sprintf("⏳ Not started: %v. Wait for it to finish (its deployment status says when), then comment again if needed.", err)
	case err != nil:
		zerolog.Ctx(ctx).Error().Err(err).Str("distribution", name).Msg("rebuild")
		return fmt.Sprintf("❌ `%s` could not be rebuilt: %v.", name, err)
	}
	dependents := dependentsText(cfg, name)
	return fmt.Sprintf("✅ Build of **%s** at %s started (build key `%s`); it is rolled out when the build succeeds, then %s follow.",
		name, shortRef(key.Ref), key, dependents)
}

func distributionNames(cfg *repoconfig.Config) string {
	names := make([]string, len(cfg.Distributions))
	for i, d := range cfg.Distributions {
		names[i] = "`" + d.Name + "`"
	}
	return strings.Join(names, ", ")
}

func shortRef(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// StackVersionCheck is the check run that answers a stack-version tag on the tagged commit: the build it
// started, or why it was refused.
const StackVersionCheck = "stack-version"

// stackVersion matches a stack-version tag: major.minor.patch with an optional prerelease ("8.12.0",
// "8.12.0-rc1"), every character one a container image tag allows.
var stackVersion = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z][0-9A-Za-z.-]*)?$`)

// maxImageTag is the longest tag a container registry accepts.
const maxImageTag = 128

// StackTag answers a tag pushed to repo: a stack-version tag (8.12.0, 8.12.0-rc1) on a commit of the highest
// channel's history builds the distribution built from that branch with the tag as input `tag` (the
// reusable build workflow then pushes <image>:<tag>); a "v"-prefixed one, or one on a commit production
// does not hold, is refused with a failed stack-version check run on the commit saying why. Other tags are
// not stack versions and are left alone. A tag already answered (a redelivery) is not answered twice.
func (s *Service) StackTag(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config, appID int64, tag, sha string) error {
	log := zerolog.Ctx(ctx).With().Str("repository", repo.GetFullName()).Str("tag", tag).Str("sha", sha).Logger()
	bare, vPrefixed := tag, false
	if len(tag) > 1 && (tag[0] == 'v' || tag[0] == 'V') {
		bare, vPrefixed = tag[1:], true
	}
	if !stackVersion.MatchString(bare) || len(cfg.Distributions) == 0 || len(cfg.Channels) == 0 {
		log.Debug().Msg("tag is no stack version, or nothing is distributed: ignored")
		return nil
	}
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	runs, _, err := client.Checks.ListCheckRunsForRef(ctx, owner, name, sha, &github.ListCheckRunsOptions{
		CheckName: github.String(StackVersionCheck), AppID: github.Int64(appID), Filter: github.String("all"), ListOptions: github.ListOptions{PerPage: 100}})
	if err != nil {
		return fmt.Errorf("list the %s check runs of %s: %w", StackVersionCheck, sha, err)
	}
	// filter=all: by default GitHub lists only the newest run of a name, and each tag on the commit has its own.
	for _, r := range runs.CheckRuns {
		if r.GetExternalID() == tag {
			log.Info().Int64("check_run", r.GetID()).Msg("stack-version tag already answered")
			return nil
		}
	}
	production := cfg.Channels[len(cfg.Channels)-1]
	refuse := func(title, summary string) error {
		log.Warn().Str("reason", title).Msg("stack-version tag refused")
		return stackVersionRun(ctx, client, owner, name, sha, tag, "failure", title, summary)
	}
	if vPrefixed || len(tag) > maxImageTag {
		return refuse(fmt.Sprintf("Tag %s was not built: stack-version tags have no v", tag),
			fmt.Sprintf("Stack-version tags are named like the stack version they build, without a `v`: `%s`. "+
				"Push that tag instead (`git tag %s %s && git push origin %s`) and delete this one "+
				"(`git push --delete origin %s`).", bare, bare, shortRef(sha), bare, tag))
	}
	var dist repoconfig.Distribution
	found := false
	for _, d := range cfg.Distributions {
		if d.Branch == production.Branch && d.Base == "" {
			dist, found = d, true
			break
		}
	}
	if !found {
		return refuse(fmt.Sprintf("Tag %s was not built: no distribution is built from %s", tag, production.Branch),
			fmt.Sprintf("A stack-version tag builds the distribution built from `%s` (the %s channel) on the registry image, "+
				"and `%s` lists none. Add one under `distributions`, then push the tag again.", production.Branch, production.Name, repoconfig.Path))
	}
	cmp, _, err := client.Repositories.CompareCommits(ctx, owner, name, sha, production.Branch, &github.ListOptions{PerPage: 1})
	if err != nil {
		return fmt.Errorf("compare %s with %s: %w", sha, production.Branch, err)
	}
	if st := cmp.GetStatus(); st != "ahead" && st != "identical" {
		return refuse(fmt.Sprintf("Tag %s was not built: %s is not on %s", tag, shortRef(sha), production.Branch),
			fmt.Sprintf("Stack-version tags build what %s serves, so they must point at a commit of `%s`'s history; "+
				"`%s` is not one (compared with `%s`: %s). Delete the tag (`git push --delete origin %s`) and tag a "+
				"commit of `%s`.", production.Name, production.Branch, sha, production.Branch, st, tag, production.Branch))
	}
	inputs := map[string]string{}
	for k, v := range dist.Build.Inputs {
		inputs[k] = v
	}
	inputs["distribution"], inputs["ref"], inputs["base_image"] = dist.Name, sha, ""
	inputs["build_key"], inputs["tag"] = "tag-"+tag+"@"+sha, tag
	c := &Client{GH: client, Owner: owner, Repo: name}
	if err := c.DispatchWorkflow(ctx, dist.Build.Workflow, dist.Branch, inputs); err != nil {
		return refuse(fmt.Sprintf("Tag %s was not built: the build could not be started", tag),
			fmt.Sprintf("Dispatching `%s` on `%s` failed: %v.\n\nA stack-version build passes the input `tag`: the "+
				"build workflow must declare it (`tag: {required: false}`) and hand it to the reusable workflow. "+
				"Fix the workflow, delete the tag and push it again.", dist.Build.Workflow, dist.Branch, err))
	}
	image := dist.Image + ":" + tag
	log.Info().Str("distribution", dist.Name).Str("image", image).Msg("stack-version build dispatched")
	return stackVersionRun(ctx, client, owner, name, sha, tag, "success", fmt.Sprintf("Building %s", image),
		fmt.Sprintf("Tag `%s` is on `%s`: the build of **%s** at `%s` was dispatched (`%s` on `%s`, build key `%s`); "+
			"it pushes `%s`.", tag, production.Branch, dist.Name, shortRef(sha), dist.Build.Workflow, dist.Branch, inputs["build_key"], image))
}

// stackVersionRun records the answer to tag as a completed check run on sha, keyed by the tag.
func stackVersionRun(ctx context.Context, client *github.Client, owner, name, sha, tag, conclusion, title, summary string) error {
	_, _, err := client.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: StackVersionCheck, HeadSHA: sha, ExternalID: github.String(tag), Status: github.String("completed"),
		Conclusion: github.String(conclusion),
		Output:     &github.CheckRunOutput{Title: github.String(trim(title)), Summary: github.String(summary)},
	})
	if err != nil {
		return fmt.Errorf("report tag %s on %s: %w", tag, sha, err)
	}
	return nil
}

// registryModule is the Go module a storage branch's go.mod requires at its registry version.
const registryModule = "github.com/elastic/package-registry"

// RegistrySync answers a push to a distribution branch: when it changed the package-registry version the
// Dockerfile builds on (`ARG PACKAGE_REGISTRY=`, else the package-registry FROM tag), every other
// distribution branch still on another version gets one PR bringing its Dockerfile — and its go.mod and
// go.sum, where go.mod requires github.com/elastic/package-registry — to the same version:
// branch storagebot/registry/<branch>/<version>, title "[<branch>] Update package-registry to <version>",
// a sealed marker in the body. The branch name is the key: a redelivery, or another replica handling the same
// push, finds the branch and its PR (GitHub refuses a second ref and a second PR for one head), so each branch
// gets one PR per version; a PR someone closed is not opened again.
func (s *Service) RegistrySync(ctx context.Context, client *github.Client, repo *github.Repository, cfg *repoconfig.Config, key seal.Key, branch, before, after string) error {
	if len(cfg.DistributionsOnBranch(branch)) == 0 || isZeroSHA(before) || isZeroSHA(after) {
		return nil
	}
	owner, name := repo.GetOwner().GetLogin(), repo.GetName()
	log := zerolog.Ctx(ctx).With().Str("repository", repo.GetFullName()).Str("branch", branch).Logger()
	sync := registrySync{client: client, owner: owner, name: name, key: promotion.MarkerKey(key, repo.GetFullName())}
	newDockerfile, err := sync.file(ctx, "Dockerfile", after)
	if err != nil || newDockerfile == nil {
		return err
	}
	version, ok := policy.DockerfileRegistryVersion(newDockerfile)
	if !ok {
		return nil
	}
	oldDockerfile, err := sync.file(ctx, "Dockerfile", before)
	if err != nil {
		return err
	}
	if old, _ := policy.DockerfileRegistryVersion(oldDockerfile); sameVersion(old, version) {
		return nil
	}
	version = "v" + strings.TrimPrefix(version, "v")
	source := registrySource{branch: branch, commit: after, version: version}
	if source.goSum, err = sync.file(ctx, "go.sum", after); err != nil {
		return err
	}
	log.Info().Str("version", version).Msg("package-registry version changed: bringing the other distribution branches to it")
	var errs []error
	seen := map[string]bool{branch: true}
	for _, d := range cfg.Distributions {
		if seen[d.Branch] {
			continue
		}
		seen[d.Branch] = true
		pr, err := sync.bring(ctx, d.Branch, source)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("bring %s to package-registry %s: %w", d.Branch, version, err))
		case pr != nil:
			log.Info().Str("target", d.Branch).Int("pr", pr.GetNumber()).Msg("registry version PR")
		}
	}
	return errors.Join(errs...)
}

// registrySource is the change to copy: the branch, commit and version it introduced, and its go.sum.
type registrySource struct {
	branch, commit, version string
	goSum                   []byte
}

// registrySync writes registry-version PRs in one repository.
type registrySync struct {
	client      *github.Client
	owner, name string
	key         seal.Key
}

// RegistrySyncMarker is the sealed record in the body of a registry-version PR.
type RegistrySyncMarker struct {
	Target  string `json:"target"`
	Version string `json:"version"`
	// From is the branch and commit whose change the PR follows; Commit is what the bot wrote on the PR branch.
	From       string `json:"from"`
	FromCommit string `json:"from_commit"`
	Commit     string `json:"commit"`
}

// String renders the marker sealed with key (promotion.MarkerKey of the repository), like the promotion and
// removal PRs' markers.
func (m RegistrySyncMarker) String(key seal.Key) string {
	data, _ := json.Marshal(m) // strings only: always marshals
	text := strings.ReplaceAll(string(data), "--", `-\u002d`)
	if mac := key.Sign([]byte("registry-sync " + text)); mac != "" {
		return fmt.Sprintf("<!-- storagebot:registry-sync %s %s -->", mac, text)
	}
	return fmt.Sprintf("<!-- storagebot:registry-sync %s -->", text)
}

// RegistrySyncBranch is the deterministic branch of the PR bringing target to version.
func RegistrySyncBranch(target, version string) string {
	return "storagebot/registry/" + target + "/" + version
}

// bring opens (or finds) the PR bringing target to source.version; nil when target already is on it or a PR
// for it was closed.
func (r *registrySync) bring(ctx context.Context, target string, source registrySource) (*github.PullRequest, error) {
	branch := RegistrySyncBranch(target, source.version)
	if pr, err := r.findPR(ctx, branch); err != nil || pr != nil {
		if pr != nil && pr.GetState() != "open" {
			return nil, nil // closed by someone: their decision stands
		}
		return pr, err
	}
	ref, _, err := r.client.Git.GetRef(ctx, r.owner, r.name, "heads/"+target)
	if err != nil {
		return nil, fmt.Errorf("read the head of %s: %w", target, err)
	}
	head := ref.GetObject().GetSHA()
	dockerfile, err := r.file(ctx, "Dockerfile", head)
	if err != nil {
		return nil, err
	}
	if dockerfile == nil {
		return nil, nil // no Dockerfile: nothing pins a registry version there
	}
	if current, ok := policy.DockerfileRegistryVersion(dockerfile); ok && sameVersion(current, source.version) {
		return nil, nil
	}
	newDockerfile, ok := setDockerfileRegistryVersion(dockerfile, source.version)
	if !ok {
		return nil, fmt.Errorf("the Dockerfile of %s pins no package-registry version to update (no ARG PACKAGE_REGISTRY= and no package-registry FROM tag)", target)
	}
	changes := map[string][]byte{"Dockerfile": newDockerfile}
	gomod, err := r.file(ctx, "go.mod", head)
	if err != nil {
		return nil, err
	}
	if old, ok := policy.GoModRegistryVersion(gomod); ok && !sameVersion(old, source.version) {
		changes["go.mod"] = setGoModRegistryVersion(gomod, old, source.version)
		gosum, err := r.file(ctx, "go.sum", head)
		if err != nil {
			return nil, err
		}
		if gosum != nil {
			changes["go.sum"] = setGoSumRegistryVersion(gosum, source.goSum, old, source.version)
		}
	}
	commit, err := r.commit(ctx, head, changes, fmt.Sprintf("Update package-registry to %s\n\nAs on %s (%s).", source.version, source.branch, source.commit))
	if err != nil {
		return nil, err
	}
	_, _, err = r.client.Git.CreateRef(ctx, r.owner, r.name, &github.Reference{
		Ref: github.String("refs/heads/" + branch), Object: &github.GitObject{SHA: github.String(commit)}})
	if err != nil && !alreadyExists(err) {
		return nil, fmt.Errorf("create branch %s: %w", branch, err)
	}
	if err != nil {
		// Another replica (or an earlier try) created the branch: its PR, or ours on its branch, is the one.
		ref, _, rerr := r.client.Git.GetRef(ctx, r.owner, r.name, "heads/"+branch)
		if rerr != nil {
			return nil, fmt.Errorf("read branch %s created concurrently: %w", branch, rerr)
		}
		commit = ref.GetObject().GetSHA()
	}
	marker := RegistrySyncMarker{Target: target, Version: source.version, From: source.branch, FromCommit: source.commit, Commit: commit}
	files := make([]string, 0, len(changes))
	for f := range changes {
		files = append(files, "`"+f+"`")
	}
	sort.Strings(files)
	body := fmt.Sprintf("`%s` now builds on package-registry **%s** (%s). This brings `%s` to the same version (%s), so "+
		"every distribution serves packages with the same registry.\n\nIf CI reports missing `go.sum` entries, run "+
		"`go mod tidy` on this branch.\n\n%s", source.branch, source.version, source.commit, target,
		strings.Join(files, ", "), marker.String(r.key))
	title := fmt.Sprintf("[%s] Update package-registry to %s", target, source.version)
	pr, _, err := r.client.PullRequests.Create(ctx, r.owner, r.name, &github.NewPullRequest{
		Title: github.String(title), Head: github.String(branch), Base: github.String(target), Body: github.String(body)})
	if err == nil {
		return pr, nil
	}
	if !alreadyExists(err) {
		return nil, fmt.Errorf("open the PR from %s into %s: %w", branch, target, err)
	}
	pr, ferr := r.findPR(ctx, branch)
	if ferr != nil || pr == nil {
		return nil, fmt.Errorf("open the PR from %s into %s: GitHub says one exists but it was not found: %w", branch, target, err)
	}
	return pr, nil
}

// findPR returns the newest PR from branch in any state, nil when there is none.
func (r *registrySync) findPR(ctx context.Context, branch string) (*github.PullRequest, error) {
	prs, _, err := r.client.PullRequests.List(ctx, r.owner, r.name, &github.PullRequestListOptions{
		Head: r.owner + ":" + branch, State: "all", ListOptions: github.ListOptions{PerPage: 10}})
	if err != nil {
		return nil, fmt.Errorf("look up PRs from %s: %w", branch, err)
	}
	for _, pr := range prs {
		if pr.GetHead().GetRef() == branch { // only this exact branch, whatever the host does with the filter
			return pr, nil
		}
	}
	return nil, nil
}

// file reads path at ref; nil when it does not exist.
func (r *registrySync) file(ctx context.Context, path, ref string) ([]byte, error) {
	fc, _, resp, err := r.client.Repositories.GetContents(ctx, r.owner, r.name, path, &github.RepositoryContentGetOptions{Ref: ref})
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, ref, err)
	}
	if fc == nil {
		return nil, fmt.Errorf("read %s at %s: it is a directory", path, ref)
	}
	text, err := fc.GetContent()
	if err != nil {
		return nil, fmt.Errorf("decode %s at %s: %w", path, ref, err)
	}
	return []byte(text), nil
}

// commit writes changes on parent as one commit and returns its SHA.
func (r *registrySync) commit(ctx context.Context, parent string, changes map[string][]byte, message string) (string, error) {
	pc, _, err := r.client.Git.GetCommit(ctx, r.owner, r.name, parent)
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", parent, err)
	}
	paths := make([]string, 0, len(changes))
	for p := range changes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var entries []*github.TreeEntry
	for _, p := range paths {
		entries = append(entries, &github.TreeEntry{Path: github.String(p), Mode: github.String("100644"),
			Type: github.String("blob"), Content: github.String(string(changes[p]))})
	}
	tree, _, err := r.client.Git.CreateTree(ctx, r.owner, r.name, pc.GetTree().GetSHA(), entries)
	if err != nil {
		return "", fmt.Errorf("write the tree on %s: %w", parent, err)
	}
	c, _, err := r.client.Git.CreateCommit(ctx, r.owner, r.name, &github.Commit{Message: github.String(message),
		Tree: &github.Tree{SHA: tree.SHA}, Parents: []*github.Commit{{SHA: github.String(parent)}}})
	if err != nil {
		return "", fmt.Errorf("write the commit on %s: %w", parent, err)
	}
	return c.GetSHA(), nil
}

// setDockerfileRegistryVersion sets the registry version a Dockerfile builds on: the value of every
// `ARG PACKAGE_REGISTRY=` line, else the tag of the package-registry FROM image. ok is false when it has
// neither.
func setDockerfileRegistryVersion(dockerfile []byte, version string) ([]byte, bool) {
	lines := strings.SplitAfter(string(dockerfile), "\n")
	changed := false
	for i, line := range lines {
		fields := strings.Fields(line)
		if len(fields) >= 2 && strings.EqualFold(fields[0], "ARG") && strings.HasPrefix(fields[1], "PACKAGE_REGISTRY=") {
			lines[i] = strings.Replace(line, fields[1], "PACKAGE_REGISTRY="+version, 1)
			changed = true
		}
	}
	if !changed {
		for i, line := range lines {
			fields := strings.Fields(line)
			if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
				continue
			}
			for _, f := range fields[1:] {
				image, _, _ := strings.Cut(f, "@")
				if strings.HasPrefix(f, "--") || !strings.Contains(image[strings.LastIndex(image, "/")+1:], "package-registry:") {
					continue
				}
				repoPart := image[:strings.LastIndex(image, ":")]
				lines[i] = strings.Replace(line, image, repoPart+":"+version, 1)
				changed = true
				break
			}
			if changed {
				break
			}
		}
	}
	return []byte(strings.Join(lines, "")), changed
}

// setGoModRegistryVersion replaces the required version old of the registry module with version.
func setGoModRegistryVersion(gomod []byte, old, version string) []byte {
	lines := strings.SplitAfter(string(gomod), "\n")
	for i, line := range lines {
		code, _, _ := strings.Cut(line, "//")
		fields := strings.Fields(code)
		for j := 0; j+1 < len(fields); j++ {
			if strings.Trim(fields[j], `"`) == registryModule && fields[j+1] == old {
				lines[i] = strings.Replace(line, registryModule+" "+old, registryModule+" "+version, 1)
			}
		}
	}
	return []byte(strings.Join(lines, ""))
}

// setGoSumRegistryVersion drops the registry module's lines for old and adds the source's lines for version
// (its content hashes are the same on every branch). Other modules' lines are left alone.
func setGoSumRegistryVersion(gosum, sourceSum []byte, old, version string) []byte {
	var out []string
	for _, line := range strings.SplitAfter(string(gosum), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == registryModule && strings.TrimSuffix(f[1], "/go.mod") == old {
			continue
		}
		if line != "" {
			out = append(out, line)
		}
	}
	for _, line := range strings.SplitAfter(string(sourceSum), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == registryModule && strings.TrimSuffix(f[1], "/go.mod") == version {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			out = append(out, line)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i] < out[j] })
	return []byte(strings.Join(out, ""))
}

func sameVersion(a, b string) bool { return strings.TrimPrefix(a, "v") == strings.TrimPrefix(b, "v") }

func isZeroSHA(sha string) bool { return strings.Trim(sha, "0") == "" }

// alreadyExists reports GitHub's 422 for a ref or PR that exists.
func alreadyExists(err error) bool {
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	msg := er.Message
	for _, e := range er.Errors {
		msg += " " + e.Message
	}
	return strings.Contains(msg, "already exists")
}
