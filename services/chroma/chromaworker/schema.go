package chromaworker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/insightops/insightops/shared/config"
	"github.com/insightops/insightops/shared/golden"
	"github.com/insightops/insightops/shared/jobs"
	"github.com/insightops/insightops/shared/store"
)

// Schema is what training reads from the target database.
type Schema struct {
	// Dialect is "sqlite" or "postgres".
	Dialect string
	// Database names the database in the documentation ("main" for SQLite,
	// as SQLite itself calls it; the database name on PostgreSQL).
	Database string
	// Source describes where the schema was read, without credentials.
	Source string
	// Objects are the tables, views and indexes, each with its DDL, in a
	// stable order (tables, then views, then indexes; by name).
	Objects []SchemaObject
	// Warnings are objects that could only be read in part.
	Warnings []string
}

// Object types.
const (
	ObjectTable = "table"
	ObjectView  = "view"
	ObjectIndex = "index"
)

// SchemaObject is one table, view or index of the target.
type SchemaObject struct {
	Type string
	// Name is the object's name (schema-qualified on PostgreSQL outside public).
	Name string
	// Table is the table an index is on (the object itself otherwise).
	Table string
	// DDL is its CREATE statement: verbatim from sqlite_master, rebuilt
	// from the catalogs on PostgreSQL.
	DDL string
	// Columns of a table or view, in order.
	Columns []Column
}

// Column is one column of a table or view.
type Column struct {
	Name    string
	Type    string
	NotNull bool
	Default string
	// PrimaryKey is its position in the primary key (0: not part of it).
	PrimaryKey int
	// References is "table(column)" when the column is a foreign key.
	References string
}

// Counts returns the number of tables, views and indexes.
func (s Schema) Counts() (tables, views, indexes int) {
	for _, o := range s.Objects {
		switch o.Type {
		case ObjectTable:
			tables++
		case ObjectView:
			views++
		case ObjectIndex:
			indexes++
		}
	}
	return
}

// ReadSchema reads the target database the configuration names:
// TARGET_DATABASE_URL when set (postgres:// or postgresql:// for
// PostgreSQL, otherwise a SQLite file path, optionally prefixed with
// sqlite://), else the runtime golden copy at TARGET_DB_PATH. The read runs
// in one read-only transaction, so it sees one consistent snapshot. A
// target that does not exist is a permanent error (run init first); one
// that cannot be reached right now is returned plainly (retried).
func ReadSchema(ctx context.Context, cfg config.Config) (Schema, error) {
	target := strings.TrimSpace(cfg.TargetDatabaseURL)
	if target == "" {
		return readSQLiteFile(ctx, cfg.TargetDBPath, "TARGET_DB_PATH")
	}
	if u, err := url.Parse(target); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return readPostgres(ctx, target)
	}
	path := strings.TrimPrefix(strings.TrimPrefix(target, "sqlite://"), "sqlite:")
	return readSQLiteFile(ctx, path, "TARGET_DATABASE_URL")
}

func readSQLiteFile(ctx context.Context, path, variable string) (Schema, error) {
	if path == "" {
		return Schema{}, jobs.Permanent(jobs.CodeNoTarget, fmt.Errorf("no target database: %s is empty", variable))
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return Schema{}, jobs.Permanent(jobs.CodeTargetMissing, fmt.Errorf("target database %s (%s) does not exist: run init first (POST /admin/db/init) or fix %s", path, variable, variable))
	}
	db, err := golden.OpenReadOnly(ctx, path)
	if err != nil {
		return Schema{}, jobs.Permanent(jobs.CodeTargetUnreadable, fmt.Errorf("open target database %s: %w", path, err))
	}
	defer db.Close()
	s, err := readSQLite(ctx, db)
	if err != nil {
		return Schema{}, fmt.Errorf("read schema of %s: %w", path, err)
	}
	s.Source = "sqlite " + path
	return s, nil
}

// readSQLite reads tables, views and indexes from sqlite_master, and each
// table's and view's columns and foreign keys from the pragmas.
func readSQLite(ctx context.Context, db *sql.DB) (Schema, error) {
	s := Schema{Dialect: "sqlite", Database: "main"}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s, err
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `
		SELECT type, name, tbl_name, sql FROM sqlite_master
		WHERE type IN ('table', 'view', 'index') AND sql IS NOT NULL AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
		ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'view' THEN 1 ELSE 2 END, name`)
	if err != nil {
		return s, fmt.Errorf("list sqlite_master: %w", err)
	}
	for rows.Next() {
		var o SchemaObject
		if err := rows.Scan(&o.Type, &o.Name, &o.Table, &o.DDL); err != nil {
			rows.Close() //nolint:sqlclosecheck // closed on this early return; the normal path closes it after the loop
			return s, fmt.Errorf("scan sqlite_master: %w", err)
		}
		s.Objects = append(s.Objects, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("list sqlite_master: %w", err)
	}
	byName := map[string]*SchemaObject{}
	for i := range s.Objects {
		if s.Objects[i].Type != ObjectIndex {
			byName[s.Objects[i].Name] = &s.Objects[i]
		}
	}
	// Foreign keys and columns of every table in one statement each (a
	// statement per table costs a prepare each: slow on thousands).
	refs := map[string]map[string]string{}
	fk, err := tx.QueryContext(ctx, `
		SELECT m.name, f."from", f."table", coalesce(f."to", '')
		FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
		ORDER BY m.name, f.id, f.seq`)
	if err != nil {
		return s, fmt.Errorf("foreign keys: %w", err)
	}
	for fk.Next() {
		var table, from, to, col string
		if err := fk.Scan(&table, &from, &to, &col); err != nil {
			fk.Close() //nolint:sqlclosecheck // closed on this early return; the normal path closes it after the loop
			return s, fmt.Errorf("foreign keys: %w", err)
		}
		if refs[table] == nil {
			refs[table] = map[string]string{}
		}
		if col == "" {
			refs[table][from] = to
		} else {
			refs[table][from] = to + "(" + col + ")"
		}
	}
	fk.Close()
	if err := fk.Err(); err != nil {
		return s, fmt.Errorf("foreign keys: %w", err)
	}
	cols, err := tx.QueryContext(ctx, `
		SELECT m.name, p.name, p.type, p."notnull", coalesce(p.dflt_value, ''), p.pk
		FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
		ORDER BY m.name, p.cid`)
	if err != nil {
		return s, fmt.Errorf("columns: %w", err)
	}
	for cols.Next() {
		var table string
		var c Column
		if err := cols.Scan(&table, &c.Name, &c.Type, &c.NotNull, &c.Default, &c.PrimaryKey); err != nil {
			cols.Close() //nolint:sqlclosecheck // closed on this early return; the normal path closes it after the loop
			return s, fmt.Errorf("columns: %w", err)
		}
		if o := byName[table]; o != nil {
			c.References = refs[table][c.Name]
			o.Columns = append(o.Columns, c)
		}
	}
	cols.Close()
	if err := cols.Err(); err != nil {
		return s, fmt.Errorf("columns: %w", err)
	}
	// Views one by one: a view over a dropped table cannot be described,
	// which must not stop training (its DDL is still stored).
	for i := range s.Objects {
		o := &s.Objects[i]
		if o.Type != ObjectView {
			continue
		}
		vcols, err := viewColumns(ctx, tx, o.Name)
		if err != nil {
			s.Warnings = append(s.Warnings, fmt.Sprintf("view %s: columns unknown (%v)", o.Name, err))
			continue
		}
		o.Columns = vcols
	}
	return s, nil
}

// readPostgres rebuilds the DDL of every table, view and index outside the
// system schemas from pg_catalog: columns with their exact types, NOT NULL
// and defaults, then primary key, unique, foreign key and check
// constraints. Names outside the public schema are schema-qualified;
// identifiers are quoted as PostgreSQL's quote_ident does.
func readPostgres(ctx context.Context, rawURL string) (Schema, error) {
	desc := describePostgres(rawURL)
	s := Schema{Dialect: "postgres", Source: "postgres " + desc}
	db, err := sql.Open("pgx", rawURL)
	if err != nil {
		return s, jobs.Permanent(jobs.CodeTargetURLInvalid, fmt.Errorf("TARGET_DATABASE_URL: %s", store.RedactPassword(err.Error(), rawURL)))
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return s, fmt.Errorf("connect to target %s: %s", desc, store.RedactPassword(err.Error(), rawURL))
	}
	defer func() { _ = tx.Rollback() }()
	if err := tx.QueryRowContext(ctx, `SELECT current_database()`).Scan(&s.Database); err != nil {
		return s, fmt.Errorf("target %s: %w", desc, err)
	}
	const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`
	qualified := `CASE WHEN n.nspname = 'public' THEN quote_ident(c.relname) ELSE quote_ident(n.nspname) || '.' || quote_ident(c.relname) END`

	// Relations: tables (r, p) and views (v, m).
	type rel struct {
		idx  int
		kind string
	}
	rels := map[string]rel{}
	rows, err := tx.QueryContext(ctx, `
		SELECT `+qualified+`, c.relkind::text,
		       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) ELSE '' END
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition AND `+userSchemas+`
		ORDER BY CASE WHEN c.relkind IN ('r', 'p') THEN 0 ELSE 1 END, 1`)
	if err != nil {
		return s, fmt.Errorf("list relations of %s: %w", desc, err)
	}
	var viewDefs []string
	for rows.Next() {
		var name, kind, def string
		if err := rows.Scan(&name, &kind, &def); err != nil {
			rows.Close() //nolint:sqlclosecheck // closed on this early return; the normal path closes it after the loop
			return s, fmt.Errorf("list relations of %s: %w", desc, err)
		}
		typ := ObjectTable
		if kind == "v" || kind == "m" {
			typ = ObjectView
		}
		rels[name] = rel{idx: len(s.Objects), kind: kind}
		s.Objects = append(s.Objects, SchemaObject{Type: typ, Name: name, Table: name})
		viewDefs = append(viewDefs, def)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("list relations of %s: %w", desc, err)
	}

	// Columns.
	rows, err = tx.QueryContext(ctx, `
		SELECT `+qualified+`, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       coalesce(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
		WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition AND `+userSchemas+`
		ORDER BY 1, a.attnum`)
	if err != nil {
		return s, fmt.Errorf("list columns of %s: %w", desc, err)
	}
	for rows.Next() {
		var rel string
		var c Column
		if err := rows.Scan(&rel, &c.Name, &c.Type, &c.NotNull, &c.Default); err != nil {
			rows.Close() //nolint:sqlclosecheck // closed on this early return; the normal path closes it after the loop
			return s, fmt.Errorf("list columns of %s: %w", desc, err)
		}
		if r, ok := rels[rel]; ok {
			s.Objects[r.idx].Columns = append(s.Objects[r.idx].Columns, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("list columns of %s: %w", desc, err)
	}

	// Constraints: primary key, unique, foreign key, check.
	constraints := map[string][]string{}
	rows, err = tx.QueryContext(ctx, `
		SELECT `+qualified+`, k.contype::text, pg_get_constraintdef(k.oid, true),
		       coalesce((SELECT array_to_string(array_agg(quote_ident(a.attname) ORDER BY u.ord), ',')
		                 FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
		                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum), ''),
		       coalesce(CASE WHEN k.contype = 'f' THEN
		           (SELECT CASE WHEN fn.nspname = 'public' THEN quote_ident(fc.relname) ELSE quote_ident(fn.nspname) || '.' || quote_ident(fc.relname) END
		                   || '(' || (SELECT array_to_string(array_agg(quote_ident(fa.attname) ORDER BY fu.ord), ',')
		                              FROM unnest(k.confkey) WITH ORDINALITY AS fu(attnum, ord)
		                              JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = fu.attnum) || ')'
		            FROM pg_class fc JOIN pg_namespace fn ON fn.oid = fc.relnamespace WHERE fc.oid = k.confrelid)
		       END, '')
		FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE k.contype IN ('p', 'u', 'f', 'c') AND `+userSchemas+`
		ORDER BY 1, CASE k.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'f' THEN 2 ELSE 3 END, k.conname`)
	if err != nil {
		return s, fmt.Errorf("list constraints of %s: %w", desc, err)
	}
	for rows.Next() {
		var rel, typ, def, cols, refs string
		if err := rows.Scan(&rel, &typ, &def, &cols, &refs); err != nil {
			rows.Close() //nolint:sqlclosecheck // closed on this early return; the normal path closes it after the loop
			return s, fmt.Errorf("list constraints of %s: %w", desc, err)
		}
		r, ok := rels[rel]
		if !ok {
			continue
		}
		constraints[rel] = append(constraints[rel], def)
		o := &s.Objects[r.idx]
		names := strings.Split(cols, ",")
		for pos, col := range names {
			for i := range o.Columns {
				if o.Columns[i].Name != col {
					continue
				}
				switch typ {
				case "p":
					o.Columns[i].PrimaryKey = pos + 1
				case "f":
					if len(names) == 1 {
						o.Columns[i].References = refs
					}
				}
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("list constraints of %s: %w", desc, err)
	}

	// Indexes that do not back a constraint.
	rows, err = tx.QueryContext(ctx, `
		SELECT CASE WHEN n.nspname = 'public' THEN quote_ident(i.relname) ELSE quote_ident(n.nspname) || '.' || quote_ident(i.relname) END,
		       `+qualified+`, pg_get_indexdef(x.indexrelid)
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE `+userSchemas+` AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
		ORDER BY 1`)
	if err != nil {
		return s, fmt.Errorf("list indexes of %s: %w", desc, err)
	}
	var indexes []SchemaObject
	for rows.Next() {
		var o SchemaObject
		if err := rows.Scan(&o.Name, &o.Table, &o.DDL); err != nil {
			rows.Close() //nolint:sqlclosecheck // closed on this early return; the normal path closes it after the loop
			return s, fmt.Errorf("list indexes of %s: %w", desc, err)
		}
		o.Type = ObjectIndex
		indexes = append(indexes, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("list indexes of %s: %w", desc, err)
	}

	for i := range s.Objects {
		o := &s.Objects[i]
		if o.Type == ObjectView {
			kw := "CREATE VIEW "
			if rels[o.Name].kind == "m" {
				kw = "CREATE MATERIALIZED VIEW "
			}
			o.DDL = kw + o.Name + " AS\n" + strings.TrimRight(strings.TrimSpace(viewDefs[i]), ";")
			continue
		}
		var b strings.Builder
		b.WriteString("CREATE TABLE " + o.Name + " (\n")
		var lines []string
		for _, c := range o.Columns {
			l := "    " + c.Name + " " + c.Type
			if c.NotNull {
				l += " NOT NULL"
			}
			if c.Default != "" {
				l += " DEFAULT " + c.Default
			}
			lines = append(lines, l)
		}
		for _, def := range constraints[o.Name] {
			lines = append(lines, "    "+def)
		}
		b.WriteString(strings.Join(lines, ",\n"))
		b.WriteString("\n)")
		o.DDL = b.String()
	}
	s.Objects = append(s.Objects, indexes...)
	return s, nil
}

// viewColumns reads the columns of a SQLite view.
func viewColumns(ctx context.Context, tx *sql.Tx, view string) ([]Column, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, type, "notnull", coalesce(dflt_value, ''), pk FROM pragma_table_info(?) ORDER BY cid`, view)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Name, &c.Type, &c.NotNull, &c.Default, &c.PrimaryKey); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// describePostgres returns host:port/database of a PostgreSQL URL.
func describePostgres(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(target URL)"
	}
	return u.Host + u.Path
}
