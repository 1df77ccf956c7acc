package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/insightops/insightops/shared/snapshot"
	"github.com/insightops/insightops/shared/store"
	"github.com/insightops/insightops/shared/testkit"
)

// TestCheckSystemRefusesObjectsTheSchemaLacks: a PostgreSQL System DB
// into which someone added a trigger function, a trigger, a view or a
// table of their own dumps fine, but CheckSystem (pg_restore --list, read
// before anything is restored) refuses the dump with ErrUnexpectedObjects
// naming the entry; the schema's own dump passes.
func TestCheckSystemRefusesObjectsTheSchemaLacks(t *testing.T) {
	t.Parallel()
	extras := map[string]struct{ sql, entry string }{
		"function and trigger": {`CREATE FUNCTION public.grant_admin() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.role := 'admin'; RETURN NEW; END $$;
			CREATE TRIGGER users_grant BEFORE INSERT ON public.users FOR EACH ROW EXECUTE FUNCTION public.grant_admin()`, "FUNCTION public grant_admin()"},
		"view":          {`CREATE VIEW public.admins AS SELECT email FROM public.users WHERE role = 'admin'`, "VIEW public admins"},
		"foreign table": {`CREATE TABLE public.stash (x text); INSERT INTO public.stash VALUES ('x')`, "TABLE public stash"},
		"other schema":  {`CREATE SCHEMA evil; CREATE TABLE evil.users (x int)`, "SCHEMA - evil"},
	}
	clean := openMigrated(t, testkit.Postgres(t), "")
	seed(t, clean, 5)
	if _, err := snapshot.CheckSystem(ctxT(t), snapshot.KindPgDump, bytes.NewReader(dumpOf(t, clean))); err != nil {
		t.Fatalf("the schema's own dump: %v", err)
	}
	for name, x := range extras {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db := openMigrated(t, testkit.Postgres(t), "")
			seed(t, db, 5)
			if _, err := db.SQL.ExecContext(ctx, x.sql); err != nil {
				t.Fatal(err)
			}
			_, err := snapshot.CheckSystem(ctx, snapshot.KindPgDump, bytes.NewReader(dumpOf(t, db)))
			if !errors.Is(err, snapshot.ErrUnexpectedObjects) || !strings.Contains(err.Error(), x.entry) {
				t.Fatalf("check = %v, want ErrUnexpectedObjects naming %q", err, x.entry)
			}
		})
	}
}

// TestScratchRestoreRunsAsACreateDBOnlyRole: a test restore refuses a
// superuser and a CREATEROLE role before it creates anything (so callers
// fall back on pg_restore --list) and runs as a CREATEDB-only role.
func TestScratchRestoreRunsAsACreateDBOnlyRole(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	db := openMigrated(t, testkit.Postgres(t), "")
	seed(t, db, 5)
	dump := dumpOf(t, db)

	limited := testkit.PostgresCreateDBRole(t)
	createRole := testkit.PostgresCreateDBRole(t)
	conn, err := pgx.Connect(ctx, testkit.PostgresBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	u, err := url.Parse(createRole)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{u.User.Username()}.Sanitize()+" CREATEROLE"); err != nil {
		t.Fatal(err)
	}
	for what, u := range map[string]string{"superuser": testkit.PostgresBaseURL(), "CREATEROLE": createRole} {
		_, err := snapshot.TestRestorePostgres(ctx, u, bytes.NewReader(dump))
		if !errors.Is(err, snapshot.ErrScratchUnavailable) || !errors.Is(err, snapshot.ErrScratchRole) {
			t.Errorf("test restore as a %s role = %v, want ErrScratchUnavailable and ErrScratchRole", what, err)
		}
	}
	rows, err := snapshot.TestRestorePostgres(ctx, limited, bytes.NewReader(dump))
	if err != nil || rows["users"] == 0 {
		t.Fatalf("test restore as a CREATEDB-only role: %v %v", rows, err)
	}
}

func dumpOf(t *testing.T, db *store.DB) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := snapshot.DumpSystem(ctxT(t), db, &out, nil); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
