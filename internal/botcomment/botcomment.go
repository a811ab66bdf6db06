// Package botcomment posts a comment the bot must leave exactly once on an issue or PR — a command's reply, a
// merged PR's follow-up note — whatever GitHub does with the write, and however many replicas write at once.
//
// The comment is recognised by a sealed marker its writer checks (docs/architecture.md §7). Two failure modes
// make "look, then post" insufficient. Two replicas may both look, find nothing and both post: every writer
// lists again after its post and deletes every marked comment but the earliest (lowest ID; GitHub's IDs only
// grow), so all of them agree on which stays. And a POST whose answer is lost — a timeout, a cut connection, a
// 5xx from a proxy — may have been applied, or may still be: GitHub goes on with a request whose client gave
// up, and the comment appears only when it finishes. A writer that listed once and saw nothing would post
// again, or leave its late comment to land after everyone had looked. So after an unanswered post the writer
// watches for that very attempt (each carries a random attempt marker) until it shows, or until the settle
// time passes since it was sent (GitHub ends a request it has worked on for 10 s, so a write lands within
// that or never); only then may it conclude the post was not applied and post again, and whoever sees a
// duplicate deletes the later one.
package botcomment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/storagebot/storagebot/internal/ghclient"
)

// DefaultSettle is how long an unanswered write may still land: GitHub's own limit on processing one REST
// request (10 s), plus a margin for the answer's way back.
const DefaultSettle = 12 * time.Second

// DefaultAttempts is how many posts a Writer makes when GitHub applied none of them.
const DefaultAttempts = 3

// Comment is one of the bot's marked comments.
type Comment struct {
	ID   int64
	Body string
}

// Thread is one issue's or PR's marked comments, as the caller recognises them.
type Thread interface {
	// Marked lists the bot's comments carrying the caller's verified marker, in any order.
	Marked(ctx context.Context) ([]Comment, error)
	// Create posts a comment.
	Create(ctx context.Context, body string) error
	// Delete deletes a comment; one already gone is no error.
	Delete(ctx context.Context, id int64) error
}

// Writer posts marked comments once. The zero Writer uses DefaultSettle and DefaultAttempts.
type Writer struct {
	// Settle is how long after it was sent an unanswered post may still land.
	Settle time.Duration
	// Attempts bounds the posts when none is applied.
	Attempts int
	// Fit shortens a body to GitHub's comment limit (promotion.FitComment); nil leaves it as it is.
	Fit func(string) (string, error)
	// Rechecks, when set, looks at the thread once more the settle time after a post of this writer landed,
	// for a duplicate a killed writer's late post left (see Rechecks).
	Rechecks *Rechecks
}

// landed is called once this writer's post, sent at sent, is on GitHub.
func (w Writer) landed(ctx context.Context, t Thread, sent time.Time) {
	if w.Rechecks != nil {
		w.Rechecks.schedule(ctx, time.Until(sent.Add(w.settle())), t)
	}
}

func (w Writer) settle() time.Duration {
	if w.Settle > 0 {
		return w.Settle
	}
	return DefaultSettle
}

// Post leaves exactly one marked comment on t: body, unless one is there already (another replica's, or an
// earlier attempt's). Later duplicates it sees are deleted. An error means GitHub refused the post, or no
// attempt could be confirmed; the earliest marked comment is never deleted.
func (w Writer) Post(ctx context.Context, t Thread, body string) error {
	attempts := w.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	log := zerolog.Ctx(ctx)
	var lastErr error
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			// The last post was not applied; another writer's may be there now.
			have, err := t.Marked(ctx)
			if err != nil {
				return errors.Join(lastErr, err)
			}
			if len(have) > 0 {
				return DropLater(ctx, t, have)
			}
		}
		nonce, err := newNonce()
		if err != nil {
			return err
		}
		text := body + "\n" + attemptMarker(nonce)
		if w.Fit != nil {
			if text, err = w.Fit(text); err != nil {
				return err
			}
		}
		sent := time.Now()
		postErr := t.Create(ctx, text)
		if postErr != nil && !ghclient.Unanswered(postErr) {
			return postErr // GitHub refused it: nothing was written
		}
		if postErr == nil {
			// Applied. Another writer's may be there too: keep the earliest.
			w.landed(ctx, t, sent)
			have, err := t.Marked(ctx)
			if err != nil {
				return err
			}
			return DropLater(ctx, t, have)
		}
		// Unanswered: it may land until the settle time has passed since it was sent.
		have, seen, err := w.await(ctx, t, nonce, sent)
		if err != nil {
			return errors.Join(postErr, err)
		}
		if seen {
			w.landed(ctx, t, sent)
			log.Info().Err(postErr).Msg("a post whose answer was lost was applied")
			return DropLater(ctx, t, have)
		}
		lastErr = postErr
		log.Warn().Err(postErr).Int("attempt", attempt).Dur("settle", w.settle()).
			Msg("a post whose answer was lost did not land within the settle time, so GitHub did not apply it")
	}
	return fmt.Errorf("none of %d posts was applied: %w", attempts, lastErr)
}

// await lists t until the comment carrying nonce shows, or the settle time has passed since sent. It returns
// the last listing and whether the comment was in it.
func (w Writer) await(ctx context.Context, t Thread, nonce string, sent time.Time) ([]Comment, bool, error) {
	deadline := sent.Add(w.settle())
	poll := min(max(w.settle()/20, 20*time.Millisecond), time.Second)
	marker := attemptMarker(nonce)
	for {
		have, err := t.Marked(ctx)
		if err != nil {
			return nil, false, err
		}
		for _, c := range have {
			if strings.Contains(c.Body, marker) {
				return have, true, nil
			}
		}
		if !time.Now().Before(deadline) {
			return have, false, nil
		}
		timer := time.NewTimer(min(poll, time.Until(deadline)+time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, false, fmt.Errorf("wait for a posted comment to show: %w", ctx.Err())
		case <-timer.C:
		}
	}
}

// DropLater deletes every comment in have but the earliest (lowest ID): every writer agrees on which stays.
func DropLater(ctx context.Context, t Thread, have []Comment) error {
	if len(have) < 2 {
		return nil
	}
	first := have[0]
	for _, c := range have[1:] {
		if c.ID < first.ID {
			first = c
		}
	}
	for _, c := range have {
		if c.ID == first.ID {
			continue
		}
		if err := t.Delete(ctx, c.ID); err != nil {
			return fmt.Errorf("delete comment %d, a duplicate of comment %d: %w", c.ID, first.ID, err)
		}
		zerolog.Ctx(ctx).Info().Int64("kept", first.ID).Int64("deleted", c.ID).
			Msg("the bot's comment was posted twice (replicas raced, or a post whose answer was lost landed); the later one deleted")
	}
	return nil
}

// attemptMarker tells one post apart from every other post of the same comment.
func attemptMarker(nonce string) string {
	return "<!-- storagebot:attempt " + nonce + " -->"
}

func newNonce() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("attempt marker: %w", err)
	}
	return hex.EncodeToString(b), nil
}
