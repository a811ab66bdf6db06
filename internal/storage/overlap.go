package storage

import (
	"context"

	"github.com/storagebot/storagebot/internal/overlap"
)

// group is the bounded group every overlapped read of this package runs in.
type group = overlap.Group

// newGroup is the bounded group every overlapped read of this package runs in (overlap.Group).
func newGroup(ctx context.Context, limit int) *overlap.Group { return overlap.NewGroup(ctx, limit) }

// ReadConcurrency is how many of r's reads are worth having in flight at once: the per-account bound of a
// GitHub reader's cache, 1 for readers read one call at a time (a local clone, a test double). Callers
// outside this package overlap their own independent reads within it (overlap.NewGroup).
func ReadConcurrency(r Reader) int { return readConcurrency(r) }
