package status

import (
	"encoding/json"
	"html/template"
	"net/http"
	"sync"
	"time"

	"github.com/storagebot/storagebot/policy"
)

// Paths of the status page and its JSON.
const (
	PagePath = "/status"
	APIPath  = "/api/status"
)

// Routes registers GET /status (HTML) and GET /api/status (JSON) of b on mux.
func (b *Board) Routes(mux interface {
	Handle(pattern string, handler http.Handler)
}) {
	mux.Handle("GET "+PagePath, http.HandlerFunc(b.servePage))
	mux.Handle("GET "+APIPath, http.HandlerFunc(b.serveJSON))
}

func (b *Board) serveJSON(w http.ResponseWriter, r *http.Request) {
	rep := b.Report(r.Context())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
}

func (b *Board) servePage(w http.ResponseWriter, r *http.Request) {
	rep := b.Report(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	now := b.now()
	if err := page().Execute(w, pageData{Report: rep, Now: now}); err != nil {
		b.Log.Warn().Err(err).Msg("status: render the page")
	}
}

type pageData struct {
	Report
	Now time.Time
}

// page is the status page, parsed on first use rather than at init, which every command of the binary
// would pay for.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("status").Funcs(template.FuncMap{
		"age":   func(now, t time.Time) string { return Age(now, t) },
		"short": policy.ShortSHA,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
	}).Parse(pageTemplate))
})

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>storagebot status</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2328; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1rem; margin-bottom: .3rem; }
table { border-collapse: collapse; margin-bottom: 1rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code { font-size: .9em; }
.stale, .error { color: #cf222e; } .muted { color: #656d76; }
.success { color: #1a7f37; } .failure { color: #cf222e; }
</style>
</head>
<body>
<h1>storagebot status</h1>
<p class="muted">Page generated {{when .GeneratedAt}}. Repositories listed {{when .ListedAt}}.</p>
{{with .ListError}}<p class="error" id="list-error">Could not list the installations: {{.}} — showing the last known state.</p>{{end}}
{{if not .Repositories}}<p id="no-repositories">No repository is known yet: install the App on a storage repository.</p>{{end}}
{{range .Repositories}}{{$now := $.Now}}
<section class="repository" id="repo-{{.FullName}}">
<h2><a href="{{.URL}}">{{.FullName}}</a></h2>
<p class="read-at">Read from GitHub {{when .ReadAt}}{{if not .ReadAt.IsZero}} ({{age $now .ReadAt}} ago){{end}}.</p>
{{if .ReadError}}<p class="stale">GitHub could not be read: {{.ReadError}}. {{if .ReadAt.IsZero}}Nothing has been read yet.{{else}}Showing the last known state, read {{when .ReadAt}}.{{end}}</p>{{end}}
{{with .ConfigError}}<p class="error">.github/storagebot.yml is invalid: {{.}}</p>{{end}}
{{if and (not .Storage) (not .ConfigError) (not .ReadAt.IsZero)}}<p class="muted">Not a storage repository (a channel branch is missing).</p>{{end}}
{{if .Storage}}
<h3>Channels</h3>
<table class="channels"><tr><th>channel</th><th>branch</th><th>head</th></tr>
{{range .Channels}}<tr><td>{{.Name}}</td><td><code>{{.Branch}}</code></td><td><a href="{{.CommitURL}}"><code>{{short .Commit}}</code></a></td></tr>
{{end}}</table>
<h3>Versions in two channels</h3>
{{if or .Pending .Drift}}<table class="overlaps"><tr><th>version</th><th>channels</th><th>state</th></tr>
{{range .Pending}}<tr class="pending"><td>{{.Package}}@{{.Version}}</td><td>{{.Lower}} and {{.Higher}}</td><td>identical: removal from {{.Lower}} pending{{with .RemovalPR}} in <a href="{{.URL}}">#{{.Number}}</a>{{else}} (no removal PR open yet){{end}}</td></tr>
{{end}}{{range .Drift}}<tr class="drift"><td>{{.Package}}@{{.Version}}</td><td>{{.Lower}} and {{.Higher}}</td><td class="failure">drift: different contents; the {{.Lower}} copy is shadowed and must be fixed by hand</td></tr>
{{end}}</table>{{else}}<p class="muted">None.</p>{{end}}
<h3>Promotions and removals in flight</h3>
{{if .InFlight}}<table class="in-flight"><tr><th>PR</th><th>kind</th><th>into</th><th>versions</th><th>age</th></tr>
{{range .InFlight}}<tr><td><a href="{{.PR.URL}}">#{{.PR.Number}}</a> {{.Title}}</td><td>{{.Kind}}</td><td>{{.Target}}</td><td>{{range $i, $v := .Versions}}{{if $i}}, {{end}}{{$v}}{{end}}</td><td>{{age $now .OpenedAt}}</td></tr>
{{end}}</table>{{else}}<p class="muted">None.</p>{{end}}
<h3>storage-policy verdicts on open PRs</h3>
{{if .Verdicts}}<table class="verdicts"><tr><th>PR</th><th>into</th><th>head</th><th>verdict</th></tr>
{{range .Verdicts}}<tr><td><a href="{{.PR.URL}}">#{{.PR.Number}}</a> {{.Title}}</td><td><code>{{.Base}}</code></td><td><code>{{short .HeadSHA}}</code></td><td>{{if .RunURL}}<a class="{{.Conclusion}}" href="{{.RunURL}}">{{if .Conclusion}}{{.Conclusion}}{{else}}{{.Status}}{{end}}</a>{{with .Summary}}: {{.}}{{end}}{{else}}no run yet{{end}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No open PR into a channel branch.</p>{{end}}
<p class="muted">Dashboard issue: {{if .Dashboard}}kept up to date{{else}}off (dashboard: false){{end}}.</p>
{{end}}
<h3>Recent errors</h3>
{{if .Errors}}<table class="errors"><tr><th>when</th><th>doing</th><th>cause</th></tr>
{{range .Errors}}<tr><td>{{when .At}}</td><td>{{.What}}</td><td>{{.Cause}}</td></tr>
{{end}}</table>{{else}}<p class="muted">None.</p>{{end}}
</section>
{{end}}
{{if .Errors}}<h2>Errors outside any repository</h2>
<table class="errors"><tr><th>when</th><th>doing</th><th>cause</th></tr>
{{range .Errors}}<tr><td>{{when .At}}</td><td>{{.What}}</td><td>{{.Cause}}</td></tr>
{{end}}</table>{{end}}
</body>
</html>
`
