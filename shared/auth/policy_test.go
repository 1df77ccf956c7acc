package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckPolicyRefusesWeakPasswordsWithAReason(t *testing.T) {
	for _, tc := range []struct {
		name, pw, email, want string
	}{
		{"long and unusual", "violet-harbour-42-lamps", "ops@example.com", ""},
		{"too short", "short-pw-11", "ops@example.com", PolicyTooShort},
		{"12 multibyte characters are enough", "ééééééééééé1", "ops@example.com", ""},
		{"too long for bcrypt", strings.Repeat("x", 73), "ops@example.com", PolicyTooLong},
		{"the e-mail", "Long.Name@Example.com", "long.name@example.com", PolicyEmail},
		{"the e-mail's local part", "firstname.lastname", "firstname.lastname@example.com", PolicyEmail},
		{"common (shipped list)", "1qaz2wsx3edc", "ops@example.com", PolicyCommon},
		{"common, other case", "PASSWORD1234", "ops@example.com", PolicyCommon},
		{"known default", "AdminPassword123", "ops@example.com", PolicyDefault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPolicy(tc.pw, tc.email, "AdminPassword123")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Reason != tc.want || !errors.Is(err, ErrPolicy) {
				t.Fatalf("err = %v, want reason %s", err, tc.want)
			}
			if strings.Contains(pe.Message, tc.pw) {
				t.Errorf("message %q holds the password", pe.Message)
			}
		})
	}
}

func TestCommonPasswordListIsLoaded(t *testing.T) {
	common("x")
	if n := len(commonPasswords); n < 10000 {
		t.Fatalf("%d common passwords loaded, want over 10000", n)
	}
	if _, ok := commonPasswords["# common passwords refused by the password policy (shared/auth/policy.go)."]; ok {
		t.Error("the header comment was loaded as a password")
	}
}

// TestTokenCarriesIDUserAndVersion: a login token carries a fresh jti,
// the user's id (uid) and token version (ver) and its issue time; a token
// without them (issued before uid existed) verifies with zeros.
func TestTokenCarriesIDUserAndVersion(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 10, 0, 0, 500, time.UTC)
	iss := Issuer{Secret: secret, Now: func() time.Time { return at }}
	cases := []struct {
		name string
		acc  Account
	}{
		{"bound to user 42 at version 7", Account{Email: "a@example.com", UserID: 42, Version: 7}},
		{"no user id (as before uid)", Account{Email: "a@example.com", Version: 7}},
		{"neither", Account{Email: "a@example.com"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a, _, err := iss.IssueFor(c.acc, Viewer)
			if err != nil {
				t.Fatal(err)
			}
			b, _, _ := iss.IssueFor(c.acc, Viewer)
			ca, err := iss.Verify(a)
			if err != nil {
				t.Fatal(err)
			}
			cb, _ := iss.Verify(b)
			if ca.Version != c.acc.Version || ca.UserID != c.acc.UserID || ca.ID == "" || ca.ID == cb.ID || !ca.IssuedAt.Equal(at.Truncate(time.Second)) {
				t.Fatalf("claims %+v and %+v: want version %d, uid %d, iat %s and distinct jti", ca, cb, c.acc.Version, c.acc.UserID, at.Truncate(time.Second))
			}
			var payload map[string]any
			raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(a, ".")[1])
			if err := json.Unmarshal(raw, &payload); err != nil {
				t.Fatal(err)
			}
			for claim, want := range map[string]bool{"uid": c.acc.UserID != 0, "ver": c.acc.Version != 0} {
				if _, ok := payload[claim]; ok != want {
					t.Errorf("%s in %s: %v, want %v", claim, raw, ok, want)
				}
			}
		})
	}
}

func TestServiceTokenIsStoredAsItsHashOnly(t *testing.T) {
	s, h, err := NewServiceToken()
	if err != nil {
		t.Fatal(err)
	}
	if !IsServiceToken(s) || strings.Contains(h, s) || HashServiceToken(s) != h || len(h) != 64 {
		t.Fatalf("secret %q hash %q", s, h)
	}
}
