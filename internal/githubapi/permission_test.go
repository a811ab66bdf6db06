package githubapi

import (
	"context"
	"testing"

	"github.com/storagebot/storagebot/internal/githubfake"
	"github.com/storagebot/storagebot/internal/repoconfig"
)

func TestPermissionAgainstFake(t *testing.T) {
	s := githubfake.New(githubfake.Options{Logf: t.Logf})
	defer s.Close()
	repo := s.CreateRepo("storage-org", "package-storage", "main")
	for _, role := range []string{"read", "triage", "write", "maintain", "admin"} {
		repo.SetPermission("user-"+role, role)
	}
	client, err := s.InstallationClient()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user string
		want repoconfig.Permission
	}{
		{"user-read", repoconfig.Read},
		{"user-triage", repoconfig.Triage}, // reported as "read" in `permission`
		{"user-write", repoconfig.Write},
		{"user-maintain", repoconfig.Maintain}, // reported as "write" in `permission`
		{"user-admin", repoconfig.Admin},
		{"stranger", None},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			got, err := permission(context.Background(), client, "storage-org", "package-storage", tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Permission(%s) = %q, want %q", tc.user, got, tc.want)
			}
		})
	}
}

func TestFromResponseCustomRole(t *testing.T) {
	r := permissionResponse{Permission: "write", RoleName: "release-manager"}
	r.User.Permissions = map[string]bool{"pull": true, "triage": true, "push": true, "maintain": true}
	if got := fromResponse(r); got != repoconfig.Maintain {
		t.Errorf("custom role with maintain booleans = %q, want maintain", got)
	}
}
