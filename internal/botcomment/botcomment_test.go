package botcomment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v50/github"
)

// thread is an issue as GitHub keeps it: each post gets the next ID when it lands, which is when the post's
// outcome says (at once, later, never), whatever its answer was.
type thread struct {
	mu       sync.Mutex
	nextID   int64
	comments []Comment
	// outcomes are the next posts' fates, in order; a post beyond them lands at once and is answered.
	outcomes []outcome
	posts    int
	deleted  []int64
}

type outcome struct {
	err    error         // the answer the writer sees
	landIn time.Duration // when the post lands after it was sent; < 0 = never
}

func (t *thread) land(body string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nextID++
	t.comments = append(t.comments, Comment{ID: t.nextID, Body: body})
}

func (t *thread) Marked(context.Context) ([]Comment, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Comment(nil), t.comments...), nil
}

func (t *thread) Create(_ context.Context, body string) error {
	t.mu.Lock()
	t.posts++
	o := outcome{}
	if len(t.outcomes) > 0 {
		o, t.outcomes = t.outcomes[0], t.outcomes[1:]
	}
	t.mu.Unlock()
	switch {
	case o.landIn == 0:
		t.land(body)
	case o.landIn > 0:
		time.AfterFunc(o.landIn, func() { t.land(body) })
	}
	return o.err
}

func (t *thread) Delete(_ context.Context, id int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, c := range t.comments {
		if c.ID == id {
			t.comments = append(t.comments[:i], t.comments[i+1:]...)
			t.deleted = append(t.deleted, id)
			return nil
		}
	}
	return nil // already gone
}

func (t *thread) ids() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int64
	for _, c := range t.comments {
		out = append(out, c.ID)
	}
	return out
}

var (
	errTimeout = &url.Error{Op: "Post", URL: "https://api.github.com/repos/o/r/issues/1/comments", Err: context.DeadlineExceeded}
	err502     = &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusBadGateway}, Message: "Bad Gateway"}
	err422     = &github.ErrorResponse{Response: &http.Response{StatusCode: http.StatusUnprocessableEntity}, Message: "Validation Failed"}
)

func TestPost(t *testing.T) {
	const settle = 300 * time.Millisecond
	tests := []struct {
		name     string
		earlier  bool // another writer's comment is there before this post
		outcomes []outcome
		// lateOther lands another writer's comment this long after the post starts (0 = none).
		lateOther time.Duration
		wantPosts int
		wantIDs   []int64 // the comments left
		wantErr   bool
	}{
		{name: "answered", wantPosts: 1, wantIDs: []int64{1}},
		{name: "answered after another writer's", earlier: true, wantPosts: 1, wantIDs: []int64{1}},
		{name: "applied, answer lost", outcomes: []outcome{{err: err502}}, wantPosts: 1, wantIDs: []int64{1}},
		{name: "timed out, lands late: not posted again", outcomes: []outcome{{err: errTimeout, landIn: 150 * time.Millisecond}}, wantPosts: 1, wantIDs: []int64{1}},
		{name: "timed out, never lands: posted again", outcomes: []outcome{{err: errTimeout, landIn: -1}}, wantPosts: 2, wantIDs: []int64{1}},
		{name: "server error, not applied: posted again", outcomes: []outcome{{err: err502, landIn: -1}}, wantPosts: 2, wantIDs: []int64{1}},
		{
			name: "lands late after another writer's: the late one deleted", outcomes: []outcome{{err: errTimeout, landIn: 200 * time.Millisecond}},
			lateOther: 50 * time.Millisecond, wantPosts: 1, wantIDs: []int64{1},
		},
		{
			name: "never lands, another writer's meanwhile: not posted again", outcomes: []outcome{{err: errTimeout, landIn: -1}},
			lateOther: 50 * time.Millisecond, wantPosts: 1, wantIDs: []int64{1},
		},
		{name: "refused", outcomes: []outcome{{err: err422, landIn: -1}}, wantPosts: 1, wantErr: true},
		{
			name: "never applied", outcomes: []outcome{{err: errTimeout, landIn: -1}, {err: errTimeout, landIn: -1}, {err: err502, landIn: -1}},
			wantPosts: 3, wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := &thread{outcomes: tc.outcomes}
			if tc.earlier {
				th.land("another writer's")
			}
			if tc.lateOther > 0 {
				timer := time.AfterFunc(tc.lateOther, func() { th.land("another writer's") })
				defer timer.Stop()
			}
			err := Writer{Settle: settle, Attempts: 3}.Post(context.Background(), th, "the reply")
			if (err != nil) != tc.wantErr {
				t.Fatalf("Post = %v, want error %v", err, tc.wantErr)
			}
			if th.posts != tc.wantPosts {
				t.Errorf("posts = %d, want %d", th.posts, tc.wantPosts)
			}
			if got := th.ids(); fmt.Sprint(got) != fmt.Sprint(tc.wantIDs) {
				t.Errorf("comments left = %v, want %v (deleted %v)", got, tc.wantIDs, th.deleted)
			}
		})
	}
}

func TestPostFits(t *testing.T) {
	th := &thread{}
	w := Writer{Fit: func(s string) (string, error) { return strings.Replace(s, "long", "short", 1), nil }}
	if err := w.Post(context.Background(), th, "a long reply"); err != nil {
		t.Fatal(err)
	}
	if got := th.comments[0].Body; !strings.HasPrefix(got, "a short reply\n<!-- storagebot:attempt ") {
		t.Errorf("posted %q, want the fitted body with its attempt marker", got)
	}
	tooLong := errors.New("too long")
	w.Fit = func(string) (string, error) { return "", tooLong }
	if err := w.Post(context.Background(), th, "x"); !errors.Is(err, tooLong) || th.posts != 1 {
		t.Errorf("Post of an unfittable body = %v after %d posts, want the Fit error and no post", err, th.posts)
	}
}

func TestDropLaterKeepsTheEarliest(t *testing.T) {
	th := &thread{}
	for i := 0; i < 3; i++ {
		th.land("x")
	}
	have, _ := th.Marked(context.Background())
	// Listed in any order, the lowest ID stays.
	have[0], have[2] = have[2], have[0]
	if err := DropLater(context.Background(), th, have); err != nil {
		t.Fatal(err)
	}
	if got := th.ids(); fmt.Sprint(got) != "[1]" {
		t.Errorf("left %v, want [1]", got)
	}
}

// TestRechecksRemoveADeadWritersLatePost: a writer killed while it watched for its unanswered post cannot
// delete that post when it lands after another writer looked, found nothing and posted. The survivor's late
// look, the settle time after its own post, deletes it; without Rechecks it stays.
func TestRechecksRemoveADeadWritersLatePost(t *testing.T) {
	const settle = 200 * time.Millisecond
	for _, withRechecks := range []bool{true, false} {
		th := &thread{}
		// The dead writer's post was sent just before the survivor looked; GitHub applies it within the settle
		// time of its sending.
		late := time.AfterFunc(settle/2, func() { th.land("the dead writer's") })
		defer late.Stop()
		r := &Rechecks{}
		w := Writer{Settle: settle}
		if withRechecks {
			w.Rechecks = r
		}
		if err := w.Post(context.Background(), th, "the survivor's"); err != nil {
			t.Fatal(err)
		}
		if got := th.ids(); fmt.Sprint(got) != "[1]" {
			t.Fatalf("comments right after the post = %v, want only the survivor's", got)
		}
		if withRechecks && r.Pending() != 1 {
			t.Errorf("pending looks = %d, want 1", r.Pending())
		}
		time.Sleep(settle + 100*time.Millisecond)
		for r.Pending() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		want := "[1 2]"
		if withRechecks {
			want = "[1]"
		}
		if got := th.ids(); fmt.Sprint(got) != want {
			t.Errorf("rechecks %v: comments after the settle time = %v, want %s", withRechecks, got, want)
		}
	}
}

// TestRechecksStop: a stopping replica cancels the looks not yet due, and schedules none after.
func TestRechecksStop(t *testing.T) {
	th := &thread{}
	r := &Rechecks{}
	w := Writer{Settle: time.Hour, Rechecks: r}
	if err := w.Post(context.Background(), th, "a reply"); err != nil {
		t.Fatal(err)
	}
	if n := r.Stop(); n != 1 {
		t.Errorf("Stop cancelled %d looks, want 1", n)
	}
	if err := w.Post(context.Background(), &thread{}, "another"); err != nil {
		t.Fatal(err)
	}
	if n := r.Pending(); n != 0 {
		t.Errorf("pending after Stop = %d, want 0", n)
	}
}
