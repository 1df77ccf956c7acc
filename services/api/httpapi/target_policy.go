package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/insightops/insightops/shared/config"
)

// Error codes of POST /admin/db/target/test's refusals.
const (
	// CodeTargetNotAllowed (403): the URL names a host not in
	// TARGET_TEST_ALLOWED_HOSTS or a file outside TARGET_TEST_ALLOWED_PATHS.
	CodeTargetNotAllowed = "target_not_allowed"
	// CodeTargetParamRefused (400): the postgres URL carries a parameter
	// the probe does not accept (a file such as passfile, sslkey or
	// servicefile, a host override, …).
	CodeTargetParamRefused = "target_param_refused"
)

// TargetTestLimit bounds the probes one user may run: 5 at once, then 10
// a minute. A probe opens a connection or a file; the limit keeps an
// admin token from becoming a port scanner.
var TargetTestLimit = Limit{Every: 6 * time.Second, Burst: 5}

// targetURLParams are the only query parameters a probed postgres URL may
// carry. Anything else is refused: pgx reads files named by passfile,
// servicefile (and service), sslkey, sslcert, sslrootcert, sslcrl, and
// host/port would bypass the host check of the URL's authority.
var targetURLParams = []string{"sslmode", "connect_timeout", "application_name", "target_session_attrs"}

// Categories of a failed probe: TargetTestResult.ErrorCode. The answer
// holds the category and a fixed sentence, never the driver's message (no
// server banner, no file content, no credentials).
const (
	TargetErrUnreachable  = "unreachable"
	TargetErrAuthFailed   = "auth_failed"
	TargetErrNotFound     = "not_found"
	TargetErrRefused      = "refused"
	TargetErrTimeout      = "timeout"
	TargetErrTLS          = "tls"
	TargetErrNotADatabase = "not_a_database"
	TargetErrFailed       = "failed"
)

// targetErrMessages are the sentences answered with each category.
var targetErrMessages = map[string]string{
	TargetErrUnreachable:  "the host could not be reached",
	TargetErrAuthFailed:   "authentication failed",
	TargetErrNotFound:     "no such database or file",
	TargetErrRefused:      "the connection or the file was refused",
	TargetErrTimeout:      "no answer within " + TargetProbeTimeout.String(),
	TargetErrTLS:          "the TLS handshake failed",
	TargetErrNotADatabase: "the file is not a readable SQLite database",
	TargetErrFailed:       "the probe failed",
}

// Errors of probeSQLite, classified by targetErrorCategory.
var (
	errSQLiteMissing  = errors.New("no such sqlite file")
	errSQLiteNotADB   = errors.New("not a readable sqlite database")
	errSQLiteNoAccess = errors.New("cannot read the sqlite file")
)

// targetErrorCategory reduces a probe's error to one category.
func targetErrorCategory(err error) string {
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return TargetErrTimeout
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return TargetErrAuthFailed
		case "3D000": // invalid_catalog_name: no such database
			return TargetErrNotFound
		}
		return TargetErrRefused
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &recordErr):
		return TargetErrTLS
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, errSQLiteNoAccess), errors.Is(err, fs.ErrPermission):
		return TargetErrRefused
	case errors.Is(err, errSQLiteMissing), errors.Is(err, fs.ErrNotExist):
		return TargetErrNotFound
	case errors.Is(err, errSQLiteNotADB):
		return TargetErrNotADatabase
	case errors.As(err, &dnsErr), errors.As(err, &opErr), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return TargetErrUnreachable
	}
	if strings.Contains(strings.ToLower(err.Error()), "tls") {
		return TargetErrTLS
	}
	return TargetErrFailed
}

// targetPolicy is what POST /admin/db/target/test may reach.
type targetPolicy struct {
	hosts []string // host or host:port, lower case; a unix socket directory as is
	dirs  []string // absolute, cleaned
}

// newTargetPolicy builds the policy of cfg: TARGET_TEST_ALLOWED_HOSTS, or
// the host of TARGET_DATABASE_URL; TARGET_TEST_ALLOWED_PATHS, or the
// directory of TARGET_DB_PATH.
func newTargetPolicy(cfg config.Config) targetPolicy {
	var p targetPolicy
	for _, h := range cfg.TargetTestAllowedHosts {
		p.hosts = append(p.hosts, strings.ToLower(h))
	}
	if len(p.hosts) == 0 && isPostgresURL(cfg.TargetDatabaseURL) {
		if pc, err := pgx.ParseConfig(cfg.TargetDatabaseURL); err == nil {
			p.hosts = append(p.hosts, strings.ToLower(net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port)))))
		}
	}
	dirs := cfg.TargetTestAllowedPaths
	if len(dirs) == 0 && cfg.TargetDBPath != "" {
		dirs = []string{filepath.Dir(cfg.TargetDBPath)}
	}
	for _, d := range dirs {
		if abs, err := filepath.Abs(d); err == nil {
			p.dirs = append(p.dirs, abs)
		}
	}
	return p
}

// hostAllowed reports whether host:port matches an allowed entry (a
// bare host allows every port).
func (p targetPolicy) hostAllowed(host string, port uint16) bool {
	host = strings.ToLower(host)
	full := net.JoinHostPort(host, strconv.Itoa(int(port)))
	for _, a := range p.hosts {
		if a == full || a == host || a == "["+host+"]" {
			return true
		}
	}
	return false
}

// checkTargetParams refuses a postgres URL with a query parameter outside
// targetURLParams. It runs before pgx parses the URL: pgx.ParseConfig
// itself reads the files sslkey, sslcert, sslrootcert and servicefile name.
func checkTargetParams(raw string) *APIError {
	u, err := url.Parse(raw)
	if err != nil {
		return badRequest("url is not a valid postgres URL")
	}
	for key := range u.Query() {
		if !slices.Contains(targetURLParams, strings.ToLower(key)) {
			return apiErr(http.StatusBadRequest, CodeTargetParamRefused, "the URL parameter %s is not accepted (allowed: %s)", displayParam(key), strings.Join(targetURLParams, ", "))
		}
	}
	return nil
}

// checkPostgres refuses a URL whose host (the URL's, a fallback's, the
// default one) is not allowed. The URL passed checkTargetParams.
func (p targetPolicy) checkPostgres(raw string) *APIError {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return badRequest("url is not a valid postgres URL")
	}
	if !p.hostAllowed(cfg.Host, cfg.Port) {
		return apiErr(http.StatusForbidden, CodeTargetNotAllowed, "the host is not in TARGET_TEST_ALLOWED_HOSTS")
	}
	for _, fb := range cfg.Fallbacks {
		if !p.hostAllowed(fb.Host, fb.Port) {
			return apiErr(http.StatusForbidden, CodeTargetNotAllowed, "the host is not in TARGET_TEST_ALLOWED_HOSTS")
		}
	}
	return nil
}

// checkSQLite refuses a file outside the allowed directories, both as
// named and with its links resolved (a link inside pointing outside is
// refused). A missing file inside is allowed: the probe says not_found.
func (p targetPolicy) checkSQLite(path string) *APIError {
	refused := apiErr(http.StatusForbidden, CodeTargetNotAllowed, "the file is not under TARGET_TEST_ALLOWED_PATHS")
	abs, err := filepath.Abs(path)
	if err != nil || !p.within(abs, p.dirs) {
		return refused
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return refused
	}
	var realDirs []string
	for _, d := range p.dirs {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			realDirs = append(realDirs, r)
		}
	}
	if !p.within(resolved, realDirs) {
		return refused
	}
	return nil
}

// within reports whether path is strictly inside one of dirs.
func (targetPolicy) within(path string, dirs []string) bool {
	for _, d := range dirs {
		rel, err := filepath.Rel(d, path)
		if err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel) {
			return true
		}
	}
	return false
}

// displayParam is a query key fit for an error message.
func displayParam(k string) string {
	if len(k) > 40 {
		k = k[:40]
	}
	return strconv.QuoteToASCII(k)
}
