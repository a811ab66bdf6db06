package policy

// Setting is one rule's configuration in one channel.
type Setting struct {
	// Severity of the rule's findings; SeverityOff disables the rule.
	Severity Severity
	// Exceptions is true when /allow may turn the rule's findings into notices.
	Exceptions bool
}

// Rules maps every RuleID to its Setting for one channel. A rule missing from the map is off.
type Rules map[RuleID]Setting

// AllRules lists every rule in the order the documentation presents them.
func AllRules() []RuleID {
	return []RuleID{
		RuleOverwrite, RuleRemoval, RuleVersionOrder, RulePromotionSource, RuleShadowed,
		RuleManifest, RuleDevFiles, RuleRegistryVersion, RuleTitlePrefix, RuleLayout,
	}
}

// KnownRule reports whether id names a rule of docs/architecture.md §4.
func KnownRule(id RuleID) bool {
	for _, r := range AllRules() {
		if r == id {
			return true
		}
	}
	return false
}

// KnownSeverity reports whether s is a severity configuration may use (SeverityOff included).
func KnownSeverity(s Severity) bool {
	switch s {
	case SeverityError, SeverityWarning, SeverityNotice, SeverityOff:
		return true
	}
	return false
}

// Role is what a channel does in the promotion chain, derived from its position so that renamed channels
// behave like the ones they replace.
type Role int

// Channel roles. With a single channel it is both lowest and highest and plays RoleProduction: nothing is
// above it and its versions are what users get.
const (
	// RoleSnapshot is the lowest channel: versions arrive here first and may change freely.
	RoleSnapshot Role = iota
	// RoleStaging is any channel strictly between the lowest and the highest.
	RoleStaging
	// RoleProduction is the highest channel: released versions never change.
	RoleProduction
)

// RoleOf returns the role of the channel at position (0 = lowest) among count channels.
func RoleOf(position, count int) Role {
	switch {
	case position >= count-1:
		return RoleProduction
	case position <= 0:
		return RoleSnapshot
	default:
		return RoleStaging
	}
}

// DefaultRules returns the built-in defaults of docs/architecture.md §4 for a channel given its position among the channels
// (lowest = snapshot-like, highest = production-like, anything between = staging-like), so a repository with
// renamed channels gets the right behaviour.
//
// Exceptions are allowed by default only where docs/architecture.md §4 says "unless excepted": overwrite and removal in
// staging-like channels. Configuration may allow them elsewhere.
func DefaultRules(position, count int) Rules {
	role := RoleOf(position, count)
	on := Setting{Severity: SeverityError}
	off := Setting{Severity: SeverityOff}
	r := Rules{
		RuleManifest:        on,
		RuleDevFiles:        on,
		RuleRegistryVersion: on,
		RuleTitlePrefix:     on,
		RuleLayout:          on,
	}
	switch role {
	case RoleSnapshot:
		r[RuleOverwrite] = off
		// In the lowest channel a removal only matters when the version leaves every distribution.
		r[RuleRemoval] = Setting{Severity: SeverityNotice}
		r[RuleVersionOrder] = off
		r[RulePromotionSource] = off
		r[RuleShadowed] = on
	case RoleStaging:
		r[RuleOverwrite] = Setting{Severity: SeverityError, Exceptions: true}
		r[RuleRemoval] = Setting{Severity: SeverityError, Exceptions: true}
		r[RuleVersionOrder] = off
		r[RulePromotionSource] = on
		r[RuleShadowed] = on
	case RoleProduction:
		r[RuleOverwrite] = on
		r[RuleRemoval] = on
		r[RuleVersionOrder] = on
		r[RulePromotionSource] = on
		if count <= 1 {
			// A lone channel has nothing to promote from.
			r[RulePromotionSource] = off
		}
		// Nothing is above the highest channel, so nothing can shadow it.
		r[RuleShadowed] = off
	}
	return r
}

// Clone returns a copy of r that can be changed without affecting r.
func (r Rules) Clone() Rules {
	c := make(Rules, len(r))
	for k, v := range r {
		c[k] = v
	}
	return c
}

// setting returns the rule's setting; a rule absent from r is off.
func (r Rules) setting(id RuleID) Setting {
	s, ok := r[id]
	if !ok || s.Severity == "" {
		return Setting{Severity: SeverityOff}
	}
	return s
}
