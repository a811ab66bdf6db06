package githubapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/go-github/v50/github"

	"github.com/storagebot/storagebot/internal/repoconfig"
)

// Permission is read here, beside the one client that calls it, rather than in a package of its own: the
// collaborator permission endpoint needs a raw request (go-github v50 lacks role_name) and reading it the way
// GitHub means it is the only thing to know.

// None is the permission of a user with no access to the repository; it meets no requirement.
const None repoconfig.Permission = "none"

// permissionResponse is the collaborator permission answer. Its `permission` field reports maintain as
// "write" and triage as "read"; the real role is in role_name (absent from go-github v50's type) and in
// user.permissions.
type permissionResponse struct {
	Permission string `json:"permission"`
	RoleName   string `json:"role_name"`
	User       struct {
		Permissions map[string]bool `json:"permissions"`
	} `json:"user"`
}

// permission returns user's repository permission: admin, maintain, write, triage, read, or None.
func permission(ctx context.Context, client *github.Client, owner, repo, user string) (repoconfig.Permission, error) {
	u := fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", url.PathEscape(owner), url.PathEscape(repo), url.PathEscape(user))
	req, err := client.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return None, err
	}
	var out permissionResponse
	resp, err := client.Do(ctx, req, &out)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return None, nil // not a collaborator
		}
		return None, fmt.Errorf("read permission of %s on %s/%s: %w", user, owner, repo, err)
	}
	return fromResponse(out), nil
}

// fromResponse picks the most precise source: role_name when it is a base role, else the permission
// booleans (custom roles carry their base role's booleans), else the lossy `permission` field.
func fromResponse(r permissionResponse) repoconfig.Permission {
	if p, err := repoconfig.ParsePermission(r.RoleName); err == nil {
		return p
	}
	perms := r.User.Permissions
	switch {
	case perms["admin"]:
		return repoconfig.Admin
	case perms["maintain"]:
		return repoconfig.Maintain
	case perms["push"]:
		return repoconfig.Write
	case perms["triage"]:
		return repoconfig.Triage
	case perms["pull"]:
		return repoconfig.Read
	}
	if p, err := repoconfig.ParsePermission(r.Permission); err == nil {
		return p
	}
	return None
}
