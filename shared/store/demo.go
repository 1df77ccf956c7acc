package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DemoTransaction is a row of the demo accounting_transactions table.
// AmountCents is signed: positive is money in (revenue), negative money out
// (costs and expenses).
type DemoTransaction struct {
	ExternalRef string    // unique; the idempotency key of the row
	Date        time.Time // only the calendar date (in UTC) is stored
	Account     string    // e.g. "4000 Revenue"
	Description string
	AmountCents int64
	Currency    string // ISO 4217, e.g. "USD"
}

// SeedDemoTransactions inserts the rows in one transaction, skipping any
// whose ExternalRef is already stored, and returns how many rows it actually
// inserted (0 when run again with the same rows).
func (db *DB) SeedDemoTransactions(ctx context.Context, txns []DemoTransaction) (inserted int, err error) {
	for i, t := range txns {
		if t.ExternalRef == "" {
			return 0, fmt.Errorf("store: seed demo transactions: row #%d has no external ref", i+1)
		}
		if len(t.Currency) != 3 {
			return 0, fmt.Errorf("store: seed demo transactions: %s: currency %q is not a 3-letter code", t.ExternalRef, t.Currency)
		}
		if t.Account == "" || t.Date.IsZero() {
			return 0, fmt.Errorf("store: seed demo transactions: %s: account and date are required", t.ExternalRef)
		}
	}
	if len(txns) == 0 {
		return 0, nil
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, db.Rebind(
			`INSERT INTO accounting_transactions (external_ref, txn_date, account, description, amount_cents, currency, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (external_ref) DO NOTHING`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		now := db.timeArg(time.Now())
		for _, t := range txns {
			r, err := stmt.ExecContext(ctx, t.ExternalRef, t.Date.UTC().Format(time.DateOnly), t.Account,
				t.Description, t.AmountCents, t.Currency, now)
			if err != nil {
				return fmt.Errorf("%s: %w", t.ExternalRef, err)
			}
			n, err := r.RowsAffected()
			if err != nil {
				return fmt.Errorf("%s: %w", t.ExternalRef, err)
			}
			inserted += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: seed demo transactions: %w", err)
	}
	return inserted, nil
}

type demoAccount struct {
	name         string
	weight       int   // relative frequency
	min, max     int64 // amount range in cents, absolute
	sign         int64 // +1 money in, -1 money out
	monthlyFirst bool  // always booked on the 1st of a month (rent, salaries)
	counterparts []string
	verb         string
}

var demoAccounts = []demoAccount{
	{"4000 Revenue", 30, 50_000, 2_500_000, 1, false, demoCustomers, "Invoice paid by"},
	{"4100 Service Revenue", 12, 20_000, 900_000, 1, false, demoCustomers, "Consulting services for"},
	{"5000 Cost of Goods Sold", 18, 30_000, 1_200_000, -1, false, demoSuppliers, "Inventory purchase from"},
	{"6000 Salaries and Wages", 6, 1_800_000, 4_500_000, -1, true, []string{"payroll"}, "Monthly"},
	{"6100 Rent", 4, 450_000, 450_000, -1, true, []string{"Harbor Point Properties"}, "Office rent to"},
	{"6200 Utilities", 6, 15_000, 120_000, -1, false, []string{"City Power & Light", "Metro Water", "FiberNet ISP"}, "Utility bill from"},
	{"6300 Marketing", 7, 25_000, 600_000, -1, false, []string{"AdReach Media", "Brightline Agency", "Social Boost"}, "Campaign with"},
	{"6400 Software Subscriptions", 6, 2_000, 150_000, -1, false, []string{"CloudDocs", "DevHub", "CRM Online", "Ledgerly"}, "Subscription to"},
	{"6500 Travel and Entertainment", 6, 5_000, 350_000, -1, false, []string{"SkyAir", "Grand Hotel", "RideNow", "Bistro 21"}, "Expense at"},
	{"6600 Office Supplies", 5, 1_500, 80_000, -1, false, []string{"OfficeMax Depot", "PaperWorks", "Staples Direct"}, "Supplies from"},
}

var demoCustomers = []string{
	"Acme Corp", "Globex Ltd", "Initech", "Umbrella Retail", "Stark Industries",
	"Wayne Enterprises", "Hooli", "Vandelay Imports", "Soylent Foods", "Wonka Confections",
}

var demoSuppliers = []string{
	"Northwind Traders", "Contoso Supply", "Fabrikam Parts", "Tailspin Logistics", "Adventure Works",
}

// demoRNG is splitmix64: tiny, and its output for a seed never changes
// between Go releases (unlike math/rand's helpers, which may).
type demoRNG struct{ s uint64 }

func (r *demoRNG) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a value in [0, n) for n > 0.
func (r *demoRNG) intn(n int64) int64 { return int64(r.next() % uint64(n)) }

// DemoTransactions generates n deterministic, plausible demo transactions
// dated across 2025 in USD: revenue and service income (positive), cost of
// goods, salaries, rent, utilities, marketing, software, travel and office
// supplies (negative). The same seed always yields the same rows, and row i
// does not depend on n, so a longer list extends a shorter one. ExternalRef
// is "DEMO-2025-000001", "DEMO-2025-000002", … by position, not by seed:
// seeding again with another seed adds no duplicate rows.
func DemoTransactions(n int, seed int64) []DemoTransaction {
	if n <= 0 {
		return []DemoTransaction{}
	}
	total := 0
	for _, a := range demoAccounts {
		total += a.weight
	}
	r := &demoRNG{s: uint64(seed)}
	start := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	out := make([]DemoTransaction, 0, n)
	for i := range n {
		// A fixed number of draws per row keeps row i independent of n.
		pick, day, amount, who, inv := r.intn(int64(total)), r.intn(365), r.next(), r.next(), r.intn(90000)
		var a demoAccount
		for _, acc := range demoAccounts {
			if pick < int64(acc.weight) {
				a = acc
				break
			}
			pick -= int64(acc.weight)
		}
		date := start.AddDate(0, 0, int(day))
		if a.monthlyFirst {
			date = time.Date(2025, date.Month(), 1, 0, 0, 0, 0, time.UTC)
		}
		cents := a.min
		if a.max > a.min {
			cents += int64(amount % uint64(a.max-a.min+1))
		}
		counterpart := a.counterparts[who%uint64(len(a.counterparts))]
		desc := fmt.Sprintf("%s %s", a.verb, counterpart)
		switch a.name {
		case "4000 Revenue":
			desc = fmt.Sprintf("Invoice INV-%05d paid by %s", 10000+inv, counterpart)
		case "6000 Salaries and Wages":
			desc = fmt.Sprintf("Payroll %s 2025", date.Month())
		case "6100 Rent":
			desc = fmt.Sprintf("Office rent %s 2025 to %s", date.Month(), counterpart)
		}
		out = append(out, DemoTransaction{
			ExternalRef: fmt.Sprintf("DEMO-2025-%06d", i+1),
			Date:        date,
			Account:     a.name,
			Description: desc,
			AmountCents: a.sign * cents,
			Currency:    "USD",
		})
	}
	return out
}
