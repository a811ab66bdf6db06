package repoconfig

import (
	"fmt"
)

// Permission is a GitHub repository permission level; they are ordered read < triage < write < maintain < admin.
type Permission string

// Repository permission levels, lowest first.
const (
	Read     Permission = "read"
	Triage   Permission = "triage"
	Write    Permission = "write"
	Maintain Permission = "maintain"
	Admin    Permission = "admin"
)

var permissionRank = map[Permission]int{Read: 1, Triage: 2, Write: 3, Maintain: 4, Admin: 5}

// ParsePermission parses a permission level name.
func ParsePermission(s string) (Permission, error) {
	p := Permission(s)
	if _, ok := permissionRank[p]; !ok {
		return "", fmt.Errorf("unknown permission %q (want read, triage, write, maintain or admin)", s)
	}
	return p, nil
}

// Meets reports whether a user holding p may do what needs required. An unknown permission meets nothing.
func (p Permission) Meets(required Permission) bool {
	have, ok := permissionRank[p]
	need, known := permissionRank[required]
	return ok && known && have >= need
}
