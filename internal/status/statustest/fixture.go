// Package statustest builds, in the fake GitHub, a storage repository in the states the status page and the
// dashboard show: a version pending removal (with its removal PR open), a version that drifted between two
// channels, an open promotion PR with a storage-policy verdict, and one PR nobody has checked yet.
package statustest

import (
	"context"
	"fmt"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/promotion"
	"github.com/storagebot/storagebot/internal/seal"
	"github.com/storagebot/storagebot/internal/storage"
)

// Fixture is the repository built and the numbers of its PRs.
type Fixture struct {
	Repo *githubfake.Repo
	// RemovalPR removes apm@1.0.0 from snapshot (also identical in staging).
	RemovalPR int
	// PromotionPR promotes apm@1.0.0 to production; its head has a successful storage-policy run.
	PromotionPR int
	// UncheckedPR is an author's PR into snapshot with no run yet.
	UncheckedPR int
}

// The facts the fixture holds, for assertions.
const (
	Owner          = "storage-org"
	Name           = "package-storage"
	PendingVersion = "apm@1.0.0"   // identical in snapshot and staging: removal pending (RemovalPR)
	DriftVersion   = "nginx@2.0.0" // different in staging and production: drift
	VerdictTitle   = "storage-policy passed: 1 version promoted"
)

// Build creates the repository in s. key is the server's marker key (the PR markers are sealed with it, as
// the bot seals them); client is an installation client of s, which writes the check run as the App.
func Build(ctx context.Context, s *githubfake.Server, client *github.Client, key seal.Key) (*Fixture, error) {
	repo := s.CreateRepo(Owner, Name, "snapshot")
	f := &Fixture{Repo: repo}
	if _, err := repo.Commit("snapshot", "apm 1.0.0", githubfake.MergeFiles(version("apm", "1.0.0", "a"), version("nginx", "2.0.0", "old"))); err != nil {
		return nil, err
	}
	for _, b := range []string{"staging", "production"} {
		if err := repo.CreateBranch(b, repo.BranchSHA("snapshot")); err != nil {
			return nil, fmt.Errorf("create branch %s: %w", b, err)
		}
	}
	// production drops apm (so staging's copy is the promotion's source) and holds a different nginx.
	if _, err := repo.Commit("production", "nginx 2.0.0 rebuilt", githubfake.MergeFiles(version("nginx", "2.0.0", "new"), drop("apm", "1.0.0"))); err != nil {
		return nil, err
	}
	// snapshot drops nginx, so only staging and production hold it.
	if _, err := repo.Commit("snapshot", "nginx moved up", drop("nginx", "2.0.0")); err != nil {
		return nil, err
	}
	mkey := promotion.MarkerKey(key, repo.FullName())
	versions := []promotion.MarkedVersion{{Package: "apm", Version: "1.0.0", Channel: "snapshot", Tree: mustTree(repo, "snapshot", "apm", "1.0.0")}}

	// The removal PR: apm@1.0.0 out of snapshot.
	removal := promotion.RemoveBranchPrefix + "snapshot/reconcile-apm-1.0.0"
	if err := repo.CreateBranch(removal, repo.BranchSHA("snapshot")); err != nil {
		return nil, err
	}
	sha, err := repo.Commit(removal, "Remove apm 1.0.0", drop("apm", "1.0.0"))
	if err != nil {
		return nil, err
	}
	m := promotion.Marker{Kind: "removal", Target: "snapshot", Versions: versions, Commit: sha}
	pr, err := repo.OpenPullRequest(githubfake.PROptions{Head: removal, Base: "snapshot", User: "storagebot[bot]",
		Title: "[snapshot] Remove packages already in staging (apm@1.0.0)", Body: "Removes apm@1.0.0.\n\n" + m.String(mkey)})
	if err != nil {
		return nil, err
	}
	f.RemovalPR = pr.Number

	// The promotion PR: apm@1.0.0 from staging to production, with a passing verdict.
	promote := promotion.PromoteBranchPrefix + "production/apm-1.0.0"
	if err := repo.CreateBranch(promote, repo.BranchSHA("production")); err != nil {
		return nil, err
	}
	if sha, err = repo.Commit(promote, "Promote apm 1.0.0", version("apm", "1.0.0", "a")); err != nil {
		return nil, err
	}
	versions[0].Channel = "staging"
	m = promotion.Marker{Kind: "promotion", Target: "production", Versions: versions, Commit: sha, By: "maintainer"}
	if pr, err = repo.OpenPullRequest(githubfake.PROptions{Head: promote, Base: "production", User: "storagebot[bot]",
		Title: "[production] Promote apm@1.0.0 from staging", Body: "Promotes apm@1.0.0.\n\n" + m.String(mkey)}); err != nil {
		return nil, err
	}
	f.PromotionPR = pr.Number
	if _, _, err := client.Checks.CreateCheckRun(ctx, Owner, Name, github.CreateCheckRunOptions{
		Name: "storage-policy", HeadSHA: sha, Status: github.String("completed"), Conclusion: github.String("success"),
		Output: &github.CheckRunOutput{Title: github.String(VerdictTitle), Summary: github.String("All rules pass.")},
	}); err != nil {
		return nil, fmt.Errorf("create the verdict: %w", err)
	}

	// An author's PR with no run yet.
	author := "feature/zeek"
	if err := repo.CreateBranch(author, repo.BranchSHA("snapshot")); err != nil {
		return nil, err
	}
	if _, err := repo.Commit(author, "zeek 0.1.0", version("zeek", "0.1.0", "z")); err != nil {
		return nil, err
	}
	if pr, err = repo.OpenPullRequest(githubfake.PROptions{Head: author, Base: "snapshot", User: "author", Title: "[snapshot] Add zeek 0.1.0"}); err != nil {
		return nil, err
	}
	f.UncheckedPR = pr.Number
	return f, nil
}

func version(pkg, v, salt string) map[string]*githubfake.File {
	dir := storage.VersionPath(pkg, v)
	return map[string]*githubfake.File{
		dir + "/manifest.yml":   {Content: []byte(fmt.Sprintf("name: %s\nversion: %s\n", pkg, v))},
		dir + "/docs/README.md": {Content: []byte(fmt.Sprintf("# %s %s (%s)\n", pkg, v, salt))},
	}
}

// drop deletes the files version writes.
func drop(pkg, v string) map[string]*githubfake.File {
	out := map[string]*githubfake.File{}
	for p := range version(pkg, v, "") {
		out[p] = nil
	}
	return out
}

func mustTree(repo *githubfake.Repo, branch, pkg, v string) string {
	sha, err := repo.TreeSHA(branch, storage.VersionPath(pkg, v))
	if err != nil {
		panic(fmt.Sprintf("statustest: tree of %s@%s in %s: %v", pkg, v, branch, err))
	}
	return sha
}
