package auth

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// DefaultCost is the bcrypt cost of new password hashes.
const DefaultCost = 12

// Cost is the bcrypt cost HashPassword uses. Tests lower it (bcrypt.MinCost)
// to keep hashing fast; production code leaves it at DefaultCost.
var Cost = DefaultCost

// MaxPasswordBytes is bcrypt's input limit: longer passwords are refused
// rather than silently truncated.
const MaxPasswordBytes = 72

// ErrPasswordTooLong is returned by HashPassword for passwords over 72 bytes.
var ErrPasswordTooLong = errors.New("password longer than 72 bytes")

// ErrEmptyPassword is returned by HashPassword for an empty password.
var ErrEmptyPassword = errors.New("empty password")

// HashPassword returns the bcrypt hash of pw at cost Cost.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", ErrEmptyPassword
	}
	if len(pw) > MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), Cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches the bcrypt hash. It runs the
// full comparison even for a password it is going to refuse (too long), so
// the answer takes the hash's time either way. A malformed hash never
// matches.
func CheckPassword(hash, pw string) bool {
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
	return err == nil && len(pw) <= MaxPasswordBytes
}
