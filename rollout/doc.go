// Package rollout holds the distribution graph (staging built on production, snapshot on staging) and the
// level-triggered controller that rebuilds and rolls out distributions in dependency order.
package rollout
