// Package policy evaluates the storage rules of docs/architecture.md §4 on plain values.
//
// It is pure: no network, no git, no clock. The storage model (internal/storage) gathers the facts of a
// change into an Input; Evaluate turns them into Findings. Everything a rule needs is in the Input, so every
// rule is table-tested without a repository.
package policy

// RuleID names a rule exactly as docs/architecture.md §4 and the `check --format json` contract spell it.
type RuleID string

// The rules of docs/architecture.md §4.
const (
	RuleOverwrite       RuleID = "overwrite"
	RuleRemoval         RuleID = "removal"
	RuleVersionOrder    RuleID = "version-order"
	RulePromotionSource RuleID = "promotion-source"
	RuleShadowed        RuleID = "shadowed"
	RuleManifest        RuleID = "manifest"
	RuleDevFiles        RuleID = "dev-files"
	RuleRegistryVersion RuleID = "registry-version"
	RuleTitlePrefix     RuleID = "title-prefix"
	// RuleLayout reports storage structure the registry cannot serve: symlinks, submodules (gitlinks) and
	// stray files under packages/, version directories that are not directories.
	RuleLayout RuleID = "layout"
)

// Severity of a finding. Any error fails the check.
type Severity string

// Severities, from most to least serious. SeverityOff disables a rule (configuration only, never on a finding).
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityNotice  Severity = "notice"
	SeverityOff     Severity = "off"
)

// ChangeKind says what a change did to a package version.
type ChangeKind string

// Change kinds, as the `check --format json` contract spells them.
const (
	Added    ChangeKind = "added"
	Modified ChangeKind = "modified"
	Removed  ChangeKind = "removed"
)

// Finding is one problem (or note) about a change. Message says what is wrong and how to fix it.
type Finding struct {
	Rule     RuleID   `json:"rule"`
	Severity Severity `json:"severity"`
	Package  string   `json:"package"`
	Version  string   `json:"version"`
	// Path is the repository-relative path the finding is about (a file where one is to blame, else the
	// version directory, e.g. "packages/foo/1.2.3"); "" for PR-level findings such as title-prefix.
	Path    string `json:"path"`
	Message string `json:"message"`
	// ExceptedBy is set when an exception turned this finding from an error into a notice.
	ExceptedBy *Exception `json:"excepted_by,omitempty"`
}

// Exception lets one rule pass for one version, bound to the version's tree SHA when it was granted: when the
// content changes afterwards, the exception lapses (docs/architecture.md §4).
type Exception struct {
	Rule    RuleID `json:"rule"`
	Package string `json:"package"`
	Version string `json:"version"`
	TreeSHA string `json:"tree_sha"`
	By      string `json:"by"`
	Reason  string `json:"reason"`
}

// Input is every fact the rules need about one change to one channel branch.
type Input struct {
	// Channel is the channel whose branch the change targets; Channels lists every channel from lowest
	// (snapshot) to highest (production) and includes Channel.
	Channel  string
	Channels []string
	// Branch is the target branch name, used by title-prefix.
	Branch string
	// Title is the PR title; nil when there is none (e.g. `storagebot check` without --title), which skips
	// title-prefix.
	Title *string
	// FixTitles is true when the bot fixes titles itself instead of failing (repository config fix_titles).
	FixTitles bool

	Changes []Change
	// Layout lists structural problems found under packages/ (symlinks, gitlinks, stray files).
	Layout []LayoutProblem
	// Registry describes Dockerfile and go.mod at head, for registry-version.
	Registry RegistryFiles
	// Exceptions granted on this change (with /allow); each binds to a tree SHA.
	Exceptions []Exception
}

// Change is one package version whose tree differs between the change's base and head.
type Change struct {
	Package string
	Version string
	Kind    ChangeKind
	// Tree is the version's tree SHA at head (added, modified) or at base (removed).
	Tree string
	// BaseTree is the version's tree SHA at base; "" when added.
	BaseTree string
	// Paths lists repository-relative paths of files added or modified under the version (added, modified).
	Paths []string
	// Manifest is the version's manifest.yml at head (added, modified).
	Manifest Manifest
	// ChannelVersions lists every version of the package in the target channel at base (raw directory names).
	ChannelVersions []string
	// Others holds the same version in every other channel, by channel name; a channel where the version does
	// not exist has no entry.
	Others map[string]Copy
}

// Copy is a package version as it exists in another channel.
type Copy struct {
	TreeSHA string
	// Identical is true when the copy holds the same paths with the same contents as Change.Tree (file modes
	// ignored, docs/architecture.md §3).
	Identical bool
}

// Manifest is a version's manifest.yml as read from the tree.
type Manifest struct {
	// Present is false when the version has no manifest.yml file.
	Present bool
	Path    string
	Data    []byte
}

// LayoutProblem is a structural problem in the storage tree.
type LayoutProblem struct {
	Path string
	// Kind is "symlink", "submodule" or "not-a-directory".
	Kind    string
	Package string
	Version string
}

// RegistryFiles are the files that pin the registry version.
type RegistryFiles struct {
	// Touched is true when the change adds, modifies or removes Dockerfile or go.mod.
	Touched    bool
	Dockerfile []byte // nil when absent at head
	GoMod      []byte // nil when absent at head
}
