package status

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
	"github.com/palantir/go-githubapp/githubapp"
)

type recorded struct {
	changed []string
	failed  []string
}

func (r *recorded) Changed(id int64, repo *github.Repository) {
	r.changed = append(r.changed, repo.GetFullName())
}
func (r *recorded) Failed(repo, what string, err error) {
	r.failed = append(r.failed, repo+"|"+what+"|"+err.Error())
}

type handler struct{ err error }

func (h handler) Handles() []string { return []string{"pull_request"} }
func (h handler) Handle(context.Context, string, string, []byte) error {
	return h.err
}

// TestObserve: a delivery about a repository marks it changed; a handler error is recorded with the event,
// the delivery and the cause, and still returned.
func TestObserve(t *testing.T) {
	boom := errors.New("boom")
	repoPayload := []byte(`{"installation":{"id":7},"repository":{"full_name":"o/r","name":"r","owner":{"login":"o"}}}`)
	tests := []struct {
		name    string
		err     error
		payload []byte
		want    recorded
	}{
		{"success", nil, repoPayload, recorded{changed: []string{"o/r"}}},
		{"failure", boom, repoPayload, recorded{changed: []string{"o/r"}, failed: []string{"o/r|pull_request delivery d1|boom"}}},
		{"no repository", boom, []byte(`{}`), recorded{failed: []string{"|pull_request delivery d1|boom"}}},
		{"not JSON", nil, []byte(`x`), recorded{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorded{}
			h := Observe([]githubapp.EventHandler{handler{tc.err}}, rec)[0]
			if got := h.Handles(); len(got) != 1 || got[0] != "pull_request" {
				t.Errorf("Handles = %v", got)
			}
			if err := h.Handle(context.Background(), "pull_request", "d1", tc.payload); !errors.Is(err, tc.err) {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, *rec, cmp.AllowUnexported(recorded{})); diff != "" {
				t.Errorf("recorded (-want +got):\n%s", diff)
			}
		})
	}
}

// TestObserveFilesErrorsUnderTheRepository: through a real board, a failed delivery about a repository the
// board did not know yet shows under that repository, not as an App error.
func TestObserveFilesErrorsUnderTheRepository(t *testing.T) {
	b := NewBoard(nil, nil, nil, nil)
	h := Observe([]githubapp.EventHandler{handler{errors.New("boom")}}, b)[0]
	payload := []byte(`{"installation":{"id":7},"repository":{"full_name":"o/r","name":"r","owner":{"login":"o"}}}`)
	_ = h.Handle(context.Background(), "pull_request", "d1", payload)
	rep := b.snapshot()
	if len(rep.Errors) != 0 || len(rep.Repositories) != 1 || len(rep.Repositories[0].Errors) != 1 {
		t.Fatalf("report = %+v, want the error under o/r", rep)
	}
	if e := rep.Repositories[0].Errors[0]; e.What != "pull_request delivery d1" || e.Cause != "boom" {
		t.Errorf("error = %+v", e)
	}
}
