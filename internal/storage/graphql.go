package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/storagebot/storagebot/internal/keyset"
)

// GraphQL batch reads (docs/architecture.md §3, §8). Trees and blobs addressed by SHA can be read many at a time
// through GitHub's GraphQL API: one query names every object with an alias,
//
//	repository(owner: "o", name: "r") {
//	  o0: object(oid: "<tree>") { ... on Tree { ...L1 } }
//	  o1: object(oid: "<commit>") { ... on Commit { tree { ...L1 } } }
//	  o2: object(expression: "<commit>:packages/p/1.0.0/manifest.yml") { ... on Blob { oid text byteSize isTruncated } }
//	}
//
// with named fragments L0 … Ln nesting Tree.entries n+1 levels deep. What comes back is put into the same
// ObjectCache the REST reads use, under the same keys, so the rest of the evaluation reads it as if it had
// been fetched by REST. Anything the batch could not answer (an error, a tree deeper than the query asked for,
// a truncated or binary blob) is simply not cached, and the REST reader fetches it when it is needed: REST is
// the fallback, and GraphQL can be switched off (ObjectCache.SetGraphQL).

// maxBatchDepth is how many levels below a version tree one batch lists: deep enough for every package layout
// seen in real storages (data_stream/<ds>/elasticsearch/ingest_pipeline/<file> is 4); a deeper tree is listed
// by REST.
const maxBatchDepth = 8

// TreeRead asks a batch for the tree with this SHA, Depth levels deep (1 = its own entries).
type TreeRead struct {
	SHA   string
	Depth int
}

// PathRead asks a batch for the blob at Path below commit Rev.
type PathRead struct {
	Rev, Path string
}

// Batch lists the objects one batch read fetches.
type Batch struct {
	// Commits are commits whose root tree is listed two levels deep (the root and its directories).
	Commits []string
	Trees   []TreeRead
	// Blobs are read by path; their text is cached under their blob SHA.
	Blobs []PathRead
}

func (b Batch) empty() bool { return len(b.Commits)+len(b.Trees)+len(b.Blobs) == 0 }

// batchReader is implemented by readers that read many objects in one request (GitHub's GraphQL API).
type batchReader interface {
	// batching reports whether batch reads are enabled.
	batching() bool
	// readBatch reads every object of b in one request and caches what came back; it returns the root tree
	// of each commit of b.Commits it could read.
	readBatch(ctx context.Context, b Batch) (commitTrees map[string]string, err error)
	// hasTree reports whether the tree's listing is cached already.
	hasTree(sha string) bool
}

var _ batchReader = (*GitHubReader)(nil)

func (g *GitHubReader) batching() bool { return g.cache.GraphQL() }

// ErrGraphQL marks a batch read GitHub refused or answered with errors only; callers fall back to REST.
var ErrGraphQL = errors.New("graphql batch read failed")

// gqlObject is a git object in a GraphQL answer: a Commit (Tree set), a Tree (Entries set, even when empty)
// or a Blob (Text and the sizes).
type gqlObject struct {
	OID         string      `json:"oid"`
	Tree        *gqlObject  `json:"tree"`
	Entries     *[]gqlEntry `json:"entries"`
	Text        *string     `json:"text"`
	ByteSize    int         `json:"byteSize"`
	IsTruncated bool        `json:"isTruncated"`
}

// gqlEntry is a TreeEntry; GitHub's mode is the octal file mode's value as an Int.
type gqlEntry struct {
	Name   string     `json:"name"`
	Type   string     `json:"type"`
	Mode   int        `json:"mode"`
	OID    string     `json:"oid"`
	Object *gqlObject `json:"object"`
}

// gqlAnswerError is one entry of a GraphQL answer's errors.
type gqlAnswerError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Path    []any  `json:"path"`
}

// errResourceLimits marks a batch GitHub refused as too big for one call (its node or resource limits).
var errResourceLimits = errors.New("over GitHub's GraphQL resource limits")

// readBatch reads b in one query and caches every complete listing and every whole blob text. A batch GitHub
// refuses as too big is split in two halves, read concurrently, down to single objects: one object too big
// for a query fails the batch (and the evaluation reads through REST).
func (g *GitHubReader) readBatch(ctx context.Context, b Batch) (map[string]string, error) {
	trees, err := g.readOneBatch(ctx, b)
	if err == nil || !errors.Is(err, errResourceLimits) {
		return trees, err
	}
	first, second, ok := b.split()
	if !ok {
		return nil, err
	}
	var halves [2]map[string]string
	grp := newGroup(ctx, 2)
	for i, half := range []Batch{first, second} {
		grp.Go(func(ctx context.Context) (err error) {
			halves[i], err = g.readBatch(ctx, half)
			return err
		})
	}
	if err := grp.Wait(); err != nil {
		return nil, err
	}
	for sha, tree := range halves[1] {
		halves[0][sha] = tree
	}
	return halves[0], nil
}

// split halves a batch of more than one object.
func (b Batch) split() (Batch, Batch, bool) {
	type item struct {
		commit string
		tree   TreeRead
		blob   PathRead
	}
	var all []item
	for _, c := range b.Commits {
		all = append(all, item{commit: c})
	}
	for _, t := range b.Trees {
		all = append(all, item{tree: t})
	}
	for _, p := range b.Blobs {
		all = append(all, item{blob: p})
	}
	if len(all) < 2 {
		return b, Batch{}, false
	}
	var halves [2]Batch
	for i, it := range all {
		h := &halves[i*2/len(all)]
		switch {
		case it.commit != "":
			h.Commits = append(h.Commits, it.commit)
		case it.tree.SHA != "":
			h.Trees = append(h.Trees, it.tree)
		default:
			h.Blobs = append(h.Blobs, it.blob)
		}
	}
	return halves[0], halves[1], true
}

// readOneBatch reads b in one query.
func (g *GitHubReader) readOneBatch(ctx context.Context, b Batch) (map[string]string, error) {
	if b.empty() {
		return map[string]string{}, nil
	}
	query, aliases := batchQuery(g.owner, g.repo, b)
	var answer struct {
		Data *struct {
			Repository map[string]*gqlObject `json:"repository"`
		} `json:"data"`
		Errors []gqlAnswerError `json:"errors"`
	}
	if err := g.graphQL(ctx, query, &answer); err != nil {
		return nil, err
	}
	if answer.Data == nil || answer.Data.Repository == nil {
		msg := "no data"
		if len(answer.Errors) > 0 {
			msg = answer.Errors[0].Message
			if t := answer.Errors[0].Type; t != "" {
				msg = t + ": " + msg
			}
			switch answer.Errors[0].Type {
			case "RESOURCE_LIMITS_EXCEEDED", "MAX_NODE_LIMIT_EXCEEDED":
				return nil, fmt.Errorf("%w: %w: %s/%s: %s", ErrGraphQL, errResourceLimits, g.owner, g.repo, msg)
			}
		}
		return nil, fmt.Errorf("%w: %s/%s: %s", ErrGraphQL, g.owner, g.repo, msg)
	}
	// Errors beside data name objects that could not be resolved (NOT_FOUND): their fields are null, so they
	// are not cached and REST reads them (and reports what is wrong) if the evaluation needs them.
	commitTrees := map[string]string{}
	for alias, req := range aliases {
		obj := answer.Data.Repository[alias]
		if obj == nil {
			continue
		}
		switch {
		case req.commit != "":
			if obj.Tree == nil || obj.Tree.OID == "" {
				continue
			}
			commitTrees[req.commit] = obj.Tree.OID
			g.cacheBatchTree(obj.Tree, 2)
		case req.tree.SHA != "":
			if obj.OID != req.tree.SHA {
				continue
			}
			g.cacheBatchTree(obj, req.tree.Depth)
		default:
			if obj.OID == "" || obj.Text == nil || obj.IsTruncated || len(*obj.Text) != obj.ByteSize {
				continue // binary, truncated or absent: REST reads the blob
			}
			g.cache.add(g.key("blob", obj.OID), []byte(*obj.Text))
		}
	}
	return commitTrees, nil
}

// batchAlias is what one alias of a batch query asked for.
type batchAlias struct {
	commit string
	tree   TreeRead
	blob   PathRead
}

// batchQuery writes the query of b: one alias per object, the named fragments the deepest read needs (and no
// more: GraphQL refuses a document with an unused fragment).
func batchQuery(owner, repo string, b Batch) (string, map[string]batchAlias) {
	var q strings.Builder
	aliases := map[string]batchAlias{}
	deepest := 0
	fmt.Fprintf(&q, "query {\n  repository(owner: %s, name: %s) {\n", quoteGraphQL(owner), quoteGraphQL(repo))
	n := 0
	next := func() string {
		a := "o" + strconv.Itoa(n)
		n++
		return a
	}
	for _, c := range b.Commits {
		a := next()
		aliases[a] = batchAlias{commit: c}
		deepest = max(deepest, 2)
		fmt.Fprintf(&q, "    %s: object(oid: %s) { ... on Commit { tree { ...L1 } } }\n", a, quoteGraphQL(c))
	}
	for _, t := range b.Trees {
		depth := min(max(t.Depth, 1), maxBatchDepth)
		a := next()
		aliases[a] = batchAlias{tree: TreeRead{SHA: t.SHA, Depth: depth}}
		deepest = max(deepest, depth)
		fmt.Fprintf(&q, "    %s: object(oid: %s) { ... on Tree { ...L%d } }\n", a, quoteGraphQL(t.SHA), depth-1)
	}
	for _, p := range b.Blobs {
		a := next()
		aliases[a] = batchAlias{blob: p}
		fmt.Fprintf(&q, "    %s: object(expression: %s) { ... on Blob { oid text byteSize isTruncated } }\n", a, quoteGraphQL(p.Rev+":"+p.Path))
	}
	q.WriteString("  }\n}\n")
	if deepest > 0 {
		q.WriteString("fragment L0 on Tree { oid entries { name type mode oid } }\n")
	}
	for d := 1; d < deepest; d++ {
		fmt.Fprintf(&q, "fragment L%d on Tree { oid entries { name type mode oid object { ...L%d } } }\n", d, d-1)
	}
	return q.String(), aliases
}

// quoteGraphQL writes s as a GraphQL string literal (JSON's escapes are GraphQL's).
func quoteGraphQL(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// cacheBatchTree caches the single-level listing of every tree of obj that came back listed and, when the
// answer lists obj completely (no directory left unlisted within depth), its recursive listing and every
// listing below it.
func (g *GitHubReader) cacheBatchTree(obj *gqlObject, depth int) {
	var all []TreeEntry
	complete := true
	var walk func(t *gqlObject, prefix string)
	walk = func(t *gqlObject, prefix string) {
		if t.Entries == nil {
			complete = false
			return
		}
		flat := make([]TreeEntry, 0, len(*t.Entries))
		for _, e := range *t.Entries {
			te := TreeEntry{Path: e.Name, Mode: fmt.Sprintf("%06o", e.Mode), Type: EntryType(e.Type), SHA: e.OID}
			flat = append(flat, te)
			te.Path = prefix + e.Name
			all = append(all, te)
			if te.Type != TypeTree {
				continue
			}
			if e.Object == nil || e.Object.OID != e.OID {
				complete = false
				continue
			}
			walk(e.Object, te.Path+"/")
		}
		g.cache.add(g.key("tree", t.OID), flat)
	}
	walk(obj, "")
	if complete && depth > 1 {
		g.cacheSubtrees(obj.OID, all)
		g.cache.add(g.key("tree-recursive", obj.OID), all)
	}
}

// graphQL sends one query through the installation client (its token, retries and rate-limit accounting:
// go-github and the transport count /graphql against the GraphQL budget, not the REST one) in one of the
// account's read slots, and decodes the answer into v.
func (g *GitHubReader) graphQL(ctx context.Context, query string, v any) error {
	endpoint := "graphql"
	if strings.HasSuffix(g.client.BaseURL.Path, "/api/v3/") {
		endpoint = "../graphql" // GitHub Enterprise Server: https://HOST/api/graphql beside /api/v3/
	}
	body, err := json.Marshal(map[string]string{"query": query})
	if err != nil {
		return fmt.Errorf("encode graphql query: %w", err)
	}
	return g.call(ctx, func() error {
		req, err := g.client.NewRequest(http.MethodPost, endpoint, json.RawMessage(body))
		if err != nil {
			return fmt.Errorf("graphql request for %s/%s: %w", g.owner, g.repo, err)
		}
		var raw bytes.Buffer
		if _, err := g.client.Do(ctx, req, &raw); err != nil {
			return fmt.Errorf("%w: %s/%s: %w", ErrGraphQL, g.owner, g.repo, err)
		}
		if err := json.Unmarshal(raw.Bytes(), v); err != nil {
			return fmt.Errorf("%w: %s/%s: decode answer: %w", ErrGraphQL, g.owner, g.repo, err)
		}
		return nil
	})
}

// hasTree reports whether the single-level listing of the tree with this SHA is cached.
func (g *GitHubReader) hasTree(sha string) bool {
	_, ok := g.cache.lru.Peek(g.key("tree", sha))
	return ok
}

// prefetch reads, in three GraphQL calls whatever the number of packages touched, every tree and manifest the
// evaluation will read, and leaves them in the reader's cache; head gets its root tree. The calls depend on
// each other: (1) the head commit's root and the root trees of the merge base, base and other channels, two
// levels deep (their packages/ listings); (2) the trees of the packages whose entry differs between merge
// base and head, in every state; (3) the complete listings of the versions that differ, in every state that
// holds them, with the head's manifests and, when touched, the head's Dockerfile and go.mod. What the batches
// could not answer is read through REST later.
func (g *gatherer) prefetch(ctx context.Context, b batchReader, head *Commit, mb Commit) error {
	type state struct {
		root string
		pkgs map[string]TreeEntry
	}
	states := []*state{{root: mb.TreeSHA}, {root: head.TreeSHA}, {root: g.base.root}}
	for _, st := range g.others {
		states = append(states, &state{root: st.root})
	}
	seen := map[string]bool{}
	var first Batch
	if head.TreeSHA == "" {
		first.Commits = []string{head.SHA}
	}
	for _, st := range states {
		if st.root != "" && !seen[st.root] && !b.hasTree(st.root) {
			seen[st.root] = true
			first.Trees = append(first.Trees, TreeRead{SHA: st.root, Depth: 2})
		}
	}
	trees, err := b.readBatch(ctx, first)
	if err != nil {
		return fmt.Errorf("read root trees: %w", err)
	}
	if head.TreeSHA == "" {
		if head.TreeSHA = trees[head.SHA]; head.TreeSHA == "" {
			return fmt.Errorf("%w: head commit %s not in the answer", ErrGraphQL, head.SHA)
		}
	}
	states[1].root = head.TreeSHA
	for _, st := range states {
		sha, err := Subtree(ctx, g.r, st.root, PackagesDir)
		if err != nil {
			return err
		}
		if st.pkgs, err = TreeByName(ctx, g.r, sha); err != nil {
			return err
		}
	}
	mbPkgs, headPkgs := states[0].pkgs, states[1].pkgs
	var touched []string
	for _, name := range keyset.SortedUnion(mbPkgs, headPkgs) {
		if o, n := mbPkgs[name], headPkgs[name]; o.SHA != n.SHA || o.Type != n.Type {
			touched = append(touched, name)
		}
	}
	var second Batch
	for _, name := range touched {
		for _, st := range states {
			if e := st.pkgs[name]; e.Type == TypeTree && !seen[e.SHA] && !b.hasTree(e.SHA) {
				seen[e.SHA] = true
				second.Trees = append(second.Trees, TreeRead{SHA: e.SHA, Depth: 1})
			}
		}
	}
	if _, err := b.readBatch(ctx, second); err != nil {
		return fmt.Errorf("read package trees: %w", err)
	}
	var third Batch
	for _, name := range touched {
		versions := make([]map[string]TreeEntry, len(states))
		for i, st := range states {
			if versions[i], err = versionEntries(ctx, g.r, st.pkgs[name]); err != nil {
				return err
			}
		}
		for _, v := range keyset.SortedUnion(versions[0], versions[1]) {
			o, n := versions[0][v], versions[1][v]
			if o.SHA == n.SHA && o.Type == n.Type {
				continue
			}
			for i, vs := range versions {
				if e := vs[v]; i > 0 && e.Type == TypeTree && !seen[e.SHA] {
					seen[e.SHA] = true
					third.Trees = append(third.Trees, TreeRead{SHA: e.SHA, Depth: maxBatchDepth})
				}
			}
			if n.Type == TypeTree {
				third.Blobs = append(third.Blobs, PathRead{Rev: head.SHA, Path: VersionPath(name, v) + "/" + ManifestFile})
			}
		}
	}
	oldRoot, err := TreeByName(ctx, g.r, mb.TreeSHA)
	if err != nil {
		return err
	}
	newRoot, err := TreeByName(ctx, g.r, head.TreeSHA)
	if err != nil {
		return err
	}
	for _, name := range []string{DockerfilePath, GoModPath} {
		if n := newRoot[name]; n.SHA != oldRoot[name].SHA && n.Type == TypeBlob {
			third.Blobs = append(third.Blobs, PathRead{Rev: head.SHA, Path: name})
		}
	}
	if _, err := b.readBatch(ctx, third); err != nil {
		return fmt.Errorf("read version trees: %w", err)
	}
	return nil
}
