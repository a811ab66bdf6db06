package repoctx

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/repoconfig"
)

type configSource struct {
	cfg *repoconfig.Config
	err error
}

func (s configSource) Config(context.Context, string, string, string) (*repoconfig.Config, error) {
	return s.cfg, s.err
}

// TestLoad: a valid configuration is in Config, an invalid one is a verdict in ConfigErr, and a failure to
// read it is an error to retry.
func TestLoad(t *testing.T) {
	repo := &github.Repository{Name: github.String("r"), DefaultBranch: github.String("main"), Owner: &github.User{Login: github.String("o")}}
	invalid := &repoconfig.Error{Line: 2, Field: "channels", Msg: "bad"}
	tests := []struct {
		name      string
		src       configSource
		wantCfg   bool
		wantInval bool
		wantErr   bool
	}{
		{"valid", configSource{cfg: repoconfig.Default()}, true, false, false},
		{"invalid", configSource{err: invalid}, false, true, false},
		{"unreadable", configSource{err: errors.New("502")}, false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(context.Background(), tc.src, repo)
			if (err != nil) != tc.wantErr || (got.Config != nil) != tc.wantCfg || (got.ConfigErr != nil) != tc.wantInval {
				t.Fatalf("Load = %+v, %v; want config %v, invalid %v, error %v", got, err, tc.wantCfg, tc.wantInval, tc.wantErr)
			}
			if err == nil && (got.FullName() != "o/r" || got.DefaultBranch != "main") {
				t.Errorf("context %+v, want o/r on main", got)
			}
		})
	}
}
