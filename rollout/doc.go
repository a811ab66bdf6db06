// Package rollout is the home of the distribution graph (staging built on production, snapshot on staging)
// and the level-triggered controller that rebuilds and rolls out distributions in dependency order
// (docs/architecture.md §6).
//
// It holds no code yet: rebuild and rollout are not part of this version. The repository configuration
// already parses and validates `distributions` (internal/repoconfig), and `/rebuild` answers that nothing
// was rebuilt, so no one mistakes the bot for doing it.
package rollout
