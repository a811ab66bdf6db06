// Package promotion writes what moves package versions between channels (docs/architecture.md §6): the /promote PR that
// copies versions to a higher channel, the removal follow-up PR that deletes the lower copies once a
// promotion merged, the optional auto-merge of those removal PRs, and the reconciler that opens any removal
// PR a missed event left undone.
//
// Every write is by reference through the Git Data API: a new tree whose entry for packages/<n>/<v> points
// at an existing tree SHA (or at nothing, for a removal), so no blob is ever uploaded whatever the package
// size. Every write is idempotent: branch names are deterministic, PRs are looked up by "owner:branch"
// before anything is created, and "already exists" answers are success. State lives in GitHub only, so any
// replica may retry after any crash.
package promotion
