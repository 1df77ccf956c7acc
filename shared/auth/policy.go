package auth

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// MinPasswordChars is the shortest password the policy accepts.
const MinPasswordChars = 12

// Reasons a password is refused by CheckPolicy.
const (
	PolicyTooShort = "too_short"
	PolicyTooLong  = "too_long"
	PolicyEmail    = "same_as_email"
	PolicyCommon   = "common_password"
	PolicyDefault  = "known_default"
)

// ErrPolicy is wrapped by every *PolicyError.
var ErrPolicy = errors.New("password does not meet the policy")

// PolicyError says why a password was refused; it never holds the password.
type PolicyError struct {
	Reason  string // one of the Policy* reasons
	Message string // for the user
}

func (e *PolicyError) Error() string { return e.Message }

// Unwrap returns ErrPolicy.
func (e *PolicyError) Unwrap() error { return ErrPolicy }

//go:embed common_passwords.txt
var commonPasswordsFile string

var (
	commonOnce      sync.Once
	commonPasswords map[string]struct{}
)

// common reports whether pw, compared case-insensitively, is in the list
// of common passwords shipped in common_passwords.txt.
func common(pw string) bool {
	commonOnce.Do(func() {
		commonPasswords = make(map[string]struct{}, 10300)
		sc := bufio.NewScanner(strings.NewReader(commonPasswordsFile))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "# ") && line != "#" {
				commonPasswords[strings.ToLower(line)] = struct{}{}
			}
		}
	})
	_, ok := commonPasswords[strings.ToLower(pw)]
	return ok
}

// CheckPolicy checks a new password for the account email: at least
// MinPasswordChars characters, at most MaxPasswordBytes bytes, not the
// e-mail (or its local part), not a common password, and none of the
// known defaults (compared case-insensitively). A refusal is a
// *PolicyError.
func CheckPolicy(pw, email string, knownDefaults ...string) error {
	lower := strings.ToLower(strings.TrimSpace(pw))
	email = strings.ToLower(strings.TrimSpace(email))
	local, _, _ := strings.Cut(email, "@")
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordChars:
		return &PolicyError{PolicyTooShort, fmt.Sprintf("the password must have at least %d characters", MinPasswordChars)}
	case len(pw) > MaxPasswordBytes:
		return &PolicyError{PolicyTooLong, fmt.Sprintf("the password must have at most %d bytes", MaxPasswordBytes)}
	case email != "" && (lower == email || lower == local):
		return &PolicyError{PolicyEmail, "the password must not be the e-mail address"}
	case common(pw):
		return &PolicyError{PolicyCommon, "the password is in the list of common passwords"}
	}
	for _, d := range knownDefaults {
		if strings.EqualFold(pw, d) {
			return &PolicyError{PolicyDefault, "the password is a documented default"}
		}
	}
	return nil
}
