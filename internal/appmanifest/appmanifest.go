// Package appmanifest is the one table of what the storagebot GitHub App asks GitHub for: the repository
// permissions its code uses, each with the reason, and the webhook events its handlers handle. The App
// manifest (deploy/app-manifest.yml), the handlers' Handles() lists and the fake GitHub's installation
// permissions are all held equal to it by tests, so a permission is never asked for "just in case" and never
// missing (without statuses: read, for one, auto-merging a removal PR fails on private repositories).
package appmanifest

import "sort"

// Permission is one repository permission the App asks for.
type Permission struct {
	// Name is the permission as GitHub spells it in a manifest's default_permissions and an installation's
	// permissions ("pull_requests").
	Name string
	// Access is "read" or "write".
	Access string
	// Why names the calls that need it.
	Why string
}

// Event is one webhook event the App's handlers handle.
type Event struct {
	Name string
	Why  string
	// Implicit events are delivered to every GitHub App whether it subscribes or not (installation), so the
	// manifest does not list them.
	Implicit bool
}

// Permissions returns the repository permissions the code uses, sorted by name.
func Permissions() []Permission {
	ps := []Permission{
		{Name: "actions", Access: "write", Why: "dispatch the distribution build and deploy workflows; read their runs"},
		{Name: "checks", Access: "write", Why: "create and complete the storage-policy check run; answer a stack-version tag with a check run on its commit; list check runs before auto-merging a removal PR"},
		{Name: "contents", Access: "write", Why: "read trees, blobs, branches and .github/storagebot.yml; write promotion, removal and registry-version branches (Git Data API); merge removal PRs"},
		{Name: "deployments", Access: "write", Why: "record each distribution build as a GitHub Deployment and set its statuses (rollout state lives there)"},
		{Name: "issues", Access: "write", Why: "reply to commands, react 👀, read the /allow records and follow-up notes in comments, label removal PRs"},
		{Name: "metadata", Access: "read", Why: "required of every App; the repository and the commenter's permission (collaborators API)"},
		{Name: "pull_requests", Access: "write", Why: "read PRs and their files; open promotion, removal and registry-version PRs; prefix titles (fix_titles)"},
		{Name: "statuses", Access: "read", Why: "read the combined commit status before auto-merging a removal PR (private repositories answer 404 without it)"},
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	return ps
}

// Events returns the webhook events the handlers handle, sorted by name.
func Events() []Event {
	es := []Event{
		{Name: "check_run", Why: "re-run the check when someone asks GitHub to re-run it"},
		{Name: "check_suite", Why: "re-run the check when someone re-runs all checks"},
		{Name: "deployment_status", Why: "a finished deployment lets the distributions built on it follow"},
		{Name: "installation", Why: "log which accounts installed or removed the App", Implicit: true},
		{Name: "issue_comment", Why: "slash commands; edits of the bot's comments by others are logged as tampering"},
		{Name: "push", Why: "a stack-version tag (8.12.0) builds an image tagged with it or is refused on its commit; a change of the package-registry version on one distribution branch opens the PRs bringing the others to it"},
		{Name: "pull_request", Why: "check PRs into channel branches; the removal follow-up and the rollout when one merges; edits of the bot's PR bodies by others are logged"},
		{Name: "workflow_run", Why: "a finished distribution build moves its rollout on"},
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return es
}

// PermissionMap returns the permissions as GitHub lists them for an installation: name → access.
func PermissionMap() map[string]string {
	out := map[string]string{}
	for _, p := range Permissions() {
		out[p.Name] = p.Access
	}
	return out
}

// SubscribedEvents returns the names of the events the App subscribes to: every event handled except the
// implicit ones, sorted.
func SubscribedEvents() []string {
	var out []string
	for _, e := range Events() {
		if !e.Implicit {
			out = append(out, e.Name)
		}
	}
	return out
}

// HandledEvents returns the names of every event handled, implicit ones included, sorted.
func HandledEvents() []string {
	out := make([]string, 0, len(Events()))
	for _, e := range Events() {
		out = append(out, e.Name)
	}
	return out
}

// Homepage is the App's homepage in its manifest (GitHub requires one).
const Homepage = "https://github.com/storagebot/storagebot"

// Manifest is a GitHub App manifest, the settings GitHub registers an App from (the manifest flow, or
// deploy/app-manifest.yml by hand): the permissions and events are always this package's table.
type Manifest struct {
	Name           string         `json:"name" yaml:"name"`
	URL            string         `json:"url" yaml:"url"`
	Description    string         `json:"description,omitempty" yaml:"description,omitempty"`
	HookAttributes HookAttributes `json:"hook_attributes" yaml:"hook_attributes"`
	// RedirectURL is where GitHub sends the person back, with the code to exchange, once the App is created.
	RedirectURL        string            `json:"redirect_url,omitempty" yaml:"redirect_url,omitempty"`
	Public             bool              `json:"public" yaml:"public"`
	DefaultPermissions map[string]string `json:"default_permissions" yaml:"default_permissions"`
	DefaultEvents      []string          `json:"default_events" yaml:"default_events"`
}

// HookAttributes is the App's webhook; GitHub generates its secret in the manifest flow.
type HookAttributes struct {
	URL    string `json:"url" yaml:"url"`
	Active bool   `json:"active" yaml:"active,omitempty"`
}

// NewManifest returns the manifest of a private App called name whose webhooks go to webhookURL and whose
// manifest flow returns to redirectURL ("" when registering by hand).
func NewManifest(name, webhookURL, redirectURL string) Manifest {
	return Manifest{
		Name:               name,
		URL:                Homepage,
		Description:        "Guards a package storage repository: the storage-policy check, promotions, removal follow-ups and distribution rollouts.",
		HookAttributes:     HookAttributes{URL: webhookURL, Active: true},
		RedirectURL:        redirectURL,
		Public:             false,
		DefaultPermissions: PermissionMap(),
		DefaultEvents:      SubscribedEvents(),
	}
}
