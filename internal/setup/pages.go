package setup

import (
	"html/template"
	"sync"
)

// pages are the setup mode's HTML pages: server-rendered, no JavaScript. They are parsed on first use, not at
// init: every command of the binary would otherwise pay for parsing them (~1.5 ms), and only `serve` in setup
// mode renders them.
var pages = sync.OnceValue(func() *template.Template { return template.Must(template.New("pages").Parse(pagesTemplate)) })

const pagesTemplate = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · storagebot</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.6rem}h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.6rem .8rem;margin:.6rem 0}
.err{background:#ffebe9;border:1px solid #cf222e;border-radius:6px;padding:.6rem .8rem}
.ok{background:#dafbe1;border:1px solid #1a7f37;border-radius:6px;padding:.6rem .8rem}
button,.button{display:inline-block;background:#1f883d;color:#fff;border:0;border-radius:6px;padding:.6rem 1.1rem;font-size:1rem;text-decoration:none;cursor:pointer}
</style></head><body>{{end}}

{{define "setup"}}{{template "head" "Set up"}}
<h1>Set up storagebot</h1>
<p>storagebot is running, but no GitHub App is configured yet. The button below sends the App's manifest to
GitHub; GitHub asks you to confirm the App's name, creates it, and sends you back here. storagebot then stores
the App's credentials and starts serving webhooks, without a restart.</p>
{{range .Warnings}}<p class="warn">{{.}}</p>{{end}}
<table id="summary">
<tr><th>App name (you can change it on GitHub)</th><td>{{.Name}}</td></tr>
<tr><th>Registered for</th><td>{{.Owner}} on <a href="{{.Web}}">{{.Web}}</a></td></tr>
<tr><th>Webhook URL</th><td><code>{{.WebhookURL}}</code></td></tr>
<tr><th>GitHub sends you back to</th><td><code>{{.RedirectURL}}</code></td></tr>
<tr><th>Credentials file (mode 0600)</th><td><code>{{.CredentialsPath}}</code></td></tr>
</table>
<form method="post" action="{{.Action}}">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<p><button id="register" type="submit">Register the GitHub App on GitHub</button></p>
</form>
<h2>What the App may do</h2>
<table id="permissions"><tr><th>permission</th><th>access</th><th>why</th></tr>
{{range .Permissions}}<tr><td>{{.Name}}</td><td>{{.Access}}</td><td>{{.Why}}</td></tr>{{end}}
</table>
<p>Events: {{range $i, $e := .Events}}{{if $i}}, {{end}}<code>{{$e}}</code>{{end}} (and <code>installation</code>, which every App receives).</p>
<h2>Registering by hand instead</h2>
<p>Create the App from <code>deploy/app-manifest.yml</code> on GitHub, then start storagebot with
<code>GITHUB_APP_INTEGRATION_ID</code>, <code>GITHUB_APP_PRIVATE_KEY</code> and <code>GITHUB_APP_WEBHOOK_SECRET</code> set.</p>
</body></html>{{end}}

{{define "done"}}{{template "head" "Set up"}}
<h1>storagebot is set up</h1>
<p class="ok" id="app">Registered the GitHub App <a href="{{.HTMLURL}}">{{.Name}}</a> (App ID {{.AppID}}), owned by {{.Owner}}.
storagebot now serves its webhooks at <code>{{.WebhookURL}}</code>.</p>
<p>Its credentials are in <code>{{.CredentialsPath}}</code>, readable by this user only; storagebot reads them on
every start. Keep the file safe: it holds the App's private key.</p>
<h2>Next: install it</h2>
<p>Install the App on the account that owns your storage repositories and choose the repositories it guards.</p>
<p><a class="button" id="install" href="{{.InstallURL}}">Install {{.Name}} on GitHub</a></p>
</body></html>{{end}}

{{define "error"}}{{template "head" "Setup did not finish"}}
<h1>Setup did not finish</h1>
<p class="err" id="error">{{.What}}</p>
<p id="next">{{.Next}}</p>
<p><a href="/">Back to the setup page</a></p>
</body></html>{{end}}
`
