package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

func init() { Cost = bcrypt.MinCost }

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestAllows(t *testing.T) {
	cases := []struct {
		have, need Role
		want       bool
	}{
		{Admin, Admin, true}, {Admin, Operator, true}, {Admin, Viewer, true},
		{Operator, Admin, false}, {Operator, Operator, true}, {Operator, Viewer, true},
		{Viewer, Admin, false}, {Viewer, Operator, false}, {Viewer, Viewer, true},
		{"", Viewer, false}, {"root", Viewer, false}, {Admin, "", false}, {Admin, "root", false},
	}
	for _, c := range cases {
		if got := Allows(c.have, c.need); got != c.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", c.have, c.need, got, c.want)
		}
	}
}

func TestParseRole(t *testing.T) {
	for in, want := range map[string]Role{"admin": Admin, " Operator ": Operator, "VIEWER": Viewer} {
		got, err := ParseRole(in)
		if err != nil || got != want {
			t.Errorf("ParseRole(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "root", "admins", "view"} {
		if _, err := ParseRole(in); !errors.Is(err, ErrUnknownRole) {
			t.Errorf("ParseRole(%q) err = %v, want ErrUnknownRole", in, err)
		}
	}
}

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2a$") {
		t.Fatalf("hash %q is not bcrypt", h)
	}
	if !CheckPassword(h, "correct horse battery staple") {
		t.Error("right password refused")
	}
	if CheckPassword(h, "correct horse battery stapl") || CheckPassword(h, "") {
		t.Error("wrong password accepted")
	}
	if CheckPassword("not-a-hash", "x") {
		t.Error("malformed hash matched")
	}
	if _, err := HashPassword(""); !errors.Is(err, ErrEmptyPassword) {
		t.Errorf("empty password: %v", err)
	}
	long := strings.Repeat("a", 73)
	if _, err := HashPassword(long); !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("73-byte password: %v", err)
	}
	// bcrypt only reads 72 bytes: a longer input sharing them must not match.
	h72, err := HashPassword(long[:72])
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h72, long[:72]) || CheckPassword(h72, long) {
		t.Error("72-byte boundary handled wrongly")
	}
}

func TestDefaultCost(t *testing.T) {
	if DefaultCost != 12 {
		t.Fatalf("DefaultCost = %d, want 12", DefaultCost)
	}
	old := Cost
	defer func() { Cost = old }()
	Cost = 5
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := bcrypt.Cost([]byte(h)); c != 5 {
		t.Errorf("cost = %d, want the package var's 5", c)
	}
}

func TestIssueVerify(t *testing.T) {
	now := time.Now()
	iss := Issuer{Secret: secret, TTL: 30 * time.Minute}
	tok, exp, err := iss.Issue("ops@example.com", Operator)
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(now); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("expiry %s from now, want ~30m", d)
	}
	c, err := iss.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "ops@example.com" || c.Role != Operator || !c.ExpiresAt.Equal(exp) {
		t.Errorf("claims = %+v", c)
	}
	// The payload carries the contract's claims.
	var payload map[string]any
	part := strings.Split(tok, ".")[1]
	raw, _ := base64.RawURLEncoding.DecodeString(part)
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "sub", "role", "iat", "exp"} {
		if _, ok := payload[k]; !ok {
			t.Errorf("claim %s missing from %s", k, raw)
		}
	}
	if payload["iss"] != TokenIssuer {
		t.Errorf("iss = %v", payload["iss"])
	}
}

// sign builds a token by hand, so the test controls every byte.
func sign(t *testing.T, header, payload map[string]any, key []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	if key == nil {
		return in + "."
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestVerifyRejects(t *testing.T) {
	iss := Issuer{Secret: secret}
	now := time.Now().Unix()
	good := func() map[string]any {
		return map[string]any{"iss": TokenIssuer, "sub": "a@example.com", "role": "admin", "iat": now, "exp": now + 600}
	}
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	with := func(k string, v any) map[string]any {
		p := good()
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
		return p
	}
	otherSecret := []byte("ffffffffffffffffffffffffffffffff")
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims(good())).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"control (valid)":      sign(t, hs, good(), secret),
		"alg none":             sign(t, map[string]any{"alg": "none", "typ": "JWT"}, good(), nil),
		"alg None signed":      sign(t, map[string]any{"alg": "None", "typ": "JWT"}, good(), secret),
		"alg HS512":            hs512,
		"other secret":         sign(t, hs, good(), otherSecret),
		"expired":              sign(t, hs, with("exp", now-3600), secret),
		"no exp":               sign(t, hs, with("exp", nil), secret),
		"no iat":               sign(t, hs, with("iat", nil), secret),
		"iat in the future":    sign(t, hs, with("iat", now+3600), secret),
		"wrong issuer":         sign(t, hs, with("iss", "someone-else"), secret),
		"no issuer":            sign(t, hs, with("iss", nil), secret),
		"unknown role":         sign(t, hs, with("role", "root"), secret),
		"no role":              sign(t, hs, with("role", nil), secret),
		"no subject":           sign(t, hs, with("sub", nil), secret),
		"garbage":              "not.a.token",
		"empty":                "",
		"signature stripped":   strings.Join(strings.Split(sign(t, hs, good(), secret), ".")[:2], ".") + ".",
		"payload swapped role": swapPayload(t, sign(t, hs, with("role", "viewer"), secret), with("sub", "b@example.com")),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := iss.Verify(tok)
			if name == "control (valid)" {
				if err != nil {
					t.Fatalf("valid token refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			if name == "expired" && !errors.Is(err, ErrExpired) {
				t.Errorf("expired token: err = %v, want ErrExpired too", err)
			}
		})
	}
}

// swapPayload keeps the token's signature but replaces its payload.
func swapPayload(t *testing.T, tok string, p map[string]any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, _ := json.Marshal(p)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestIssuerRefuses(t *testing.T) {
	if _, _, err := (Issuer{Secret: []byte("short")}).Issue("a@example.com", Admin); !errors.Is(err, ErrWeakSecret) {
		t.Errorf("short secret: %v", err)
	}
	if _, err := (Issuer{Secret: []byte("short")}).Verify("x"); !errors.Is(err, ErrWeakSecret) {
		t.Errorf("short secret verify: %v", err)
	}
	if _, _, err := (Issuer{Secret: secret}).Issue("", Admin); err == nil || !strings.Contains(err.Error(), "empty subject") {
		t.Errorf("empty subject: %v; want the empty-subject refusal", err)
	}
	if _, _, err := (Issuer{Secret: secret}).Issue("a@example.com", "root"); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("bad role: %v", err)
	}
}

func TestExpiryWithClock(t *testing.T) {
	base := time.Now()
	clock := base
	iss := Issuer{Secret: secret, TTL: time.Minute, Now: func() time.Time { return clock }}
	tok, _, err := iss.Issue("a@example.com", Viewer)
	if err != nil {
		t.Fatal(err)
	}
	clock = base.Add(59 * time.Second)
	if _, err := iss.Verify(tok); err != nil {
		t.Fatalf("within ttl: %v", err)
	}
	clock = base.Add(time.Minute + Leeway + 2*time.Second)
	if _, err := iss.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("after ttl: %v", err)
	}
}
