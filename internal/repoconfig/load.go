package repoconfig

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-github/v50/github"
)

// Load reads the configuration from the repository's default branch through the GitHub API (never from a PR
// head: a pull request must not weaken its own policy). An absent file yields Default(); an invalid one
// returns the parse error (an *Error or Errors, with file, line and field) so the caller can report it.
func Load(ctx context.Context, client *github.Client, owner, repo, defaultBranch string) (*Config, error) {
	if defaultBranch == "" {
		r, _, err := client.Repositories.Get(ctx, owner, repo)
		if err != nil {
			return nil, fmt.Errorf("read default branch of %s/%s: %w", owner, repo, err)
		}
		defaultBranch = r.GetDefaultBranch()
	}
	file, _, resp, err := client.Repositories.GetContents(ctx, owner, repo, Path, &github.RepositoryContentGetOptions{Ref: defaultBranch})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return Default(), nil
		}
		return nil, fmt.Errorf("read %s from %s of %s/%s: %w", Path, defaultBranch, owner, repo, err)
	}
	if file == nil {
		return nil, fmt.Errorf("read %s from %s of %s/%s: it is a directory, not a file", Path, defaultBranch, owner, repo)
	}
	content, err := file.GetContent()
	if err != nil {
		return nil, fmt.Errorf("decode %s from %s of %s/%s: %w", Path, defaultBranch, owner, repo, err)
	}
	return Parse([]byte(content))
}

// IsInvalid reports whether err is a configuration problem (to be shown on the check) rather than an I/O
// failure (to be retried), and returns the first located problem.
func IsInvalid(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
