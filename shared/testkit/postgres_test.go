package testkit

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresRefusalIsNotUnavailability: a server that answers and
// refuses (here a role that does not exist) is told from one that cannot
// be reached (a closed port): only the second may skip a test.
func TestPostgresRefusalIsNotUnavailability(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	base, err := url.Parse(PostgresBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, base.String())
	if err != nil {
		Unavailable(t, "PostgreSQL", err)
		return
	}
	_ = conn.Close(ctx)
	base.User = url.User("insightops_no_such_role_" + RandomSuffix())
	_, refused := pgx.Connect(ctx, base.String())
	closed := *base
	closed.Host = "127.0.0.1:1"
	_, unreachable := pgx.Connect(ctx, closed.String())
	if refused == nil || !serverRefused(refused) {
		t.Errorf("a missing role: %v, want the server's refusal", refused)
	}
	if unreachable == nil || serverRefused(unreachable) {
		t.Errorf("a closed port: %v, want a connection error, not a refusal", unreachable)
	}
}
