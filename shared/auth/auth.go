// Package auth holds the API's authentication primitives: the role
// hierarchy (admin > operator > viewer), bcrypt password hashing, and
// HS256 JSON Web Tokens issued and verified with golang-jwt/jwt/v5.
//
// Tokens are signed with HMAC-SHA256 only: a token announcing any other
// algorithm, "none" included, is rejected before its signature is looked
// at. Every token carries iss "insightops", sub (the user's e-mail), role,
// iat and exp; all of them are required on verification. A login token
// also carries jti, the user's id (uid) and token version (ver).
package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Role is a user's authority level.
type Role string

// The roles, from most to least powerful.
const (
	Admin    Role = "admin"
	Operator Role = "operator"
	Viewer   Role = "viewer"
)

// Roles lists every role, most powerful first.
var Roles = []Role{Admin, Operator, Viewer}

// ErrUnknownRole is returned by ParseRole for anything but the three roles.
var ErrUnknownRole = errors.New("unknown role")

// rank orders the roles; 0 is not a role.
func (r Role) rank() int {
	switch r {
	case Admin:
		return 3
	case Operator:
		return 2
	case Viewer:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// String returns the role's name.
func (r Role) String() string { return string(r) }

// ParseRole accepts "admin", "operator" or "viewer" (case and surrounding
// space ignored).
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !r.Valid() {
		return "", fmt.Errorf("%w %q (accepted: admin, operator, viewer)", ErrUnknownRole, s)
	}
	return r, nil
}

// Allows reports whether a holder of role have may do what needs role
// need. An invalid role on either side allows nothing.
func Allows(have, need Role) bool {
	return have.Valid() && need.Valid() && have.rank() >= need.rank()
}
