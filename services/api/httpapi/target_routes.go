package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/insightops/insightops/shared/audit"
	"github.com/insightops/insightops/shared/auth"
	"github.com/insightops/insightops/shared/golden"
)

// TargetProbeTimeout bounds one probe of a target database.
const TargetProbeTimeout = 5 * time.Second

// targetSample is how many table names GET /admin/db/target/health lists.
const targetSample = 10

// Target health statuses.
const (
	TargetDisabled = "disabled"
	TargetHealthy  = "healthy"
	TargetDown     = "down"
)

// Kinds of target database a probe reaches.
const (
	TargetKindPostgres = "postgres"
	TargetKindSQLite   = "sqlite"
)

var targetRoutes = []routeDef{
	{Route{http.MethodGet, "/admin/db/target/health", auth.Viewer, false, "target DB: disabled, or healthy with table count and a sample of table names"}, (*Server).targetHealth},
	{Route{http.MethodPost, "/admin/db/target/test", auth.Admin, false, "probe a target DB URL read-only, only on TARGET_TEST_ALLOWED_HOSTS / _PATHS, rate-limited per user: {url} → {ok, kind, tables, latency_ms, error_code?, error?} (errors reduced to a category)"}, (*Server).targetTest},
}

// TargetHealth is the body of GET /admin/db/target/health.
type TargetHealth struct {
	Enabled bool   `json:"enabled"`
	Status  string `json:"status"`
	// Path is the runtime copy's path, or the external target described
	// without credentials (scheme://host:port/database).
	Path         string   `json:"path"`
	Tables       int      `json:"tables"`
	Views        int      `json:"views"`
	SampleTables []string `json:"sample_tables"`
	Error        string   `json:"error,omitempty"`
}

// targetState inspects the configured target DB: the external
// TARGET_DATABASE_URL when set, else the runtime copy at TARGET_DB_PATH.
// Disabled when ENABLE_TARGET_DB is off and no runtime copy exists.
func (s *Server) targetState(ctx context.Context) TargetHealth {
	ctx, cancel := context.WithTimeout(ctx, TargetProbeTimeout)
	defer cancel()
	th := TargetHealth{SampleTables: []string{}}
	if raw := s.cfg.TargetDatabaseURL; raw != "" {
		th.Enabled, th.Path = true, describeTargetURL(raw)
		if !isPostgresURL(raw) {
			th.Status, th.Error = TargetDown, "TARGET_DATABASE_URL is not a postgres:// URL"
			return th
		}
		info, err := probePostgres(ctx, raw)
		if err != nil {
			th.Status, th.Error = TargetDown, sanitizeTargetError(err.Error(), raw)
			return th
		}
		th.Status, th.Tables, th.Views, th.SampleTables = TargetHealthy, info.Tables, info.Views, info.TableNames
		return th
	}
	path := s.cfg.TargetDBPath
	th.Path = path
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !s.cfg.EnableTargetDB:
		th.Status = TargetDisabled
		return th
	case errors.Is(err, fs.ErrNotExist):
		th.Enabled, th.Status, th.Error = true, TargetDown, "the runtime copy does not exist yet: run init (POST /admin/db/init)"
		return th
	}
	th.Enabled = true
	info, err := probeSQLite(ctx, path)
	if err != nil {
		th.Status, th.Error = TargetDown, err.Error()
		return th
	}
	th.Status, th.Tables, th.Views, th.SampleTables = TargetHealthy, info.Tables, info.Views, info.TableNames
	return th
}

// targetHealth answers GET /admin/db/target/health (always 200: the body
// says whether the target is healthy).
func (s *Server) targetHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, s.targetState(c.Request().Context()))
}

// targetTestRequest is the body of POST /admin/db/target/test.
type targetTestRequest struct {
	URL string `json:"url"`
}

// TargetTestResult is the answer of POST /admin/db/target/test. It never
// holds the URL, any part of its credentials, or the driver's message: a
// failed probe has ErrorCode (a TargetErr… category) and Error, the fixed
// sentence of that category.
type TargetTestResult struct {
	OK        bool    `json:"ok"`
	Kind      string  `json:"kind"`
	Tables    int     `json:"tables"`
	LatencyMS float64 `json:"latency_ms"`
	ErrorCode string  `json:"error_code,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// testTarget is a checked POST /admin/db/target/test request: the URL,
// trimmed, and what it names (classifyTarget).
type testTarget struct {
	// URL is the body's url without surrounding white space.
	URL string
	// Kind is TargetKindPostgres or TargetKindSQLite.
	Kind string
	// SQLitePath is the file a sqlite target names; empty for postgres.
	SQLitePath string
}

// parseTargetTest decodes and checks the body of POST
// /admin/db/target/test: a required JSON object {url} whose url, trimmed,
// is non-empty and a postgres URL or a sqlite file (classifyTarget). A
// bad body is a 4xx *APIError. Nothing is probed.
func (s *Server) parseTargetTest(c echo.Context) (testTarget, error) {
	var body targetTestRequest
	if err := decodeJSON(c, &body, false); err != nil {
		return testTarget{}, err
	}
	raw := strings.TrimSpace(body.URL)
	if raw == "" {
		return testTarget{}, badRequest("field \"url\" is required: a postgres:// URL, a sqlite file path or a file: URL")
	}
	kind, sqlitePath, err := classifyTarget(raw)
	if err != nil {
		return testTarget{}, err
	}
	return testTarget{URL: raw, Kind: kind, SQLitePath: sqlitePath}, nil
}

// targetTest answers POST /admin/db/target/test: probe the given URL
// read-only within TargetProbeTimeout. A target that cannot be reached is
// ok=false (200) with the category of the failure; a malformed body or an
// unsupported scheme or parameter is a 400, a host or file the policy
// does not allow a 403, more than TargetTestLimit a 429.
func (s *Server) targetTest(c echo.Context) error {
	cl, _ := claimsOf(c)
	if ok, wait := s.targetTests.allow(cl.Subject, time.Now()); !ok {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return apiErr(http.StatusTooManyRequests, CodeRateLimited, "too many target probes; retry in %d seconds", secs)
	}
	target, err := s.parseTargetTest(c)
	var refused *APIError
	if errors.As(err, &refused) && refused.Code == CodeTargetParamRefused {
		target.Kind = TargetKindPostgres
	} else if err != nil {
		return err
	}
	raw, kind, sqlitePath := target.URL, target.Kind, target.SQLitePath
	switch {
	case refused != nil:
	case kind == TargetKindPostgres:
		refused = s.targetPolicy.checkPostgres(raw)
	default:
		refused = s.targetPolicy.checkSQLite(sqlitePath)
	}
	if refused != nil {
		scheme, host := targetSchemeHost(raw, kind)
		s.recordAudit(c, audit.Event{
			Actor: cl.Subject, Role: string(cl.Role),
			Action: "target.test", Resource: "target", Outcome: audit.Denied,
			Detail: map[string]any{"scheme": scheme, "host": host, "reason": refused.Code},
		})
		return refused
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), TargetProbeTimeout)
	defer cancel()
	res := TargetTestResult{Kind: kind}
	start := time.Now()
	var info golden.Info
	switch kind {
	case TargetKindPostgres:
		info, err = probePostgres(ctx, raw)
	default:
		info, err = probeSQLite(ctx, sqlitePath)
	}
	res.LatencyMS = ms(time.Since(start))
	if err != nil {
		res.ErrorCode = targetErrorCategory(err)
		res.Error = targetErrMessages[res.ErrorCode]
		msg := sanitizeTargetError(err.Error(), raw)
		if sqlitePath != "" {
			msg = strings.ReplaceAll(msg, sqlitePath, "<path>")
		}
		s.log.Info("target probe failed", "request_id", requestID(c), "category", res.ErrorCode, "err", msg)
	} else {
		res.OK, res.Tables = true, info.Tables
	}

	scheme, host := targetSchemeHost(raw, kind)
	outcome := audit.Success
	if !res.OK {
		outcome = audit.Failure
	}
	s.recordAudit(c, audit.Event{
		Actor: cl.Subject, Role: string(cl.Role),
		Action: "target.test", Resource: "target", Outcome: outcome,
		Detail: map[string]any{"scheme": scheme, "host": host, "ok": res.OK, "error_code": res.ErrorCode},
	})
	return c.JSON(http.StatusOK, res)
}

// classifyTarget tells a postgres URL from a sqlite file (a path or a
// file: URL, whose path it returns); another scheme is a 400.
func classifyTarget(raw string) (kind, sqlitePath string, err error) {
	lower := strings.ToLower(raw)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		if refused := checkTargetParams(raw); refused != nil {
			return "", "", refused
		}
		if _, perr := pgx.ParseConfig(raw); perr != nil {
			return "", "", badRequest("url is not a valid postgres URL")
		}
		return TargetKindPostgres, "", nil
	case strings.HasPrefix(lower, "file:"):
		u, perr := url.Parse(raw)
		if perr != nil {
			return "", "", badRequest("url is not a valid file: URL")
		}
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", "", badRequest("a file: URL must name a local file")
		}
		if p == "" {
			return "", "", badRequest("the file: URL names no file")
		}
		return TargetKindSQLite, p, nil
	case strings.Contains(raw, "://"):
		return "", "", badRequest("unsupported scheme: use postgres://, postgresql://, a sqlite file path or a file: URL")
	}
	return TargetKindSQLite, raw, nil
}

// probePostgres connects to raw, makes the session read-only and counts
// the tables and views of the non-system schemas.
func probePostgres(ctx context.Context, raw string) (golden.Info, error) {
	info := golden.Info{TableNames: []string{}}
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return info, errors.New("invalid postgres URL")
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return info, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SET default_transaction_read_only = on"); err != nil {
		return info, fmt.Errorf("make the session read-only: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT table_type, table_schema, table_name FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\_%'
		ORDER BY table_schema, table_name`)
	if err != nil {
		return info, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, schema, name string
		if err := rows.Scan(&typ, &schema, &name); err != nil {
			return info, fmt.Errorf("list tables: %w", err)
		}
		if typ == "VIEW" {
			info.Views++
			continue
		}
		info.Tables++
		if len(info.TableNames) < targetSample {
			if schema != "public" {
				name = schema + "." + name
			}
			info.TableNames = append(info.TableNames, name)
		}
	}
	if err := rows.Err(); err != nil {
		return info, fmt.Errorf("list tables: %w", err)
	}
	return info, nil
}

// probeSQLite opens the file at path read-only and inspects its schema; a
// missing file is an error, not a new database.
func probeSQLite(ctx context.Context, path string) (golden.Info, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return golden.Info{TableNames: []string{}}, errSQLiteMissing
		}
		return golden.Info{TableNames: []string{}}, fmt.Errorf("%w: %w", errSQLiteNoAccess, err)
	}
	db, err := golden.OpenReadOnly(ctx, path)
	if err != nil {
		return golden.Info{TableNames: []string{}}, fmt.Errorf("%w: %w", errSQLiteNotADB, err)
	}
	defer db.Close()
	info, err := golden.Inspect(ctx, db, targetSample)
	if err != nil && ctx.Err() == nil {
		return info, fmt.Errorf("%w: %w", errSQLiteNotADB, err)
	}
	return info, err
}

func isPostgresURL(raw string) bool {
	l := strings.ToLower(raw)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// describeTargetURL is raw without credentials or query:
// scheme://host:port/database.
func describeTargetURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable target URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// targetSchemeHost is what the audit keeps of a probed target.
func targetSchemeHost(raw, kind string) (scheme, host string) {
	if kind == TargetKindSQLite {
		return "file", ""
	}
	if u, err := url.Parse(raw); err == nil {
		return strings.ToLower(u.Scheme), u.Hostname()
	}
	return kind, ""
}

var (
	userKV     = regexp.MustCompile(`user=\S+`)
	userQuoted = regexp.MustCompile(`(?i)for user "[^"]*"`)
)

// sanitizeTargetError removes raw and every part of its credentials (the
// userinfo, the password in any escaping, a password= parameter, the user
// name where the driver quotes it) from msg.
func sanitizeTargetError(msg, raw string) string {
	secrets := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		if u.User != nil {
			secrets = append(secrets, u.User.String())
			if pw, ok := u.User.Password(); ok && pw != "" {
				secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
			}
		}
		if pw := u.Query().Get("password"); pw != "" {
			secrets = append(secrets, pw, url.QueryEscape(pw))
		}
	}
	if cfg, err := pgx.ParseConfig(raw); err == nil && cfg.Password != "" {
		secrets = append(secrets, cfg.Password)
	}
	for _, sec := range secrets {
		if sec != "" {
			msg = strings.ReplaceAll(msg, sec, "xxxxx")
		}
	}
	msg = userKV.ReplaceAllString(msg, "user=xxxxx")
	msg = userQuoted.ReplaceAllString(msg, `for user "xxxxx"`)
	if u, err := url.Parse(raw); err == nil && u.User != nil && u.User.Username() != "" {
		// The user name is part of the credentials too (role "…" does not exist).
		msg = strings.ReplaceAll(msg, `"`+u.User.Username()+`"`, `"xxxxx"`)
	}
	return msg
}
