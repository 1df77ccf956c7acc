package config

import (
	"net/url"
	"slices"
	"strings"
)

// RedactionMark stands in for a secret in redacted text (VarError.Redacted
// and the messages of config.invalid audit events).
const RedactionMark = "[redacted]"

// IsSecret reports whether the whole value of the variable name is a
// credential: a Secret row of Vars. Redacted text never shows such a value.
// The other variables may still carry a credential inside a URL (NATS_URL,
// CHROMA_URL); redaction removes it from every value (see RedactURLs).
func IsSecret(name string) bool {
	for _, v := range Vars {
		if v.Name == name {
			return v.Secret
		}
	}
	return false
}

// SecretVars returns the names of the variables IsSecret reports: the
// Secret rows of Vars, in their order.
func SecretVars() []string {
	var out []string
	for _, v := range Vars {
		if v.Secret {
			out = append(out, v.Name)
		}
	}
	return out
}

// RedactURLs replaces the password of every URL in urls, a
// comma-separated list such as NATS_URL, with "xxxxx" (as url.URL.Redacted
// does), and a userinfo without a password (a NATS token) whole. The rest
// of each URL stays, so a message still says which server it is about.
func RedactURLs(urls string) string { return redactURLs(urls, "xxxxx") }

// redactURLs is RedactURLs with mark in place of the secrets. A part that
// does not parse as a URL with a userinfo but has one ("user:pw@host", a
// malformed URL) loses it all the same.
func redactURLs(urls, mark string) string {
	if !strings.Contains(urls, "@") {
		return urls // no userinfo anywhere
	}
	parts := strings.Split(urls, ",")
	for i, part := range parts {
		parts[i] = redactURL(part, mark)
	}
	return strings.Join(parts, ",")
}

// redactURL redacts one URL of a list; part keeps its surrounding spaces
// when there is nothing to redact.
func redactURL(part, mark string) string {
	u, err := url.Parse(strings.TrimSpace(part))
	if err == nil && u.User != nil {
		// A placeholder of unreserved characters survives URL escaping;
		// it is then replaced by the mark, which might not.
		const placeholder = "REDACTEDxq7Zp"
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), placeholder)
		} else {
			u.User = url.User(placeholder)
		}
		return strings.Replace(u.String(), placeholder, mark, 1)
	}
	if err == nil && !strings.Contains(u.Opaque, "@") {
		return part // no userinfo ("@" in a path or query is not one)
	}
	// Unparseable (a password with a space or a '/'), or a userinfo
	// without "//" ("user:pw@host:port" parses as scheme "user"): hide
	// what stands between the scheme and the last "@", keeping the user.
	start := 0
	if i := strings.Index(part, "://"); i >= 0 {
		start = i + len("://")
	}
	at := strings.LastIndex(part[start:], "@")
	if at < 0 {
		return part
	}
	at += start
	if user, _, ok := strings.Cut(part[start:at], ":"); ok {
		return part[:start] + user + ":" + mark + part[at:]
	}
	return part[:start] + mark + part[at:]
}

// Passwords returns the passwords value carries, in every form a message
// may show them, longest first: for each comma-separated URL the password
// of its userinfo and its password query parameter, or the password
// keyword of a key/value connection string (host=db password='p w'); each
// also query- and path-escaped. It returns nil when there is none.
func Passwords(value string) []string {
	var pws []string
	if strings.Contains(value, "://") {
		for part := range strings.SplitSeq(value, ",") {
			u, err := url.Parse(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if u.User != nil {
				if pw, ok := u.User.Password(); ok {
					pws = append(pws, pw)
				}
			}
			pws = append(pws, u.Query()["password"]...)
		}
	} else if pw, ok := keywordPassword(value); ok {
		pws = append(pws, pw)
	}
	var out []string
	for _, pw := range pws {
		for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw)} {
			if form != "" && !slices.Contains(out, form) {
				out = append(out, form)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// keywordPassword finds the password keyword of a PostgreSQL key/value
// connection string (libpq rules: values may be single-quoted, a
// backslash escapes the next character).
func keywordPassword(cs string) (string, bool) {
	s := cs
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		eq := strings.IndexByte(s, '=')
		if s == "" || eq < 0 {
			return "", false
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t\r\n")
		var val strings.Builder
		quoted := strings.HasPrefix(s, "'")
		i := 0
		if quoted {
			i = 1
		}
		for ; i < len(s); i++ {
			if quoted && s[i] == '\'' || !quoted && strings.IndexByte(" \t\r\n", s[i]) >= 0 {
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			val.WriteByte(s[i])
		}
		if quoted && i < len(s) {
			i++ // the closing quote
		}
		s = s[i:]
		if key == "password" && val.Len() > 0 {
			return val.String(), true
		}
	}
}
