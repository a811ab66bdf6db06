package storage

import (
	"context"
	"fmt"
	"sort"

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
}

// Gather reads the facts of a change from r into a policy.Input. It reads O(touched packages) objects: the
// root and packages/ trees of base, head, merge-base and each other channel, the touched packages' trees, one
// recursive listing per version tree it compares (which also answers whether two copies are identical) and
// each changed version's manifest, independent of file count and storage size.
func Gather(ctx context.Context, r Reader, req Request) (Result, error) {
	base, err := r.ResolveRevision(ctx, req.Base)
	if err != nil {
		return Result{}, fmt.Errorf("gather: base: %w", err)
	}
	head, err := r.ResolveRevision(ctx, req.Head)
	if err != nil {
		return Result{}, fmt.Errorf("gather: head: %w", err)
	}
	mbSHA, err := r.MergeBase(ctx, base.SHA, head.SHA)
	if err != nil {
		return Result{}, fmt.Errorf("gather: %w", err)
	}
	mb, err := r.ResolveRevision(ctx, mbSHA)
	if err != nil {
		return Result{}, fmt.Errorf("gather: merge base: %w", err)
	}
	g := &gatherer{
		r:        r,
		req:      req,
		base:     newBranchState(r, base.TreeSHA),
		others:   map[string]*branchState{},
		listings: map[string][]TreeEntry{},
	}
	for name, rev := range req.Others {
		if name == req.Channel {
			continue
		}
		c, err := r.ResolveRevision(ctx, rev)
		if err != nil {
			return Result{}, fmt.Errorf("gather: channel %s: %w", name, err)
		}
		g.others[name] = newBranchState(r, c.TreeSHA)
	}
	in := policy.Input{
		Channel:    req.Channel,
		Channels:   req.Channels,
		Branch:     req.Branch,
		Title:      req.Title,
		FixTitles:  req.FixTitles,
		Exceptions: req.Exceptions,
	}
	delta, err := DiffVersions(ctx, r, mb.TreeSHA, head.TreeSHA)
	if err != nil {
		return Result{}, fmt.Errorf("gather: %w", err)
	}
	for _, p := range delta.Packages {
		in.Layout = append(in.Layout, policy.LayoutProblem{
			Path: PackagesDir + "/" + p.Package, Kind: layoutKind(p.NewType), Package: p.Package,
		})
	}
	for _, v := range delta.Versions {
		if v.NewSHA != "" && v.NewType != TypeTree {
			in.Layout = append(in.Layout, policy.LayoutProblem{
				Path: VersionPath(v.Package, v.Version), Kind: layoutKind(v.NewType), Package: v.Package, Version: v.Version,
			})
		}
		change, layout, ok, err := g.change(ctx, v)
		if err != nil {
			return Result{}, fmt.Errorf("gather: %s@%s: %w", v.Package, v.Version, err)
		}
		in.Layout = append(in.Layout, layout...)
		if ok {
			in.Changes = append(in.Changes, change)
		}
	}
	if in.Registry, err = registryFiles(ctx, r, mb.TreeSHA, head.TreeSHA); err != nil {
		return Result{}, fmt.Errorf("gather: %w", err)
	}
	return Result{Input: in, MergeBase: mb.SHA, Head: head.SHA, Base: base.SHA}, nil
}

type gatherer struct {
	r      Reader
	req    Request
	base   *branchState
	others map[string]*branchState
	// listings memoizes recursive listings of version trees by SHA.
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
	if c.Kind != policy.Removed {
		if layout, err = g.contents(ctx, &c); err != nil {
			return c, nil, false, err
		}
	}
	if c.Others, err = g.copies(ctx, c); err != nil {
		return c, nil, false, err
	}
	return c, layout, true, nil
}

// files lists every file below a version tree with one recursive read, at most once per Gather.
func (g *gatherer) files(ctx context.Context, tree string) ([]TreeEntry, error) {
	if l, ok := g.listings[tree]; ok {
		return l, nil
	}
	l, err := g.r.Tree(ctx, tree, true)
	if err != nil {
		return nil, fmt.Errorf("list files of tree %s: %w", tree, err)
	}
	g.listings[tree] = l
	return l, nil
}

// identical is Identical on two version trees, answered from their recursive listings: a changed version
// needs those listings anyway (for Paths), so comparing them costs no further reads.
func (g *gatherer) identical(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	fa, err := g.files(ctx, a)
	if err != nil {
		return false, err
	}
	fb, err := g.files(ctx, b)
	if err != nil {
		return false, err
	}
	return sameFiles(fa, fb), nil
}

// sameFiles reports whether two recursive listings hold the same files with the same contents, regular file
// modes ignored (the rule of Identical).
func sameFiles(a, b []TreeEntry) bool {
	type file struct {
		sha     string
		typ     EntryType
		symlink bool
	}
	files := func(l []TreeEntry) map[string]file {
		m := make(map[string]file, len(l))
		for _, e := range l {
			if e.Type != TypeTree {
				m[e.Path] = file{sha: e.SHA, typ: e.Type, symlink: isSymlink(e)}
			}
		}
		return m
	}
	fa, fb := files(a), files(b)
	if len(fa) != len(fb) {
		return false
	}
	for p, f := range fa {
		if fb[p] != f {
			return false
		}
	}
	return true
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

// copies finds the same version in every other channel.
func (g *gatherer) copies(ctx context.Context, c policy.Change) (map[string]policy.Copy, error) {
	copies := map[string]policy.Copy{}
	for name, st := range g.others {
		e, err := st.version(ctx, c.Package, c.Version)
		if err != nil {
			return nil, fmt.Errorf("read channel %s: %w", name, err)
		}
		if e.Type != TypeTree {
			continue
		}
		same, err := g.identical(ctx, c.Tree, e.SHA)
		if err != nil {
			return nil, fmt.Errorf("compare with channel %s: %w", name, err)
		}
		copies[name] = policy.Copy{TreeSHA: e.SHA, Identical: same}
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
	oldEntries, err := treeMap(ctx, r, oldRoot)
	if err != nil {
		return rf, fmt.Errorf("read root tree: %w", err)
	}
	newEntries, err := treeMap(ctx, r, newRoot)
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

// branchState reads the packages of one branch state lazily, each tree at most once.
type branchState struct {
	r        Reader
	root     string
	packages map[string]TreeEntry
	versions map[string]map[string]TreeEntry
}

func newBranchState(r Reader, root string) *branchState {
	return &branchState{r: r, root: root, versions: map[string]map[string]TreeEntry{}}
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

func (s *branchState) packageVersions(ctx context.Context, pkg string) (map[string]TreeEntry, error) {
	if vs, ok := s.versions[pkg]; ok {
		return vs, nil
	}
	if s.packages == nil {
		pkgs, err := childTree(ctx, s.r, s.root, PackagesDir)
		if err != nil {
			return nil, err
		}
		if s.packages, err = treeMap(ctx, s.r, pkgs); err != nil {
			return nil, err
		}
	}
	vs, err := versionEntries(ctx, s.r, s.packages[pkg])
	if err != nil {
		return nil, err
	}
	if vs == nil {
		vs = map[string]TreeEntry{}
	}
	s.versions[pkg] = vs
	return vs, nil
}
