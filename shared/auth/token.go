package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenIssuer is the iss claim of every insightops token.
const TokenIssuer = "insightops"

// MinSecretBytes is the shortest HMAC key Issuer accepts.
const MinSecretBytes = 32

// DefaultTTL is a token's lifetime when Issuer.TTL is zero.
const DefaultTTL = time.Hour

// Leeway is the clock skew tolerated between API replicas on exp, nbf and
// iat.
const Leeway = 5 * time.Second

// Errors of Issue and Verify. Verify wraps ErrInvalidToken around every
// rejection (and ErrExpired as well for an expired token), so callers can
// answer 401 without caring why.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrExpired      = errors.New("token expired")
	ErrWeakSecret   = fmt.Errorf("jwt secret shorter than %d bytes", MinSecretBytes)
)

// Claims is what a verified token says about its bearer.
type Claims struct {
	Subject   string // the user's e-mail
	Role      Role
	ExpiresAt time.Time
	// ID is the token's jti, a random id (POST /auth/logout revokes it);
	// empty in tokens issued before it existed.
	ID string
	// Version is the user's token version when the token was issued
	// (claim "ver"): a token older than the user's current version is
	// refused.
	Version int64
	// UserID is the id of the user the token was issued to (claim "uid"):
	// a token is refused once its e-mail belongs to another user (the
	// account deleted and created again). 0 in tokens issued before it
	// existed; those are told apart by IssuedAt.
	UserID int64
	// IssuedAt is when the token was issued (claim "iat", whole seconds).
	IssuedAt time.Time
	// Service names the service token this caller used (Subject is then
	// "token:<name>", how audit events name it); empty for a login token.
	// It is set by the API, never read from a JWT.
	Service string
}

// tokenClaims is the token's JSON payload.
type tokenClaims struct {
	Role    string `json:"role"`
	Version int64  `json:"ver,omitempty"`
	UserID  int64  `json:"uid,omitempty"`
	jwt.RegisteredClaims
}

// Issuer issues and verifies HS256 tokens with one secret.
type Issuer struct {
	Secret []byte
	TTL    time.Duration // DefaultTTL when zero

	// Now is the clock; time.Now when nil (tests set it).
	Now func() time.Time
}

func (i Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func (i Issuer) ttl() time.Duration {
	if i.TTL > 0 {
		return i.TTL
	}
	return DefaultTTL
}

// Account is the user a login token is issued to.
type Account struct {
	Email   string // the subject (claim "sub")
	UserID  int64  // claim "uid"; 0 leaves it out
	Version int64  // the user's token version (claim "ver"); 0 leaves it out
}

// Issue signs a token for email with role, bound to no user id and token
// version 0, valid for TTL from now.
func (i Issuer) Issue(email string, role Role) (token string, expiresAt time.Time, err error) {
	return i.IssueFor(Account{Email: email}, role)
}

// IssueFor signs a token for acc with role, carrying the user's id, its
// token version and a random jti, valid for TTL from now.
func (i Issuer) IssueFor(acc Account, role Role) (token string, expiresAt time.Time, err error) {
	if len(i.Secret) < MinSecretBytes {
		return "", time.Time{}, ErrWeakSecret
	}
	if strings.TrimSpace(acc.Email) == "" {
		return "", time.Time{}, errors.New("issue token: empty subject")
	}
	if !role.Valid() {
		return "", time.Time{}, fmt.Errorf("issue token: %w %q", ErrUnknownRole, role)
	}
	now := i.now().UTC().Truncate(time.Second)
	expiresAt = now.Add(i.ttl())
	jti, err := randomID()
	if err != nil {
		return "", time.Time{}, err
	}
	claims := tokenClaims{
		Role:    string(role),
		Version: acc.Version,
		UserID:  acc.UserID,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        jti,
			Issuer:    TokenIssuer,
			Subject:   acc.Email,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expiresAt),
		},
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(i.Secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return token, expiresAt, nil
}

// Verify checks the token's signature (HS256 only), issuer, iat, nbf and
// exp (all required but nbf), and its role, and returns its claims.
func (i Issuer) Verify(token string) (Claims, error) {
	if len(i.Secret) < MinSecretBytes {
		return Claims{}, ErrWeakSecret
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(TokenIssuer),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(i.now),
	)
	var tc tokenClaims
	_, err := parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		// Belt and braces beside WithValidMethods: only HMAC-SHA256, so a
		// token cannot choose "none" or an asymmetric algorithm.
		if m, ok := t.Method.(*jwt.SigningMethodHMAC); !ok || m != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return i.Secret, nil
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrExpired)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if tc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: missing iat", ErrInvalidToken)
	}
	if strings.TrimSpace(tc.Subject) == "" {
		return Claims{}, fmt.Errorf("%w: missing sub", ErrInvalidToken)
	}
	role, err := ParseRole(tc.Role)
	if err != nil || Role(tc.Role) != role {
		return Claims{}, fmt.Errorf("%w: role %q", ErrInvalidToken, tc.Role)
	}
	return Claims{Subject: tc.Subject, Role: role, ExpiresAt: tc.ExpiresAt.Time, ID: tc.ID, Version: tc.Version,
		UserID: tc.UserID, IssuedAt: tc.IssuedAt.Time}, nil
}
