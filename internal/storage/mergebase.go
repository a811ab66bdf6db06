package storage

import (
	"container/heap"
	"context"
	"fmt"
)

// Flags of git's merge-base walk (commit-reach.c, paint_down_to_common).
const (
	fromA uint8 = 1 << iota
	fromB
	stale
	result
)

// mergeBase returns the best common ancestor of a and b with git's algorithm: walk both histories newest
// commit first, painting each commit with the sides it is reachable from; a commit painted by both is a
// candidate and everything below it is stale; stop when only stale commits are left. Among several
// candidates (criss-cross merges) those reachable from another are dropped and the newest is returned, as
// `git merge-base` prints first.
//
// In a shallow clone, a walk that needs the parents of a boundary commit fails with ErrShallow instead of
// answering from truncated history.
func (r *LocalReader) mergeBase(ctx context.Context, a, b oid) (oid, error) {
	if a == b {
		return a, nil
	}
	candidates, err := r.paintDown(ctx, a, []oid{b})
	if err != nil {
		return oid{}, err
	}
	if len(candidates) == 0 {
		return oid{}, fmt.Errorf("no common ancestor: %w", ErrNotFound)
	}
	if len(candidates) == 1 {
		return candidates[0], nil
	}
	redundant := map[oid]bool{}
	for i, c := range candidates {
		if redundant[c] {
			continue
		}
		var others []oid
		for j, o := range candidates {
			if j != i && !redundant[o] {
				others = append(others, o)
			}
		}
		// c is redundant if another candidate reaches it; paint c against the others and see.
		found, err := r.paintDown(ctx, c, others)
		if err != nil {
			return oid{}, err
		}
		for _, f := range found {
			if f == c {
				redundant[c] = true
			}
			for _, o := range others {
				if f == o {
					redundant[o] = true
				}
			}
		}
	}
	for _, c := range candidates { // newest first
		if !redundant[c] {
			return c, nil
		}
	}
	return candidates[0], nil
}

// paintDown returns the commits reachable from a and from one of bs that are not below another such
// commit, newest first.
func (r *LocalReader) paintDown(ctx context.Context, a oid, bs []oid) ([]oid, error) {
	flags := map[oid]uint8{}
	q := &commitQueue{}
	push := func(h oid, f uint8) error {
		c, err := r.commitInfo(ctx, h)
		if err != nil {
			return err
		}
		flags[h] |= f
		heap.Push(q, queued{h: h, time: c.time, seq: q.seq})
		q.seq++
		return nil
	}
	if err := push(a, fromA); err != nil {
		return nil, err
	}
	for _, b := range bs {
		if b == a {
			return []oid{a}, nil
		}
		if err := push(b, fromB); err != nil {
			return nil, err
		}
	}
	var found []oid
	for q.Len() > 0 && q.anyLive(flags) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("walk history: %w", err)
		}
		h := heap.Pop(q).(queued).h
		f := flags[h] & (fromA | fromB | stale)
		if f == fromA|fromB {
			if flags[h]&result == 0 {
				flags[h] |= result
				found = append(found, h)
			}
			f |= stale // what lies below a common ancestor is no better
		}
		c, err := r.commitInfo(ctx, h)
		if err != nil {
			return nil, err
		}
		if f&stale == 0 && r.g.shallow[h] {
			return nil, r.shallowError("find the merge base", h)
		}
		for _, p := range c.parents {
			if flags[p]&f == f {
				continue
			}
			if err := push(p, f); err != nil {
				return nil, err
			}
		}
	}
	var out []oid
	for _, h := range found {
		// A candidate painted stale later is below another candidate: not a best common ancestor.
		if flags[h]&stale == 0 {
			out = append(out, h)
		}
	}
	return out, nil
}

type queued struct {
	h    oid
	time int64
	seq  int
}

// commitQueue orders commits newest first (ties in insertion order), like git's date-ordered queue.
type commitQueue struct {
	items []queued
	seq   int
}

func (q *commitQueue) Len() int { return len(q.items) }
func (q *commitQueue) Less(i, j int) bool {
	if q.items[i].time != q.items[j].time {
		return q.items[i].time > q.items[j].time
	}
	return q.items[i].seq < q.items[j].seq
}
func (q *commitQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }
func (q *commitQueue) Push(x any)    { q.items = append(q.items, x.(queued)) }
func (q *commitQueue) Pop() any {
	it := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return it
}

// anyLive reports whether a queued commit is not stale yet; git stops the walk when none is.
func (q *commitQueue) anyLive(flags map[oid]uint8) bool {
	for _, it := range q.items {
		if flags[it.h]&stale == 0 {
			return true
		}
	}
	return false
}
