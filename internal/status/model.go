// Package status assembles what storagebot knows about each repository it is installed on — channels and
// their heads, versions held by two channels (a removal pending, or drift), the promotion and removal PRs in
// flight, the last storage-policy verdicts and recent errors with their cause — for the status page
// (GET /status, GET /api/status) and the dashboard issue (docs/architecture.md §6).
//
// It reads what the services already read (promotion.Service.Overview, prcheck.Service.LatestRun) through
// the same ETag-revalidating client, at most once per MinInterval per repository and only when someone asks,
// so it adds no polling loop; when GitHub cannot be read it keeps the last state read and says when that was.
package status

import (
	"strconv"
	"time"
)

// Report is the status of every repository the App is installed on.
type Report struct {
	// GeneratedAt is when this report was assembled (not when GitHub was read: see Repository.ReadAt).
	GeneratedAt time.Time `json:"generated_at"`
	// ListedAt is when the installations and their repositories were last listed; ListError why the last
	// listing failed, if it did.
	ListedAt     time.Time    `json:"listed_at"`
	ListError    string       `json:"list_error,omitempty"`
	Repositories []Repository `json:"repositories"`
	// Errors are recent errors that belong to no repository (listing installations, the App itself).
	Errors []ErrorEntry `json:"errors"`
}

// Repository is what storagebot knows about one repository.
type Repository struct {
	FullName       string `json:"full_name"`
	URL            string `json:"url"`
	InstallationID int64  `json:"installation_id"`
	// ReadAt is when GitHub was last read successfully for this repository; zero when never.
	ReadAt time.Time `json:"read_at"`
	// ReadError is why the last read failed; the facts below are then those read at ReadAt.
	ReadError string `json:"read_error,omitempty"`
	// Storage is false for a repository that lacks a channel branch: nothing else is filled in.
	Storage bool `json:"storage"`
	// ConfigError is set when .github/storagebot.yml is invalid: nothing is evaluated there.
	ConfigError string `json:"config_error,omitempty"`
	// Dashboard tells whether the repository keeps a dashboard issue (.github/storagebot.yml: dashboard).
	Dashboard bool         `json:"dashboard"`
	Channels  []Channel    `json:"channels"`
	Pending   []Pending    `json:"pending_removals"`
	Drift     []Drift      `json:"drift"`
	InFlight  []InFlight   `json:"in_flight"`
	Verdicts  []Verdict    `json:"verdicts"`
	Errors    []ErrorEntry `json:"errors"`
}

// Channel is a channel, its branch and the branch's head commit.
type Channel struct {
	Name      string `json:"name"`
	Branch    string `json:"branch"`
	Commit    string `json:"commit"`
	CommitURL string `json:"commit_url"`
}

// Link is a pull request or issue.
type Link struct {
	Number int    `json:"number"`
	URL    string `json:"url"`
}

// Pending is a version held identically by a channel and a higher one: the lower copy awaits removal, by
// RemovalPR when one is open.
type Pending struct {
	Package   string `json:"package"`
	Version   string `json:"version"`
	Lower     string `json:"lower"`
	Higher    string `json:"higher"`
	RemovalPR *Link  `json:"removal_pr,omitempty"`
}

// Drift is a version held by two channels with different contents: the lower copy is shadowed, and the bot
// never removes it.
type Drift struct {
	Package    string `json:"package"`
	Version    string `json:"version"`
	Lower      string `json:"lower"`
	Higher     string `json:"higher"`
	LowerTree  string `json:"lower_tree"`
	HigherTree string `json:"higher_tree"`
}

// InFlight is an open promotion or removal PR the bot opened.
type InFlight struct {
	Kind     string    `json:"kind"` // promotion | removal
	PR       Link      `json:"pr"`
	Title    string    `json:"title"`
	Target   string    `json:"target"`
	Versions []string  `json:"versions"`
	OpenedAt time.Time `json:"opened_at"`
}

// Verdict is the newest storage-policy run of this App on an open PR's head.
type Verdict struct {
	PR          Link      `json:"pr"`
	Title       string    `json:"title"`
	Base        string    `json:"base"`
	HeadSHA     string    `json:"head_sha"`
	Status      string    `json:"status"`               // queued | in_progress | completed | none (no run)
	Conclusion  string    `json:"conclusion,omitempty"` // success | failure | …
	Summary     string    `json:"summary,omitempty"`    // the run's title
	RunURL      string    `json:"run_url,omitempty"`
	CompletedAt time.Time `json:"completed_at"`
}

// ErrorEntry is one error storagebot met, with what it was doing and the cause.
type ErrorEntry struct {
	At    time.Time `json:"at"`
	What  string    `json:"what"`
	Cause string    `json:"cause"`
}

// Age renders how long ago t was, coarsely ("3m", "2h", "5d"), from now.
func Age(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "<1m"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}
