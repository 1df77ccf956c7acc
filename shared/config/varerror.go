package config

import (
	"strconv"
	"strings"
)

// VarError is one problem Load found, about one variable. Its Error text
// names the variable, then the value when the problem is about it, then
// what is wrong or what is accepted:
//
//	NATS_REPLICAS="0": accepted values: an integer from 1 to 5
//	NATS_CREDS="/run/nats.creds": stat /run/nats.creds: no such file or directory
//	JWT_SECRET: must be at least 32 characters
//
// Error shows the value as given; Redacted is the same text without any
// secret, for messages that leave the process (audit events).
type VarError struct {
	// Var is the variable's name, e.g. "NATS_REPLICAS".
	Var string
	// Value is the value refused, as the message shows it; empty unless
	// HasValue (a message about a secret's length does not carry it).
	Value string
	// HasValue: the message shows Value, as Var="Value" (or Var=Value for
	// a number or duration Load already parsed).
	HasValue bool
	// Reason is what is wrong, e.g. "accepted values: gzip, zstd" or
	// "must be at least 32 characters"; empty: Err's text.
	Reason string
	// Err is the underlying error, e.g. os.Stat's for NATS_CREDS; nil
	// when there is none.
	Err error

	bare bool   // Value is written as is, not quoted
	sep  string // between "Var[=Value]" and Reason; ": " when empty
}

// Error is the problem's text, value included.
func (e *VarError) Error() string {
	return e.render(e.Value, func(s string) string { return s })
}

// Unwrap returns the underlying error, if any.
func (e *VarError) Unwrap() error { return e.Err }

// Secret reports whether the value of e's variable is a credential (see
// IsSecret).
func (e *VarError) Secret() bool { return IsSecret(e.Var) }

// Redacted is Error's text with no secret in it: the value of a secret
// variable is replaced by RedactionMark, and the password (or token) of
// every URL in a value by RedactionMark too, wherever the text shows
// them, the underlying error's text included.
func (e *VarError) Redacted() string {
	raw := e.Value
	var shown string
	var hidden []string // substrings of the text that must not stay
	if e.Secret() {
		shown = RedactionMark
		hidden = append(hidden, raw)
	} else {
		shown = redactURLs(raw, RedactionMark)
		if shown != raw {
			hidden = append(hidden, raw)
		}
	}
	hidden = append(hidden, Passwords(raw)...)
	return e.render(shown, func(s string) string {
		for _, h := range hidden {
			if h == "" {
				continue
			}
			r := RedactionMark
			if h == raw {
				r = shown
			}
			s = strings.ReplaceAll(s, h, r)
		}
		return s
	})
}

// render writes the message with value as the value, passing the reason
// (or the underlying error's text) through text.
func (e *VarError) render(value string, text func(string) string) string {
	var b strings.Builder
	b.WriteString(e.Var)
	if e.HasValue {
		b.WriteByte('=')
		if e.bare {
			b.WriteString(value)
		} else {
			b.WriteString(strconv.Quote(value))
		}
	}
	reason := e.Reason
	if reason == "" && e.Err != nil {
		reason = e.Err.Error()
	}
	if reason != "" {
		sep := e.sep
		if sep == "" {
			sep = ": "
		}
		b.WriteString(sep)
		b.WriteString(text(reason))
	}
	return b.String()
}

// Problems returns the problems of an error Load returned, one *VarError
// each, in the order Load found them. It walks err's tree (Unwrap() error
// and Unwrap() []error, as errors.As does), so the error may have been
// wrapped since; it returns nil when err holds no VarError.
func Problems(err error) []*VarError {
	var out []*VarError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if v, ok := e.(*VarError); ok { //nolint:errorlint // walks the wrap chain itself, collecting every VarError
			out = append(out, v)
			return
		}
		switch u := e.(type) { //nolint:errorlint // unwraps one level per call of walk
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
