package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// ServiceTokenPrefix starts every service token, so the API (and a secret
// scanner) can tell one from a login JWT.
const ServiceTokenPrefix = "iops_"

// randomID returns 16 random bytes, URL-safe base64.
func randomID() (string, error) { return randomString(16) }

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewServiceToken returns a new service token secret (ServiceTokenPrefix
// and 32 random bytes) and the hash to store.
func NewServiceToken() (secret, hash string, err error) {
	r, err := randomString(32)
	if err != nil {
		return "", "", err
	}
	secret = ServiceTokenPrefix + r
	return secret, HashServiceToken(secret), nil
}

// IsServiceToken reports whether tok has the service token shape.
func IsServiceToken(tok string) bool { return strings.HasPrefix(tok, ServiceTokenPrefix) }

// HashServiceToken is the stored form of a service token: hex SHA-256
// (the secret has 256 random bits, so no salt or slow hash is needed).
func HashServiceToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// GeneratePassword returns a random password of 24 URL-safe characters,
// for accounts created without one (shown once).
func GeneratePassword() (string, error) { return randomString(18) }
