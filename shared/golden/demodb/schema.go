package demodb

// schemaSQL creates the tables, in dependency order. Money columns are REAL
// holding values rounded to cents; dates are ISO-8601 TEXT (YYYY-MM-DD).
var schemaSQL = []string{
	`CREATE TABLE dataset_info (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
)`,
	`CREATE TABLE accounts (
	account_id        INTEGER PRIMARY KEY,
	code              TEXT    NOT NULL UNIQUE,
	name              TEXT    NOT NULL,
	name_ar           TEXT    NOT NULL,
	account_type      TEXT    NOT NULL CHECK (account_type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
	parent_account_id INTEGER REFERENCES accounts (account_id),
	is_active         INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1))
)`,
	`CREATE TABLE customers (
	customer_id        INTEGER PRIMARY KEY,
	name               TEXT    NOT NULL UNIQUE,
	email              TEXT    NOT NULL,
	industry           TEXT    NOT NULL,
	segment            TEXT    NOT NULL CHECK (segment IN ('SMB', 'Mid-Market', 'Enterprise')),
	country            TEXT    NOT NULL,
	city               TEXT    NOT NULL,
	credit_limit       REAL    NOT NULL,
	payment_terms_days INTEGER NOT NULL,
	created_at         TEXT    NOT NULL
)`,
	`CREATE TABLE vendors (
	vendor_id          INTEGER PRIMARY KEY,
	name               TEXT    NOT NULL UNIQUE,
	category           TEXT    NOT NULL,
	country            TEXT    NOT NULL,
	city               TEXT    NOT NULL,
	email              TEXT    NOT NULL,
	payment_terms_days INTEGER NOT NULL,
	expense_account_id INTEGER NOT NULL REFERENCES accounts (account_id)
)`,
	`CREATE TABLE products (
	product_id         INTEGER PRIMARY KEY,
	sku                TEXT    NOT NULL UNIQUE,
	name               TEXT    NOT NULL,
	category           TEXT    NOT NULL CHECK (category IN ('Software', 'Services', 'Hardware', 'Training')),
	unit_price         REAL    NOT NULL,
	unit_cost          REAL    NOT NULL,
	revenue_account_id INTEGER NOT NULL REFERENCES accounts (account_id),
	is_active          INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1))
)`,
	`CREATE TABLE invoices (
	invoice_id     INTEGER PRIMARY KEY,
	invoice_number TEXT    NOT NULL UNIQUE,
	customer_id    INTEGER NOT NULL REFERENCES customers (customer_id),
	issue_date     TEXT    NOT NULL,
	due_date       TEXT    NOT NULL,
	status         TEXT    NOT NULL CHECK (status IN ('paid', 'partially_paid', 'open', 'overdue', 'void')),
	currency       TEXT    NOT NULL DEFAULT 'USD',
	subtotal       REAL    NOT NULL,
	tax_amount     REAL    NOT NULL,
	total_amount   REAL    NOT NULL,
	CHECK (due_date >= issue_date)
)`,
	`CREATE TABLE invoice_lines (
	line_id     INTEGER PRIMARY KEY,
	invoice_id  INTEGER NOT NULL REFERENCES invoices (invoice_id),
	line_number INTEGER NOT NULL,
	product_id  INTEGER NOT NULL REFERENCES products (product_id),
	description TEXT    NOT NULL,
	quantity    INTEGER NOT NULL CHECK (quantity > 0),
	unit_price  REAL    NOT NULL,
	unit_cost   REAL    NOT NULL,
	line_total  REAL    NOT NULL,
	UNIQUE (invoice_id, line_number)
)`,
	`CREATE TABLE payments (
	payment_id     INTEGER PRIMARY KEY,
	payment_number TEXT    NOT NULL UNIQUE,
	invoice_id     INTEGER NOT NULL REFERENCES invoices (invoice_id),
	customer_id    INTEGER NOT NULL REFERENCES customers (customer_id),
	payment_date   TEXT    NOT NULL,
	amount         REAL    NOT NULL CHECK (amount > 0),
	method         TEXT    NOT NULL CHECK (method IN ('bank_transfer', 'card', 'check', 'cash'))
)`,
	`CREATE TABLE bills (
	bill_id     INTEGER PRIMARY KEY,
	bill_number TEXT    NOT NULL UNIQUE,
	vendor_id   INTEGER NOT NULL REFERENCES vendors (vendor_id),
	account_id  INTEGER NOT NULL REFERENCES accounts (account_id),
	bill_date   TEXT    NOT NULL,
	due_date    TEXT    NOT NULL,
	amount      REAL    NOT NULL CHECK (amount > 0),
	status      TEXT    NOT NULL CHECK (status IN ('paid', 'open', 'overdue')),
	paid_date   TEXT,
	description TEXT    NOT NULL,
	CHECK ((status = 'paid') = (paid_date IS NOT NULL))
)`,
	`CREATE TABLE journal_entries (
	entry_id     INTEGER PRIMARY KEY,
	entry_number TEXT    NOT NULL,
	entry_date   TEXT    NOT NULL,
	account_id   INTEGER NOT NULL REFERENCES accounts (account_id),
	debit        REAL    NOT NULL DEFAULT 0,
	credit       REAL    NOT NULL DEFAULT 0,
	description  TEXT    NOT NULL,
	source_type  TEXT    NOT NULL CHECK (source_type IN ('opening', 'invoice', 'payment', 'bill', 'bill_payment', 'payroll', 'cogs')),
	source_id    INTEGER,
	CHECK (debit >= 0 AND credit >= 0 AND (debit = 0 OR credit = 0))
)`,
}

// indexSQL is run after the data is loaded.
var indexSQL = []string{
	`CREATE INDEX idx_invoices_customer ON invoices (customer_id)`,
	`CREATE INDEX idx_invoices_issue_date ON invoices (issue_date)`,
	`CREATE INDEX idx_invoices_status_due ON invoices (status, due_date)`,
	`CREATE INDEX idx_invoice_lines_invoice ON invoice_lines (invoice_id)`,
	`CREATE INDEX idx_invoice_lines_product ON invoice_lines (product_id)`,
	`CREATE INDEX idx_payments_invoice ON payments (invoice_id)`,
	`CREATE INDEX idx_payments_customer_date ON payments (customer_id, payment_date)`,
	`CREATE INDEX idx_bills_vendor ON bills (vendor_id)`,
	`CREATE INDEX idx_bills_status_due ON bills (status, due_date)`,
	`CREATE INDEX idx_journal_entries_account_date ON journal_entries (account_id, entry_date)`,
	`CREATE INDEX idx_journal_entries_number ON journal_entries (entry_number)`,
	`CREATE INDEX idx_journal_entries_source ON journal_entries (source_type, source_id)`,
}

// viewSQL holds the convenience views. Dates "as of" the data set come from
// dataset_info rather than date('now'), so answers do not drift over time.
var viewSQL = []string{
	`CREATE VIEW v_invoice_balances AS
SELECT i.invoice_id,
       i.invoice_number,
       i.customer_id,
       c.name AS customer_name,
       i.issue_date,
       i.due_date,
       i.status,
       i.total_amount,
       ROUND(COALESCE(p.paid, 0), 2) AS amount_paid,
       ROUND(i.total_amount - COALESCE(p.paid, 0), 2) AS balance_due,
       CASE
         WHEN i.status <> 'void'
          AND ROUND(i.total_amount - COALESCE(p.paid, 0), 2) > 0
          AND i.due_date < (SELECT value FROM dataset_info WHERE key = 'as_of_date')
         THEN CAST(julianday((SELECT value FROM dataset_info WHERE key = 'as_of_date')) - julianday(i.due_date) AS INTEGER)
         ELSE 0
       END AS days_overdue
FROM invoices AS i
JOIN customers AS c ON c.customer_id = i.customer_id
LEFT JOIN (SELECT invoice_id, SUM(amount) AS paid FROM payments GROUP BY invoice_id) AS p
       ON p.invoice_id = i.invoice_id`,
	`CREATE VIEW v_monthly_revenue AS
SELECT strftime('%Y-%m', i.issue_date) AS month,
       COUNT(DISTINCT i.invoice_id) AS invoice_count,
       ROUND(SUM(l.line_total), 2) AS revenue,
       ROUND(SUM(l.quantity * l.unit_cost), 2) AS cost_of_sales,
       ROUND(SUM(l.line_total) - SUM(l.quantity * l.unit_cost), 2) AS gross_margin
FROM invoices AS i
JOIN invoice_lines AS l ON l.invoice_id = i.invoice_id
WHERE i.status <> 'void'
GROUP BY strftime('%Y-%m', i.issue_date)`,
	`CREATE VIEW v_account_balances AS
SELECT a.account_id,
       a.code,
       a.name,
       a.name_ar,
       a.account_type,
       ROUND(COALESCE(SUM(j.debit), 0), 2) AS total_debit,
       ROUND(COALESCE(SUM(j.credit), 0), 2) AS total_credit,
       ROUND(CASE WHEN a.account_type IN ('asset', 'expense')
                  THEN COALESCE(SUM(j.debit), 0) - COALESCE(SUM(j.credit), 0)
                  ELSE COALESCE(SUM(j.credit), 0) - COALESCE(SUM(j.debit), 0)
             END, 2) AS balance
FROM accounts AS a
LEFT JOIN journal_entries AS j ON j.account_id = a.account_id
GROUP BY a.account_id`,
}
