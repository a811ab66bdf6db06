package githubfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// The fake's GraphQL endpoint answers, from its git objects, the query shape the bot sends for git data:
//
//	query {
//	  repository(owner: "o", name: "r") {
//	    a0: object(oid: "<sha>")              { ... on Commit { oid tree { ...Level2 } } ... on Tree { ...Level2 } }
//	    a1: object(expression: "<rev>:<path>") { ... on Blob { oid text byteSize isTruncated isBinary } }
//	  }
//	}
//	fragment Level2 on Tree { oid entries { name type mode oid object { ...Level1 } } }
//	fragment Level1 on Tree { oid entries { name type mode oid } }
//
// It parses aliases, arguments with string literals, inline fragments on Commit, Tree and Blob, and named
// fragments (without cycles, as GraphQL requires). Anything else — an unknown field, a variable, a mutation —
// is refused with GitHub's error shape: HTTP 200 with {"errors": [{"message", "locations", "path", …}]} and no
// data for a query that does not validate; {"data": …, "errors": [{"type", "path", "message"}]} for a field
// that cannot be resolved (an unknown repository or object: NOT_FOUND, the field null); and
// RESOURCE_LIMITS_EXCEEDED, data null, for an answer over GraphQLMaxNodes objects.

// graphqlPointsPerHour is an installation's GraphQL budget (GitHub: 5,000 points an hour at least).
const graphqlPointsPerHour = 5000

// DefaultGraphQLMaxNodes is GitHub's node limit for one GraphQL call.
const DefaultGraphQLMaxNodes = 500_000

// DefaultGraphQLMaxText is how many bytes of a blob the fake's Blob.text holds before isTruncated.
const DefaultGraphQLMaxText = 512 << 10

// SetGraphQLLimits sets how many git objects (objects and tree entries) one GraphQL answer may hold before
// the call is refused with RESOURCE_LIMITS_EXCEEDED, and how many bytes Blob.text holds; 0 = the defaults.
func (s *Server) SetGraphQLLimits(maxNodes, maxText int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.graphqlMaxNodes, s.graphqlMaxText = maxNodes, maxText
}

// SetGraphQLPointsUsed sets how many of the hour's 5,000 GraphQL points are spent. Once all are, every query
// is answered as GitHub answers past its GraphQL primary limit: 200, an error of type RATE_LIMITED and
// X-RateLimit-Remaining: 0 (the REST budget is not affected).
func (s *Server) SetGraphQLPointsUsed(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.graphqlPoints = n
}

// GraphQLPoints is how many GraphQL rate-limit points were spent since the server started.
func (s *Server) GraphQLPoints() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.graphqlPoints
}

// gqlError is one entry of a GraphQL answer's errors.
type gqlError struct {
	Type      string           `json:"type,omitempty"`
	Path      []any            `json:"path,omitempty"`
	Locations []map[string]int `json:"locations,omitempty"`
	Message   string           `json:"message"`
}

func (e *gqlError) Error() string { return e.Message }

// graphql answers POST /graphql. Callers hold s.mu (dispatch).
func (s *Server) graphql(c *call) (int, any, error) {
	c.header.Set("X-RateLimit-Resource", "graphql")
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.Unmarshal(c.body, &req); err != nil || strings.TrimSpace(req.Query) == "" {
		return http.StatusBadRequest, map[string]any{"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql"}, nil
	}
	if s.graphqlPoints >= graphqlPointsPerHour {
		return http.StatusOK, map[string]any{"errors": []gqlError{{Type: "RATE_LIMITED",
			Message: fmt.Sprintf("API rate limit exceeded for installation ID %d.", s.installationID)}}}, nil
	}
	s.graphqlPoints++ // every query the bot sends costs GitHub's minimum of one point
	doc, perr := parseGraphQL(req.Query)
	if perr != nil {
		return http.StatusOK, map[string]any{"errors": []gqlError{*perr}}, nil
	}
	maxNodes, maxText := s.graphqlMaxNodes, s.graphqlMaxText
	if maxNodes <= 0 {
		maxNodes = DefaultGraphQLMaxNodes
	}
	if maxText <= 0 {
		maxText = DefaultGraphQLMaxText
	}
	ex := &gqlExec{s: s, doc: doc, maxNodes: maxNodes, maxText: maxText}
	data, err := ex.selectQuery(doc.operation)
	if err != nil {
		if ge, ok := err.(*gqlError); ok {
			if ge.Type == "RESOURCE_LIMITS_EXCEEDED" {
				return http.StatusOK, map[string]any{"data": nil, "errors": []gqlError{*ge}}, nil
			}
			return http.StatusOK, map[string]any{"errors": []gqlError{*ge}}, nil
		}
		return 0, nil, err
	}
	out := map[string]any{"data": data}
	if len(ex.errors) > 0 {
		out["errors"] = ex.errors
	}
	return http.StatusOK, out, nil
}

// --- parsing ---------------------------------------------------------------------------------------------

type gqlField struct {
	alias, name string
	args        map[string]string
	sel         []gqlSelection
	line, col   int
}

// gqlSelection is a field, an inline fragment (on != "" with sel) or a fragment spread (spread != "").
type gqlSelection struct {
	field  *gqlField
	on     string
	sel    []gqlSelection
	spread string
	line   int
	col    int
}

type gqlFragment struct {
	on  string
	sel []gqlSelection
}

type gqlDoc struct {
	operation []gqlSelection
	fragments map[string]gqlFragment
}

type gqlParser struct {
	src       string
	pos       int
	line, col int
}

func parseGraphQL(src string) (*gqlDoc, *gqlError) {
	p := &gqlParser{src: src, line: 1, col: 1}
	doc := &gqlDoc{fragments: map[string]gqlFragment{}}
	haveOp := false
	for {
		p.skip()
		if p.pos >= len(p.src) {
			break
		}
		line, col := p.line, p.col
		if p.peek() == '{' {
			if err := p.operation(doc, &haveOp, line, col, "This anonymous operation must be the only defined operation."); err != nil {
				return nil, err
			}
			continue
		}
		word := p.name()
		switch word {
		case "query":
			p.skip()
			if isNameStart(p.peek()) {
				p.name()
				p.skip()
			}
			if p.peek() == '(' {
				return nil, p.errorAt(p.line, p.col, "Variables are not supported by this fake GitHub: send literals")
			}
			if err := p.operation(doc, &haveOp, line, col, "This fake GitHub answers one operation per document"); err != nil {
				return nil, err
			}
		case "fragment":
			p.skip()
			name := p.name()
			p.skip()
			if p.name() != "on" {
				return nil, p.errorAt(p.line, p.col, fmt.Sprintf("Parse error on fragment %q: expected \"on\"", name))
			}
			p.skip()
			on := p.name()
			sel, err := p.selectionSet()
			if err != nil {
				return nil, err
			}
			if _, dup := doc.fragments[name]; dup {
				return nil, p.errorAt(line, col, fmt.Sprintf("Fragment name %q must be unique", name))
			}
			doc.fragments[name] = gqlFragment{on: on, sel: sel}
		case "mutation", "subscription":
			return nil, p.errorAt(line, col, "This fake GitHub answers queries only, not "+word)
		default:
			return nil, p.errorAt(line, col, fmt.Sprintf("Parse error on %q: expected a query or fragment", word))
		}
	}
	if !haveOp {
		return nil, &gqlError{Message: "A query attribute must be specified and must be a string."}
	}
	// GraphQL refuses a document defining a fragment its operation never uses.
	used := map[string]bool{}
	var walk func(sel []gqlSelection)
	walk = func(sel []gqlSelection) {
		for _, s := range sel {
			switch {
			case s.spread != "":
				if !used[s.spread] {
					used[s.spread] = true
					walk(doc.fragments[s.spread].sel)
				}
			case s.field != nil:
				walk(s.field.sel)
			default:
				walk(s.sel)
			}
		}
	}
	walk(doc.operation)
	for name := range doc.fragments {
		if !used[name] {
			return nil, &gqlError{Message: fmt.Sprintf("Fragment %s was defined, but not used", name)}
		}
	}
	return doc, nil
}

func (p *gqlParser) errorAt(line, col int, msg string) *gqlError {
	return &gqlError{Message: msg, Locations: []map[string]int{{"line": line, "column": col}}}
}

func (p *gqlParser) peek() byte {
	if p.pos >= len(p.src) {
		return 0
	}
	return p.src[p.pos]
}

func (p *gqlParser) advance() {
	if p.src[p.pos] == '\n' {
		p.line++
		p.col = 1
	} else {
		p.col++
	}
	p.pos++
}

// skip passes whitespace, commas (insignificant in GraphQL) and comments.
func (p *gqlParser) skip() {
	for p.pos < len(p.src) {
		switch ch := p.src[p.pos]; {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == ',':
			p.advance()
		case ch == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.advance()
			}
		default:
			return
		}
	}
}

func isNameStart(ch byte) bool {
	return ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
}

func (p *gqlParser) name() string {
	start := p.pos
	for p.pos < len(p.src) {
		ch := p.src[p.pos]
		if !isNameStart(ch) && !(ch >= '0' && ch <= '9' && p.pos > start) {
			break
		}
		p.advance()
	}
	return p.src[start:p.pos]
}

func (p *gqlParser) expect(ch byte) *gqlError {
	p.skip()
	if p.peek() != ch {
		got := "end of query"
		if p.pos < len(p.src) {
			got = strconv.Quote(string(p.src[p.pos]))
		}
		return p.errorAt(p.line, p.col, fmt.Sprintf("Parse error on %s: expected %q", got, string(ch)))
	}
	p.advance()
	return nil
}

// operation parses the document's operation, at line and col, into doc. A document holds one: a second is
// refused with tooMany, worded as GitHub words it for that form (anonymous or named).
func (p *gqlParser) operation(doc *gqlDoc, haveOp *bool, line, col int, tooMany string) *gqlError {
	if *haveOp {
		return p.errorAt(line, col, tooMany)
	}
	sel, err := p.selectionSet()
	if err != nil {
		return err
	}
	doc.operation, *haveOp = sel, true
	return nil
}

func (p *gqlParser) selectionSet() ([]gqlSelection, *gqlError) {
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	var out []gqlSelection
	for {
		p.skip()
		line, col := p.line, p.col
		switch {
		case p.peek() == '}':
			p.advance()
			if len(out) == 0 {
				return nil, p.errorAt(line, col, "Parse error on \"}\": a selection set must not be empty")
			}
			return out, nil
		case strings.HasPrefix(p.src[p.pos:], "..."):
			p.pos += 3
			p.col += 3
			p.skip()
			word := p.name()
			if word == "on" {
				p.skip()
				on := p.name()
				sel, err := p.selectionSet()
				if err != nil {
					return nil, err
				}
				out = append(out, gqlSelection{on: on, sel: sel, line: line, col: col})
			} else if word != "" {
				out = append(out, gqlSelection{spread: word, line: line, col: col})
			} else {
				return nil, p.errorAt(line, col, "Parse error on \"...\": expected a fragment name or \"on\"")
			}
		case isNameStart(p.peek()):
			f, err := p.field()
			if err != nil {
				return nil, err
			}
			out = append(out, gqlSelection{field: f, line: line, col: col})
		case p.peek() == '$' || p.peek() == '@':
			return nil, p.errorAt(line, col, "Variables and directives are not supported by this fake GitHub")
		default:
			if p.pos >= len(p.src) {
				return nil, p.errorAt(line, col, "Parse error on end of query: expected \"}\"")
			}
			return nil, p.errorAt(line, col, fmt.Sprintf("Parse error on %q", string(p.src[p.pos])))
		}
	}
}

func (p *gqlParser) field() (*gqlField, *gqlError) {
	f := &gqlField{line: p.line, col: p.col}
	f.name = p.name()
	p.skip()
	if p.peek() == ':' {
		p.advance()
		p.skip()
		f.alias = f.name
		f.name = p.name()
		if f.name == "" {
			return nil, p.errorAt(p.line, p.col, fmt.Sprintf("Parse error after alias %q: expected a field name", f.alias))
		}
		p.skip()
	}
	if f.alias == "" {
		f.alias = f.name
	}
	if p.peek() == '(' {
		p.advance()
		f.args = map[string]string{}
		for {
			p.skip()
			if p.peek() == ')' {
				p.advance()
				break
			}
			arg := p.name()
			if arg == "" {
				return nil, p.errorAt(p.line, p.col, "Parse error in arguments of "+f.name)
			}
			if err := p.expect(':'); err != nil {
				return nil, err
			}
			p.skip()
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			f.args[arg] = v
		}
		p.skip()
	}
	if p.peek() == '{' {
		sel, err := p.selectionSet()
		if err != nil {
			return nil, err
		}
		f.sel = sel
	}
	return f, nil
}

// value reads a string or integer literal.
func (p *gqlParser) value() (string, *gqlError) {
	line, col := p.line, p.col
	switch ch := p.peek(); {
	case ch == '"':
		start := p.pos
		p.advance()
		for p.pos < len(p.src) && p.src[p.pos] != '"' {
			if p.src[p.pos] == '\\' {
				p.advance()
			}
			if p.pos < len(p.src) {
				p.advance()
			}
		}
		if p.pos >= len(p.src) {
			return "", p.errorAt(line, col, "Parse error: unterminated string")
		}
		p.advance()
		var s string
		if err := json.Unmarshal([]byte(p.src[start:p.pos]), &s); err != nil {
			return "", p.errorAt(line, col, "Parse error: bad string literal")
		}
		return s, nil
	case ch == '-' || ch >= '0' && ch <= '9':
		start := p.pos
		for p.pos < len(p.src) && (p.src[p.pos] == '-' || p.src[p.pos] >= '0' && p.src[p.pos] <= '9') {
			p.advance()
		}
		return p.src[start:p.pos], nil
	case ch == '$':
		return "", p.errorAt(line, col, "Variables are not supported by this fake GitHub: send literals")
	}
	return "", p.errorAt(line, col, "Parse error: expected a string or integer argument")
}

// --- execution ---------------------------------------------------------------------------------------------

type gqlExec struct {
	s        *Server
	doc      *gqlDoc
	maxNodes int
	maxText  int
	nodes    int
	errors   []gqlError
	depth    int
}

func fieldError(f *gqlField, path []any, typ, msg string) *gqlError {
	return &gqlError{Type: typ, Path: path, Locations: []map[string]int{{"line": f.line, "column": f.col}}, Message: msg}
}

func undefinedField(f *gqlField, typeName string, path []any) *gqlError {
	e := fieldError(f, append(path, f.alias), "", fmt.Sprintf("Field '%s' doesn't exist on type '%s'", f.name, typeName))
	return e
}

// expand flattens the selections that apply to an object of typeName: its fields, those of inline fragments
// and fragment spreads on that type (or on GitObject, the interface all of them implement).
func (ex *gqlExec) expand(sel []gqlSelection, typeName string, path []any) ([]*gqlField, error) {
	ex.depth++
	defer func() { ex.depth-- }()
	if ex.depth > 64 {
		return nil, &gqlError{Message: "Fragments must not form cycles", Path: path}
	}
	var out []*gqlField
	for _, s := range sel {
		switch {
		case s.field != nil:
			out = append(out, s.field)
		case s.spread != "":
			frag, ok := ex.doc.fragments[s.spread]
			if !ok {
				return nil, &gqlError{Message: fmt.Sprintf("Fragment %s was used, but not defined", s.spread),
					Locations: []map[string]int{{"line": s.line, "column": s.col}}, Path: path}
			}
			if !knownType(frag.on) {
				return nil, &gqlError{Message: fmt.Sprintf("No such type %s, so it can't be a fragment condition", frag.on), Path: path}
			}
			if frag.on == typeName || frag.on == "GitObject" {
				fs, err := ex.expand(frag.sel, typeName, path)
				if err != nil {
					return nil, err
				}
				out = append(out, fs...)
			}
		default:
			if !knownType(s.on) {
				return nil, &gqlError{Message: fmt.Sprintf("No such type %s, so it can't be a fragment condition", s.on),
					Locations: []map[string]int{{"line": s.line, "column": s.col}}, Path: path}
			}
			if s.on == typeName || s.on == "GitObject" {
				fs, err := ex.expand(s.sel, typeName, path)
				if err != nil {
					return nil, err
				}
				out = append(out, fs...)
			}
		}
	}
	return out, nil
}

func knownType(t string) bool {
	switch t {
	case "Commit", "Tree", "Blob", "Tag", "GitObject", "Repository", "TreeEntry", "Query":
		return true
	}
	return false
}

// count charges n nodes to the answer, failing past the node limit.
func (ex *gqlExec) count(n int) error {
	ex.nodes += n
	if ex.nodes > ex.maxNodes {
		return &gqlError{Type: "RESOURCE_LIMITS_EXCEEDED",
			Message: fmt.Sprintf("This query returns more than %d nodes, the maximum a call may request. Ask for fewer objects per call.", ex.maxNodes)}
	}
	return nil
}

func (ex *gqlExec) selectQuery(sel []gqlSelection) (map[string]any, error) {
	fields, err := ex.expand(sel, "Query", nil)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, f := range fields {
		path := []any{f.alias}
		switch f.name {
		case "__typename":
			out[f.alias] = "Query"
		case "repository":
			owner, name := f.args["owner"], f.args["name"]
			if owner == "" || name == "" {
				return nil, fieldError(f, path, "", "Field 'repository' is missing required arguments: owner, name")
			}
			repo := ex.s.repos[strings.ToLower(owner+"/"+name)]
			if repo == nil {
				out[f.alias] = nil
				ex.errors = append(ex.errors, *fieldError(f, path, "NOT_FOUND", fmt.Sprintf("Could not resolve to a Repository with the name '%s/%s'.", owner, name)))
				continue
			}
			v, err := ex.selectRepository(repo, f, path)
			if err != nil {
				return nil, err
			}
			out[f.alias] = v
		default:
			return nil, undefinedField(f, "Query", nil)
		}
	}
	return out, nil
}

func (ex *gqlExec) selectRepository(r *Repo, parent *gqlField, path []any) (map[string]any, error) {
	if parent.sel == nil {
		return nil, fieldError(parent, path, "", "Field must have selections (field 'repository' returns Repository but has no selections)")
	}
	fields, err := ex.expand(parent.sel, "Repository", path)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, f := range fields {
		fpath := append(append([]any{}, path...), f.alias)
		switch f.name {
		case "__typename":
			out[f.alias] = "Repository"
		case "nameWithOwner":
			out[f.alias] = r.owner + "/" + r.name
		case "object":
			oid, hasOID := f.args["oid"]
			expr, hasExpr := f.args["expression"]
			if hasOID == hasExpr {
				return nil, fieldError(f, fpath, "", "Field 'object' takes exactly one of oid or expression")
			}
			if f.sel == nil {
				return nil, fieldError(f, fpath, "", "Field must have selections (field 'object' returns GitObject but has no selections)")
			}
			var h plumbing.Hash
			found := false
			if hasOID {
				if isSHA(oid) {
					h, found = plumbing.NewHash(oid), true
				}
			} else {
				h, found = r.resolveExpression(expr)
			}
			var v any
			if found {
				if v, err = ex.selectObject(r, h, f, fpath); err != nil {
					return nil, err
				}
			}
			if v == nil {
				what := "oid " + oid
				if hasExpr {
					what = "expression " + strconv.Quote(expr)
				}
				ex.errors = append(ex.errors, *fieldError(f, fpath, "NOT_FOUND", "Could not resolve to a GitObject with the "+what+"."))
			}
			out[f.alias] = v
		default:
			return nil, undefinedField(f, "Repository", path)
		}
	}
	return out, nil
}

// resolveExpression resolves "<rev>" to a commit and "<rev>:<path>" to the object at path below rev's
// tree ("<rev>:" is the root tree); rev is a branch, a full ref or a full SHA of a commit or tree.
func (r *Repo) resolveExpression(expr string) (plumbing.Hash, bool) {
	rev, path, hasPath := strings.Cut(expr, ":")
	var tree plumbing.Hash
	if c, ok := r.resolve(rev); ok {
		if !hasPath {
			return c, true
		}
		cm, err := object.GetCommit(r.st, c)
		if err != nil {
			return plumbing.ZeroHash, false
		}
		tree = cm.TreeHash
	} else if isSHA(rev) && hasPath {
		tree = plumbing.NewHash(rev)
		if _, err := object.GetTree(r.st, tree); err != nil {
			return plumbing.ZeroHash, false
		}
	} else {
		return plumbing.ZeroHash, false
	}
	h := tree
	for _, name := range strings.Split(strings.Trim(path, "/"), "/") {
		if name == "" {
			continue
		}
		entries, err := treeEntries(r.st, h)
		if err != nil {
			return plumbing.ZeroHash, false
		}
		e, ok := entries[name]
		if !ok || e.Mode == filemode.Submodule {
			return plumbing.ZeroHash, false
		}
		h = e.Hash
	}
	return h, true
}

// selectObject answers the selection of one git object; nil when the repository does not hold it.
func (ex *gqlExec) selectObject(r *Repo, h plumbing.Hash, parent *gqlField, path []any) (any, error) {
	obj, err := r.st.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, nil
	}
	if err := ex.count(1); err != nil {
		return nil, err
	}
	var typeName string
	switch obj.Type() {
	case plumbing.CommitObject:
		typeName = "Commit"
	case plumbing.TreeObject:
		typeName = "Tree"
	case plumbing.BlobObject:
		typeName = "Blob"
	default:
		typeName = "Tag"
	}
	fields, err := ex.expand(parent.sel, typeName, path)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, f := range fields {
		fpath := append(append([]any{}, path...), f.alias)
		switch {
		case f.name == "__typename":
			out[f.alias] = typeName
		case f.name == "oid":
			out[f.alias] = h.String()
		case f.name == "abbreviatedOid":
			out[f.alias] = h.String()[:7]
		case typeName == "Commit" && f.name == "tree":
			cm, err := object.GetCommit(r.st, h)
			if err != nil {
				return nil, fmt.Errorf("read commit %s: %w", h, err)
			}
			if f.sel == nil {
				return nil, fieldError(f, fpath, "", "Field must have selections (field 'tree' returns Tree but has no selections)")
			}
			v, err := ex.selectObject(r, cm.TreeHash, f, fpath)
			if err != nil {
				return nil, err
			}
			out[f.alias] = v
		case typeName == "Tree" && f.name == "entries":
			v, err := ex.selectEntries(r, h, f, fpath)
			if err != nil {
				return nil, err
			}
			out[f.alias] = v
		case typeName == "Blob" && (f.name == "text" || f.name == "byteSize" || f.name == "isTruncated" || f.name == "isBinary"):
			data, err := readBlob(r.st, h)
			if err != nil {
				return nil, fmt.Errorf("read blob %s: %w", h, err)
			}
			binary := !utf8.Valid(data) || strings.IndexByte(string(data), 0) >= 0
			switch f.name {
			case "byteSize":
				out[f.alias] = len(data)
			case "isBinary":
				out[f.alias] = binary
			case "isTruncated":
				out[f.alias] = !binary && len(data) > ex.maxText
			case "text":
				if binary {
					out[f.alias] = nil
				} else {
					text := data
					if len(text) > ex.maxText {
						text = text[:ex.maxText]
					}
					out[f.alias] = string(text)
				}
			}
		default:
			return nil, undefinedField(f, typeName, path)
		}
	}
	return out, nil
}

// selectEntries answers Tree.entries: GitHub's TreeEntry.mode is an Int (the octal mode's value), type is
// "blob", "tree" or "commit", object is null for a submodule (its commit lives in another repository).
func (ex *gqlExec) selectEntries(r *Repo, h plumbing.Hash, parent *gqlField, path []any) (any, error) {
	t, err := object.GetTree(r.st, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	if parent.sel == nil {
		return nil, fieldError(parent, path, "", "Field must have selections (field 'entries' returns [TreeEntry!] but has no selections)")
	}
	if err := ex.count(len(t.Entries)); err != nil {
		return nil, err
	}
	fields, err := ex.expand(parent.sel, "TreeEntry", path)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(t.Entries))
	for i, e := range t.Entries {
		m := map[string]any{}
		for _, f := range fields {
			fpath := append(append([]any{}, path...), i, f.alias)
			switch f.name {
			case "__typename":
				m[f.alias] = "TreeEntry"
			case "name":
				m[f.alias] = e.Name
			case "type":
				m[f.alias] = objectType(e.Mode)
			case "mode":
				m[f.alias] = int(uint32(e.Mode))
			case "oid":
				m[f.alias] = e.Hash.String()
			case "object":
				if f.sel == nil {
					return nil, fieldError(f, fpath, "", "Field must have selections (field 'object' returns GitObject but has no selections)")
				}
				if e.Mode == filemode.Submodule {
					m[f.alias] = nil
					continue
				}
				v, err := ex.selectObject(r, e.Hash, f, fpath)
				if err != nil {
					return nil, err
				}
				m[f.alias] = v
			default:
				return nil, undefinedField(f, "TreeEntry", path)
			}
		}
		out = append(out, m)
	}
	return out, nil
}
