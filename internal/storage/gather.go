package storage

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/storagebot/storagebot/policy"
)

// Root files that pin the registry version (docs/architecture.md §1).
const (
	DockerfilePath = "Dockerfile"
	GoModPath      = "go.mod"
	ManifestFile   = "manifest.yml"
)

// Request describes one change to one channel branch: a PR (Base is the target branch, Head the PR head) or a
// `storagebot check` run.
type Request struct {
	// Channel is the target channel; Channels lists every channel, lowest to highest.
	Channel  string
	Channels []string
	// Branch is the target branch, for title-prefix.
	Branch string
	// Base and Head are revisions. The changes are the versions whose tree differs between
	// merge-base(Base, Head) and Head, each judged against Base: present at Base and different → modified,
	// absent at Base → added, present at Base but not at Head → removed, identical at both → no change.
	Base, Head string
	// Others maps every other channel to the revision holding its state, for the cross-channel rules.
	Others map[string]string
	// Title is the PR title, nil when there is none.
	Title      *string
	FixTitles  bool
	Exceptions []policy.Exception
}

// Result is the policy input of a change plus the commits it was computed from, for reporting.
type Result struct {
	Input policy.Input
	// MergeBase, Head and Base are full commit SHAs.
	MergeBase string
	Head      string
	Base      string
	// BatchErr says why the GraphQL batch reads failed when they did: the change was then read through REST.
	BatchErr error
}

// Gather reads the facts of a change from r into a policy.Input. It reads O(touched packages) objects: the
// root and packages/ trees of base, head, merge-base and each other channel, the touched packages' trees, one
// recursive listing per version tree it compares (which also answers whether two copies are identical) and
// each changed version's manifest, independent of file count and storage size.
//
// Reads that do not depend on each other overlap when the reader allows it (GitHub: each read is a round
// trip): the channel heads, the other channels' packages/ trees (while the merge base and the diff are read),
// the touched packages, and every changed version with its copies in the other channels. The first read that
// fails cancels the others, and its error is the one returned.
func Gather(ctx context.Context, r Reader, req Request) (Result, error) {
	ev := newGroup(ctx, readConcurrency(r))
	res, err := gather(ev.Context(), ev, r, req)
	// A failure of the main flow stops the background reads; a background read that failed first is the
	// cause, and the main flow then only saw the cancellation it led to. Either way the first error wins.
	ev.Fail(err)
	if err := ev.Wait(); err != nil {
		return Result{}, fmt.Errorf("gather: %w", err)
	}
	return res, nil
}

// gather is Gather with ev, the evaluation's group: reads it starts in the background (the other channels'
// packages/ trees) run while the main flow goes on, and a failure of either cancels both.
func gather(ctx context.Context, ev *group, r Reader, req Request) (Result, error) {
	g := &gatherer{
		r:        r,
		req:      req,
		others:   map[string]*branchState{},
		listings: map[string][]TreeEntry{},
	}
	var base, head, mb Commit
	heads := newGroup(ctx, readConcurrency(r))
	// A reader that reads in batches (GitHub's GraphQL API) reads every tree after the merge base is known,
	// in three calls (prefetch), the head commit's root tree among them; others read each state's root and
	// packages/ trees as soon as its commit is known, while the merge base is asked for.
	batch, batched := r.(batchReader)
	batched = batched && batch.batching()
	warm := func(st *branchState) {
		if !batched {
			ev.Go(st.warm)
		}
	}
	heads.Go(func(ctx context.Context) error {
		c, err := r.ResolveRevision(ctx, req.Base)
		if err != nil {
			return fmt.Errorf("base: %w", err)
		}
		base = c
		g.base = newBranchState(r, c.TreeSHA)
		warm(g.base)
		return nil
	})
	if batched && fullSHA.MatchString(req.Head) {
		head = Commit{SHA: req.Head} // its tree comes with the first batch
	} else {
		heads.Go(func(ctx context.Context) error {
			c, err := r.ResolveRevision(ctx, req.Head)
			if err != nil {
				return fmt.Errorf("head: %w", err)
			}
			head = c
			// The diff starts with head's root and packages/ trees: read them while the merge base is asked
			// for (base's are read the same way, and the merge base is usually base itself).
			warm(newBranchState(r, c.TreeSHA))
			return nil
		})
	}
	var mu sync.Mutex
	for name, rev := range req.Others {
		if name == req.Channel {
			continue
		}
		heads.Go(func(ctx context.Context) error {
			c, err := r.ResolveRevision(ctx, rev)
			if err != nil {
				return fmt.Errorf("channel %s: %w", name, err)
			}
			st := newBranchState(r, c.TreeSHA)
			mu.Lock()
			g.others[name] = st
			mu.Unlock()
			warm(st)
			return nil
		})
	}
	if err := heads.Wait(); err != nil {
		return Result{}, err
	}
	mbSHA, err := r.MergeBase(ctx, base.SHA, head.SHA)
	if err != nil {
		return Result{}, err
	}
	if mb, err = r.ResolveRevision(ctx, mbSHA); err != nil {
		return Result{}, fmt.Errorf("merge base: %w", err)
	}
	if batched {
		if err := g.prefetch(ctx, batch, &head, mb); err != nil {
			if ctx.Err() != nil {
				return Result{}, err
			}
			// REST is the fallback: whatever the batches cached is used, the rest is read one call each.
			g.batchErr = err
			batched = false
			if head.TreeSHA == "" {
				if head, err = r.ResolveRevision(ctx, req.Head); err != nil {
					return Result{}, fmt.Errorf("head: %w", err)
				}
			}
		}
	}
	in := policy.Input{
		Channel:    req.Channel,
		Channels:   req.Channels,
		Branch:     req.Branch,
		Title:      req.Title,
		FixTitles:  req.FixTitles,
		Exceptions: req.Exceptions,
	}
	delta, err := diffVersions(ctx, r, mb.TreeSHA, head.TreeSHA, !batched)
	if err != nil {
		return Result{}, err
	}
	for _, p := range delta.Packages {
		in.Layout = append(in.Layout, policy.LayoutProblem{
			Path: PackagesDir + "/" + p.Package, Kind: layoutKind(p.NewType), Package: p.Package,
		})
	}
	type judged struct {
		change policy.Change
		layout []policy.LayoutProblem
		ok     bool
	}
	results := make([]judged, len(delta.Versions))
	versions := newGroup(ctx, readConcurrency(r))
	for i, v := range delta.Versions {
		versions.Go(func(ctx context.Context) error {
			change, layout, ok, err := g.change(ctx, v)
			if err != nil {
				return fmt.Errorf("%s@%s: %w", v.Package, v.Version, err)
			}
			results[i] = judged{change, layout, ok}
			return nil
		})
	}
	versions.Go(func(ctx context.Context) error {
		rf, err := registryFiles(ctx, r, mb.TreeSHA, head.TreeSHA)
		in.Registry = rf
		return err
	})
	if err := versions.Wait(); err != nil {
		return Result{}, err
	}
	for i, v := range delta.Versions {
		if v.NewSHA != "" && v.NewType != TypeTree {
			in.Layout = append(in.Layout, policy.LayoutProblem{
				Path: VersionPath(v.Package, v.Version), Kind: layoutKind(v.NewType), Package: v.Package, Version: v.Version,
			})
		}
		in.Layout = append(in.Layout, results[i].layout...)
		if results[i].ok {
			in.Changes = append(in.Changes, results[i].change)
		}
	}
	return Result{Input: in, MergeBase: mb.SHA, Head: head.SHA, Base: base.SHA, BatchErr: g.batchErr}, nil
}

// concurrentReader is implemented by readers whose reads may overlap, each being a round trip (GitHub).
// Concurrency says how many are worth having in flight. Other readers are read one call at a time.
type concurrentReader interface {
	Concurrency() int
}

func readConcurrency(r Reader) int {
	if c, ok := r.(concurrentReader); ok {
		return max(c.Concurrency(), 1)
	}
	return 1
}

type gatherer struct {
	r      Reader
	req    Request
	base   *branchState
	others map[string]*branchState
	// batchErr is why the batch reads failed, when they did (the evaluation then read through REST).
	batchErr error
	// listings memoizes recursive listings of version trees by SHA; mu guards it.
	mu       sync.Mutex
	listings map[string][]TreeEntry
}

// change judges one version that differs between merge-base and head against base. ok is false when the
// version is the same at base and head (or absent from both).
func (g *gatherer) change(ctx context.Context, v VersionDelta) (policy.Change, []policy.LayoutProblem, bool, error) {
	c := policy.Change{Package: v.Package, Version: v.Version}
	headTree := ""
	if v.NewType == TypeTree {
		headTree = v.NewSHA
	}
	// What every outcome needs, read together: the package at base and in the other channels, and the new
	// files. Later reads (base files of a modified version, the manifest, the copies' files) overlap too.
	ahead := newGroup(ctx, readConcurrency(g.r))
	ahead.Go(func(ctx context.Context) error {
		if _, err := g.base.packageVersions(ctx, v.Package); err != nil {
			return fmt.Errorf("read base: %w", err)
		}
		return nil
	})
	for name, st := range g.others {
		ahead.Go(func(ctx context.Context) error {
			if _, err := st.packageVersions(ctx, v.Package); err != nil {
				return fmt.Errorf("read channel %s: %w", name, err)
			}
			return nil
		})
	}
	if headTree != "" {
		ahead.Go(func(ctx context.Context) error {
			_, err := g.files(ctx, headTree)
			return err
		})
	}
	if err := ahead.Wait(); err != nil {
		return c, nil, false, err
	}
	baseEntry, err := g.base.version(ctx, v.Package, v.Version)
	if err != nil {
		return c, nil, false, fmt.Errorf("read base: %w", err)
	}
	baseTree := ""
	if baseEntry.Type == TypeTree {
		baseTree = baseEntry.SHA
	}
	switch {
	case headTree != "" && baseTree == "":
		c.Kind, c.Tree = policy.Added, headTree
	case headTree != "" && baseTree != "":
		if headTree == baseTree {
			return c, nil, false, nil
		}
		same, err := g.identical(ctx, baseTree, headTree)
		if err != nil {
			return c, nil, false, err
		}
		if same {
			return c, nil, false, nil
		}
		c.Kind, c.Tree, c.BaseTree = policy.Modified, headTree, baseTree
	case baseTree != "":
		c.Kind, c.Tree, c.BaseTree = policy.Removed, baseTree, baseTree
	default:
		return c, nil, false, nil
	}
	if c.ChannelVersions, err = g.base.versionNames(ctx, v.Package); err != nil {
		return c, nil, false, fmt.Errorf("read base: %w", err)
	}
	var layout []policy.LayoutProblem
	var others map[string]policy.Copy
	judged := c // contents fills c concurrently; copies needs only the version and its tree
	both := newGroup(ctx, readConcurrency(g.r))
	if c.Kind != policy.Removed {
		both.Go(func(ctx context.Context) (err error) {
			layout, err = g.contents(ctx, &c)
			return err
		})
	}
	both.Go(func(ctx context.Context) (err error) {
		others, err = g.copies(ctx, judged)
		return err
	})
	if err := both.Wait(); err != nil {
		return c, nil, false, err
	}
	c.Others = others
	return c, layout, true, nil
}

// files lists every file below a version tree with one recursive read, at most once per Gather.
func (g *gatherer) files(ctx context.Context, tree string) ([]TreeEntry, error) {
	g.mu.Lock()
	l, ok := g.listings[tree]
	g.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := g.r.Tree(ctx, tree, true)
	if err != nil {
		return nil, fmt.Errorf("list files of tree %s: %w", tree, err)
	}
	g.mu.Lock()
	g.listings[tree] = l
	g.mu.Unlock()
	return l, nil
}

// identical is Identical on two version trees, answered from their recursive listings: a changed version
// needs those listings anyway (for Paths), so comparing them costs no further reads.
func (g *gatherer) identical(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	var fa, fb []TreeEntry
	both := newGroup(ctx, readConcurrency(g.r))
	both.Go(func(ctx context.Context) (err error) {
		fa, err = g.files(ctx, a)
		return err
	})
	both.Go(func(ctx context.Context) (err error) {
		fb, err = g.files(ctx, b)
		return err
	})
	if err := both.Wait(); err != nil {
		return false, err
	}
	return identicalListings(fa, fb), nil
}

// contents fills Paths and Manifest of an added or modified version and reports symlinks and submodules in it.
func (g *gatherer) contents(ctx context.Context, c *policy.Change) ([]policy.LayoutProblem, error) {
	dir := VersionPath(c.Package, c.Version)
	files, err := g.files(ctx, c.Tree)
	if err != nil {
		return nil, err
	}
	old := map[string]string{}
	if c.BaseTree != "" {
		baseFiles, err := g.files(ctx, c.BaseTree)
		if err != nil {
			return nil, err
		}
		for _, f := range baseFiles {
			if f.Type != TypeTree {
				old[f.Path] = f.SHA
			}
		}
	}
	var layout []policy.LayoutProblem
	for _, f := range files {
		if f.Type == TypeTree {
			continue
		}
		full := dir + "/" + f.Path
		if f.Mode == ModeSymlink || f.Mode == ModeGitlink {
			kind := "symlink"
			if f.Mode == ModeGitlink {
				kind = "submodule"
			}
			layout = append(layout, policy.LayoutProblem{Path: full, Kind: kind, Package: c.Package, Version: c.Version})
		}
		if old[f.Path] != f.SHA {
			c.Paths = append(c.Paths, full)
		}
		if f.Path == ManifestFile && f.Type == TypeBlob {
			data, err := g.r.Blob(ctx, f.SHA)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", full, err)
			}
			c.Manifest = policy.Manifest{Present: true, Path: full, Data: data}
		}
	}
	sort.Strings(c.Paths)
	return layout, nil
}

// copies finds the same version in every other channel, the channels read concurrently.
func (g *gatherer) copies(ctx context.Context, c policy.Change) (map[string]policy.Copy, error) {
	var mu sync.Mutex
	copies := map[string]policy.Copy{}
	channels := newGroup(ctx, readConcurrency(g.r))
	for name, st := range g.others {
		channels.Go(func(ctx context.Context) error {
			e, err := st.version(ctx, c.Package, c.Version)
			if err != nil {
				return fmt.Errorf("read channel %s: %w", name, err)
			}
			if e.Type != TypeTree {
				return nil
			}
			same, err := g.identical(ctx, c.Tree, e.SHA)
			if err != nil {
				return fmt.Errorf("compare with channel %s: %w", name, err)
			}
			mu.Lock()
			copies[name] = policy.Copy{TreeSHA: e.SHA, Identical: same}
			mu.Unlock()
			return nil
		})
	}
	if err := channels.Wait(); err != nil {
		return nil, err
	}
	return copies, nil
}

func layoutKind(t EntryType) string {
	if t == TypeCommit {
		return "submodule"
	}
	return "not-a-directory"
}

// registryFiles reports whether Dockerfile or go.mod differ between the two root trees and, when they do, the
// contents of both on the new side (registry-version looks at nothing else).
func registryFiles(ctx context.Context, r Reader, oldRoot, newRoot string) (policy.RegistryFiles, error) {
	var rf policy.RegistryFiles
	oldEntries, err := TreeByName(ctx, r, oldRoot)
	if err != nil {
		return rf, fmt.Errorf("read root tree: %w", err)
	}
	newEntries, err := TreeByName(ctx, r, newRoot)
	if err != nil {
		return rf, fmt.Errorf("read root tree: %w", err)
	}
	for _, name := range []string{DockerfilePath, GoModPath} {
		if oldEntries[name].SHA != newEntries[name].SHA {
			rf.Touched = true
		}
	}
	if !rf.Touched {
		return rf, nil
	}
	for _, name := range []string{DockerfilePath, GoModPath} {
		n := newEntries[name]
		if n.SHA == "" || n.Type != TypeBlob {
			continue
		}
		data, err := r.Blob(ctx, n.SHA)
		if err != nil {
			return rf, fmt.Errorf("read %s: %w", name, err)
		}
		if name == DockerfilePath {
			rf.Dockerfile = data
		} else {
			rf.GoMod = data
		}
	}
	return rf, nil
}

// branchState reads the packages of one branch state lazily, each tree at most once. It is safe for
// concurrent use: concurrent first reads of a package may both ask the reader, whose cache answers the second.
type branchState struct {
	r    Reader
	root string

	mu       sync.Mutex
	packages map[string]TreeEntry
	versions map[string]map[string]TreeEntry
}

func newBranchState(r Reader, root string) *branchState {
	return &branchState{r: r, root: root, versions: map[string]map[string]TreeEntry{}}
}

// warm reads the branch's packages/ tree ahead of need.
func (s *branchState) warm(ctx context.Context) error {
	if _, err := s.packageEntries(ctx); err != nil {
		return fmt.Errorf("read packages of tree %s: %w", s.root, err)
	}
	return nil
}

// version returns the entry of packages/<pkg>/<version>; the zero entry when absent.
func (s *branchState) version(ctx context.Context, pkg, version string) (TreeEntry, error) {
	vs, err := s.packageVersions(ctx, pkg)
	if err != nil {
		return TreeEntry{}, err
	}
	return vs[version], nil
}

// versionNames lists the version directories of a package, sorted.
func (s *branchState) versionNames(ctx context.Context, pkg string) ([]string, error) {
	vs, err := s.packageVersions(ctx, pkg)
	if err != nil {
		return nil, err
	}
	var names []string
	for name, e := range vs {
		if e.Type == TypeTree {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// packageEntries lists packages/ by name.
func (s *branchState) packageEntries(ctx context.Context) (map[string]TreeEntry, error) {
	s.mu.Lock()
	pkgs := s.packages
	s.mu.Unlock()
	if pkgs != nil {
		return pkgs, nil
	}
	sha, err := Subtree(ctx, s.r, s.root, PackagesDir)
	if err != nil {
		return nil, err
	}
	if pkgs, err = TreeByName(ctx, s.r, sha); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.packages = pkgs
	s.mu.Unlock()
	return pkgs, nil
}

func (s *branchState) packageVersions(ctx context.Context, pkg string) (map[string]TreeEntry, error) {
	s.mu.Lock()
	vs, ok := s.versions[pkg]
	s.mu.Unlock()
	if ok {
		return vs, nil
	}
	pkgs, err := s.packageEntries(ctx)
	if err != nil {
		return nil, err
	}
	if vs, err = versionEntries(ctx, s.r, pkgs[pkg]); err != nil {
		return nil, err
	}
	if vs == nil {
		vs = map[string]TreeEntry{}
	}
	s.mu.Lock()
	s.versions[pkg] = vs
	s.mu.Unlock()
	return vs, nil
}
