package auth

import (
	"errors"
	"strings"
	"testing"
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

func TestTokenCarriesIDAndVersion(t *testing.T) {
	iss := Issuer{Secret: secret}
	a, _, err := iss.IssueVersion("a@example.com", Viewer, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := iss.IssueVersion("a@example.com", Viewer, 7)
	ca, err := iss.Verify(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := iss.Verify(b)
	if ca.Version != 7 || ca.ID == "" || ca.ID == cb.ID {
		t.Fatalf("claims %+v and %+v: want version 7 and distinct jti", ca, cb)
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
