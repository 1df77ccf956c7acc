package config

import "strings"

// KnownDefaultSecrets are the secret values the repository ships or has
// shipped anywhere (the development admin password, the seed's documented
// admin password, the values of the old deploy and compose examples).
// Production refuses them (IsPlaceholder) and the password policy refuses
// them as new passwords (httpapi.KnownDefaultPasswords).
var KnownDefaultSecrets = []string{
	DefaultAdminPassword,
	"AdminPassword123",
	"CHANGE-ME",
	"CHANGE-ME-at-least-32-characters-long-secret",
	"local-trial-admin-pw",
	"local-trial-jwt-secret-change-me",
}

// placeholderMarks are the words that make a value a placeholder wherever
// they appear in it (compared in lower case).
var placeholderMarks = []string{"change-me", "changeme", "change_me", "example", "placeholder"}

// IsPlaceholder reports whether v looks like a placeholder rather than a
// secret an operator chose: it contains change-me (changeme, change_me),
// example or placeholder, in any case, or is one of KnownDefaultSecrets.
// It is the one rule production applies to every secret (see Load).
func IsPlaceholder(v string) bool {
	l := strings.ToLower(strings.TrimSpace(v))
	for _, m := range placeholderMarks {
		if strings.Contains(l, m) {
			return true
		}
	}
	for _, d := range KnownDefaultSecrets {
		if strings.EqualFold(l, d) {
			return true
		}
	}
	return false
}

// connectionVars are the variables whose credentials are the passwords
// inside a connection string or URL (config.Passwords); the rest of the
// value (a host such as db.example.com) is not a secret.
var connectionVars = map[string]bool{"DATABASE_URL": true, "TARGET_DATABASE_URL": true, "NATS_URL": true, "CHROMA_URL": true}

// placeholderSecrets returns, for production, a VarError for each secret
// of getenv that IsPlaceholder: the whole value of every Secret variable
// (JWT_SECRET, INIT_ADMIN_PASSWORD, OPENAI_API_KEY, …) and every password
// inside the connection strings (DATABASE_URL, TARGET_DATABASE_URL,
// NATS_URL, CHROMA_URL). No value appears in the errors.
func placeholderSecrets(getenv func(string) string) []*VarError {
	var out []*VarError
	for _, v := range Vars {
		val := strings.TrimSpace(getenv(v.Name))
		if val == "" {
			continue
		}
		if connectionVars[v.Name] {
			for _, pw := range Passwords(val) {
				if IsPlaceholder(pw) {
					out = append(out, &VarError{Var: v.Name, Reason: "production refuses a placeholder password (change-me, example, placeholder or a default the repository ships); set a generated one"})
					break
				}
			}
			continue
		}
		if v.Secret && IsPlaceholder(val) {
			out = append(out, &VarError{Var: v.Name, Reason: "production refuses a placeholder value (change-me, example, placeholder or a default the repository ships); set a generated one"})
		}
	}
	return out
}
