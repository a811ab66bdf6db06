package githubapi

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v50/github"
)

// TestAllPages follows GitHub's next page until there is none, asks for each page once, and stops at the
// first error with what it had.
func TestAllPages(t *testing.T) {
	pages := map[int][]int{0: {1, 2}, 2: {3, 4}, 3: {5}}
	next := map[int]int{0: 2, 2: 3, 3: 0}
	var asked []int
	got, err := AllPages(context.Background(), func(_ context.Context, page int) ([]int, *github.Response, error) {
		asked = append(asked, page)
		return pages[page], &github.Response{NextPage: next[page]}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4, 5}, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0, 2, 3}, asked); diff != "" {
		t.Errorf("pages asked (-want +got):\n%s", diff)
	}

	boom := errors.New("502")
	got, err = AllPages(context.Background(), func(_ context.Context, page int) ([]int, *github.Response, error) {
		if page == 2 {
			return nil, nil, boom
		}
		return pages[page], &github.Response{NextPage: next[page]}, nil
	})
	if !errors.Is(err, boom) || len(got) != 2 {
		t.Errorf("on a failing second page: %v, %v; want the error and the first page", got, err)
	}
}
