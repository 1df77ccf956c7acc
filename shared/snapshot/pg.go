package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/insightops/insightops/shared/store"
)

// VersionError reports a PostgreSQL client tool whose major version is older
// than the server's; pg_dump refuses (or misbehaves) in that case.
type VersionError struct {
	Tool        string // "pg_dump"
	Path        string // the binary that was checked
	ToolMajor   int
	ServerMajor int
}

// Error reads like "pg_dump 14 is older than server 15: install
// postgresql-client-15".
func (e *VersionError) Error() string {
	return fmt.Sprintf("%s %d is older than server %d: install postgresql-client-%d",
		e.Tool, e.ToolMajor, e.ServerMajor, e.ServerMajor)
}

// pgTool is a located PostgreSQL client binary.
type pgTool struct {
	name    string // "pg_dump" or "pg_restore"
	path    string
	major   int
	version string // first line of --version, e.g. "pg_dump (PostgreSQL) 15.10"
}

var toolVersionRE = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)`)

// toolVersion runs "<path> --version" and parses its major version.
func toolVersion(ctx context.Context, name, path string) (pgTool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.WaitDelay = 5 * time.Second
	var stderr tailBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return pgTool{}, fmt.Errorf("%s --version: %w%s", path, err, stderr.suffix(nil))
	}
	line := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	m := toolVersionRE.FindStringSubmatch(line)
	if m == nil {
		return pgTool{}, fmt.Errorf("%s --version: cannot parse %q", path, line)
	}
	major, _ := strconv.Atoi(m[1])
	return pgTool{name: name, path: path, major: major, version: line}, nil
}

// findTool locates a PostgreSQL client binary: the explicit path when one is
// given, otherwise the newest of the one in PATH and those under
// /usr/lib/postgresql/*/bin (Debian/Ubuntu install several side by side;
// the newest one handles every older server and archive).
func findTool(ctx context.Context, name, explicit string) (pgTool, error) {
	if explicit != "" {
		path, err := exec.LookPath(explicit)
		if err != nil {
			return pgTool{}, fmt.Errorf("%s %q: %w", name, explicit, err)
		}
		return toolVersion(ctx, name, path)
	}
	var candidates []string
	if p, err := exec.LookPath(name); err == nil {
		candidates = append(candidates, p)
	}
	if more, err := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name)); err == nil { //nolint:gocritic // an absolute root, joined with the parts that vary
		candidates = append(candidates, more...)
	}
	var (
		best    pgTool
		lastErr error
	)
	for _, c := range candidates {
		t, err := toolVersion(ctx, name, c)
		if err != nil {
			lastErr = err
			continue
		}
		if t.major > best.major {
			best = t
		}
	}
	if best.path == "" {
		if lastErr != nil {
			return pgTool{}, lastErr
		}
		return pgTool{}, fmt.Errorf("%s not found in PATH or /usr/lib/postgresql/*/bin: install the PostgreSQL client tools (postgresql-client)", name)
	}
	return best, nil
}

// serverVersion returns the server's version string and major version.
func serverVersion(ctx context.Context, db *store.DB) (string, int, error) {
	var num, ver string
	if err := db.SQL.QueryRowContext(ctx, "SHOW server_version_num").Scan(&num); err != nil {
		return "", 0, fmt.Errorf("read server_version_num: %w", err)
	}
	if err := db.SQL.QueryRowContext(ctx, "SHOW server_version").Scan(&ver); err != nil {
		return "", 0, fmt.Errorf("read server_version: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil {
		return "", 0, fmt.Errorf("parse server_version_num %q: %w", num, err)
	}
	return ver, n / 10000, nil
}

// CheckPgDumpVersion locates pg_dump (see [WithPgDump]) and checks that its
// major version is not older than the PostgreSQL server's behind db. It
// returns pg_dump's version line and the server's version; the error is a
// *[VersionError] when pg_dump is too old. Workers can call it at start to
// fail early; [DumpSystem] calls it before every dump.
func CheckPgDumpVersion(ctx context.Context, db *store.DB, opts ...Option) (toolVersion, serverVer string, err error) {
	o := buildOptions(opts)
	t, sv, err := checkPgDump(ctx, db, o)
	if err != nil {
		return "", "", fmt.Errorf("snapshot: %w", err)
	}
	return t.version, sv, nil
}

func checkPgDump(ctx context.Context, db *store.DB, o options) (pgTool, string, error) {
	if db.Dialect() != store.Postgres {
		return pgTool{}, "", fmt.Errorf("%s is not PostgreSQL", db.Describe())
	}
	sv, smajor, err := serverVersion(ctx, db)
	if err != nil {
		return pgTool{}, "", fmt.Errorf("%s: %w", db.Describe(), err)
	}
	t, err := findTool(ctx, "pg_dump", o.pgDump)
	if err != nil {
		return pgTool{}, sv, fmt.Errorf("%w (the server is PostgreSQL %d: install postgresql-client-%d)", err, smajor, smajor)
	}
	if t.major < smajor {
		return t, sv, &VersionError{Tool: "pg_dump", Path: t.path, ToolMajor: t.major, ServerMajor: smajor}
	}
	return t, sv, nil
}

// pgConn is how a child process reaches a database: a libpq URI without the
// password, which travels in PGPASSWORD.
type pgConn struct {
	url      string
	password string
}

// libpqKeys are the connection settings passed on to libpq tools; pgx
// accepts others (runtime parameters, pgx options) that libpq would reject.
var libpqKeys = map[string]bool{
	"sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true, "sslcrl": true,
	"sslcrldir": true, "sslsni": true, "sslnegotiation": true, "sslcertmode": true,
	"sslcompression": true, "requiressl": true, "ssl_min_protocol_version": true,
	"ssl_max_protocol_version": true, "connect_timeout": true, "application_name": true,
	"options": true, "target_session_attrs": true, "gssencmode": true, "krbsrvname": true,
	"gsslib": true, "channel_binding": true, "require_auth": true, "keepalives": true,
	"keepalives_idle": true, "keepalives_interval": true, "keepalives_count": true,
	"tcp_user_timeout": true,
}

// pgConnFromConfig builds the child-process connection for cfg: host, port,
// user and database as pgx resolved them (environment and service file
// included), plus the libpq settings (TLS and the like) of the original
// connection string.
func pgConnFromConfig(cfg *pgx.ConnConfig) pgConn {
	q := url.Values{}
	for k, v := range connStringSettings(cfg.ConnString()) {
		if libpqKeys[k] {
			q.Set(k, v)
		}
	}
	q.Set("host", cfg.Host)
	q.Set("port", strconv.Itoa(int(cfg.Port)))
	if cfg.User != "" {
		q.Set("user", cfg.User)
	}
	u := url.URL{Scheme: "postgresql", Path: "/" + cfg.Database, RawQuery: q.Encode()}
	return pgConn{url: u.String(), password: cfg.Password}
}

// pgConnOf returns the connection settings of db's pool.
func pgConnOf(ctx context.Context, db *store.DB) (pgConn, error) {
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return pgConn{}, fmt.Errorf("%s: get connection: %w", db.Describe(), err)
	}
	defer conn.Close()
	var cfg *pgx.ConnConfig
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("driver connection is %T, not pgx", dc)
		}
		cfg = sc.Conn().Config()
		return nil
	})
	if err != nil {
		return pgConn{}, fmt.Errorf("%s: read connection settings: %w", db.Describe(), err)
	}
	return pgConnFromConfig(cfg), nil
}

// env returns the child's environment: this process's, with PGPASSWORD set
// to the connection's password when it has one.
func (c pgConn) env() []string {
	env := os.Environ()
	if c.password == "" {
		return env
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PGPASSWORD=") {
			out = append(out, kv)
		}
	}
	return append(out, "PGPASSWORD="+c.password)
}

// redact removes the password from s, in its plain and escaped forms.
func (c pgConn) redact(s string) string {
	return redactSecret(s, c.password)
}

func redactSecret(s, secret string) string {
	if secret == "" {
		return s
	}
	for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
		if form != "" {
			s = strings.ReplaceAll(s, form, "xxxxx")
		}
	}
	return s
}

// connStringSettings parses a PostgreSQL connection string, URL or
// keyword/value form, into its settings (first value of each).
func connStringSettings(cs string) map[string]string {
	out := map[string]string{}
	cs = strings.TrimSpace(cs)
	if strings.HasPrefix(cs, "postgres://") || strings.HasPrefix(cs, "postgresql://") {
		u, err := url.Parse(cs)
		if err != nil {
			return out
		}
		for k, v := range u.Query() {
			if len(v) > 0 {
				out[k] = v[0]
			}
		}
		return out
	}
	s := cs
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		eq := strings.IndexByte(s, '=')
		if s == "" || eq < 0 {
			return out
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t\r\n")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i := 1
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[min(i+1, len(s)):]
		} else {
			i := 0
			for ; i < len(s) && !strings.ContainsRune(" \t\r\n", rune(s[i])); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[i:]
		}
		out[key] = val.String()
	}
}

// proc describes one run of a client tool.
type proc struct {
	tool   pgTool
	args   []string
	env    []string
	stdin  io.Reader // nil: no input
	stdout io.Writer // nil: discarded
	redact func(string) string
}

// errRecorder remembers the first non-EOF error of the reader it wraps, so
// that a failing input can be told apart from a failing process.
type errRecorder struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
	}
	return n, err
}

func (e *errRecorder) failed() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// errWriter remembers the first error of the writer it wraps.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// run starts the tool, streams stdin into it and its stdout out of it, and
// waits. The process is killed when ctx is done, when reading the input
// fails (so that a half-read input can never be committed) or when writing
// its output fails. The error names the tool and carries its stderr, with
// the password redacted.
func (p proc) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.tool.path, p.args...)
	cmd.Env = p.env
	cmd.WaitDelay = 10 * time.Second
	var stderr tailBuffer
	cmd.Stderr = &stderr

	var (
		in        *errRecorder
		stdinPipe io.WriteCloser
		out       *errWriter
		stdoutPip io.ReadCloser
		err       error
	)
	if p.stdin != nil {
		in = &errRecorder{r: p.stdin}
		if stdinPipe, err = cmd.StdinPipe(); err != nil {
			return fmt.Errorf("%s: %w", p.tool.name, err)
		}
	}
	if p.stdout != nil {
		out = &errWriter{w: p.stdout}
		if stdoutPip, err = cmd.StdoutPipe(); err != nil {
			return fmt.Errorf("%s: %w", p.tool.name, err)
		}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (%s): %w", p.tool.name, p.tool.path, err)
	}
	inDone := make(chan struct{})
	if stdinPipe != nil {
		go func() {
			defer close(inDone)
			if _, err := io.Copy(stdinPipe, in); err != nil && in.failed() != nil {
				// Kill before closing stdin: the tool must never see a
				// clean end of input after a failed read.
				cancel()
			}
			_ = stdinPipe.Close()
		}()
	} else {
		close(inDone)
	}
	var copyErr error
	if stdoutPip != nil {
		if _, err := io.Copy(out, stdoutPip); err != nil {
			copyErr = err
			cancel() // the output is lost: stop the tool
		}
	}
	waitErr := cmd.Wait()
	select {
	case <-inDone:
	case <-time.After(cmd.WaitDelay):
		// The input reader is blocked in Read; the process is gone.
	}

	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%s: %w%s", p.tool.name, parent.Err(), stderr.suffix(p.redact))
	case in != nil && in.failed() != nil:
		return fmt.Errorf("read input of %s: %w", p.tool.name, in.failed())
	case out != nil && out.err != nil:
		return fmt.Errorf("write output of %s: %w", p.tool.name, out.err)
	case copyErr != nil:
		return fmt.Errorf("read output of %s: %w", p.tool.name, copyErr)
	case waitErr != nil:
		return fmt.Errorf("%s: %w%s", p.tool.name, waitErr, stderr.suffix(p.redact))
	}
	return nil
}

// tailBuffer keeps the first and the last few KiB written to it: enough of
// a tool's stderr for an error message, whatever its volume.
type tailBuffer struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped bool
}

const tailHalf = 4 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := tailHalf - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	if len(p) > 0 {
		b.tail = append(b.tail, p...)
		if len(b.tail) > tailHalf {
			b.tail = append(b.tail[:0:0], b.tail[len(b.tail)-tailHalf:]...)
			b.dropped = true
		}
	}
	return n, nil
}

// suffix returns ": <stderr>" (trimmed, redacted) or "" when empty.
func (b *tailBuffer) suffix(redact func(string) string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s bytes.Buffer
	s.Write(b.head)
	if b.dropped {
		s.WriteString("\n[…]\n")
	}
	s.Write(b.tail)
	text := strings.TrimSpace(s.String())
	if text == "" {
		return ""
	}
	if redact != nil {
		text = redact(text)
	}
	return ": " + text
}
