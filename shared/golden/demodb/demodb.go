// Package demodb generates the demo Target DB shipped as the golden source
// (assets/databases/vanna_db.db): a small but coherent accounting data set
// for a fictional software company, covering 2023-01-01 to 2024-12-31.
//
// Tables: accounts (a bilingual English/Arabic chart of accounts), customers,
// vendors, products, invoices, invoice_lines, payments, bills (vendor bills)
// and journal_entries (double-entry postings, one row per debit or credit
// line, grouped by entry_number), plus dataset_info (key/value metadata such
// as as_of_date). Views: v_invoice_balances, v_monthly_revenue and
// v_account_balances. Every foreign key is declared and checked.
//
// Output is deterministic: the same seed, Go toolchain and modernc.org/sqlite
// version produce a byte-identical file. Randomness comes only from a
// math/rand/v2 PCG source seeded with the seed, dates from fixed base dates,
// never from the clock. Statuses ("overdue", "open") are computed as of
// AsOfDate, stored in dataset_info, so answers do not drift over time.
package demodb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/insightops/insightops/shared/golden"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Fixed parameters of the data set.
const (
	// DefaultSeed is the seed the shipped vanna_db.db is generated with.
	DefaultSeed int64 = 42
	// PeriodStart is the first day covered by the data.
	PeriodStart = "2023-01-01"
	// AsOfDate is the day the data set is "as of": statuses and the
	// days_overdue of v_invoice_balances are computed relative to it.
	AsOfDate = "2024-12-31"
	// Currency of every amount.
	Currency = "USD"
	// VATRatePercent is the VAT charged on every invoice.
	VATRatePercent = 5
	// CompanyName is the fictional company whose books these are.
	CompanyName = "Sahara Insight Analytics FZ-LLC"

	numCustomers  = 120
	numInvoices   = 560
	numAdHocBills = 110
	dateLayout    = "2006-01-02"
)

// TableCount is the number of rows of one table.
type TableCount struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// Summary describes a generated database.
type Summary struct {
	// Path is where the database was written.
	Path string `json:"path"`
	// Seed is the seed it was generated with.
	Seed int64 `json:"seed"`
	// Tables lists every table with its row count, sorted by name.
	Tables []TableCount `json:"tables"`
	// TotalRows is the sum of the row counts.
	TotalRows int64 `json:"total_rows"`
	// Views lists the view names, sorted.
	Views []string `json:"views"`
	// Indexes is the number of explicitly created indexes.
	Indexes int `json:"indexes"`
	// Bytes is the file size.
	Bytes int64 `json:"bytes"`
	// SHA256 is the hex SHA-256 of the file.
	SHA256 string `json:"sha256"`
}

// Generate writes a fresh demo database to path (replacing any file there)
// from seed. The database is built in a temporary file in path's directory,
// checked (PRAGMA foreign_key_check, integrity_check), VACUUMed, fsynced and
// atomically renamed into place, in journal_mode DELETE so no -wal file is
// left. Parent directories are created as needed.
func Generate(ctx context.Context, path string, seed int64) (Summary, error) {
	sum := Summary{Path: path, Seed: seed}
	if path == "" {
		return sum, errors.New("generate demo db: empty path")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return sum, fmt.Errorf("generate demo db: create directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return sum, fmt.Errorf("generate demo db: create temp file: %w", err)
	}
	tmpName := tmp.Name()
	if err := tmp.Close(); err != nil {
		return sum, fmt.Errorf("generate demo db: close temp file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			for _, s := range []string{"", "-journal", "-wal", "-shm"} {
				_ = os.Remove(tmpName + s)
			}
		}
	}()

	ds := build(seed)
	if err := write(ctx, tmpName, ds, &sum); err != nil {
		return sum, fmt.Errorf("generate demo db: %w", err)
	}
	if err := fsyncFile(tmpName); err != nil {
		return sum, fmt.Errorf("generate demo db: fsync: %w", err)
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return sum, fmt.Errorf("generate demo db: chmod: %w", err)
	}
	for _, s := range []string{"-journal", "-wal", "-shm"} {
		if _, err := os.Stat(tmpName + s); err == nil {
			return sum, fmt.Errorf("generate demo db: unexpected %s file left by SQLite", s)
		}
	}
	if err := os.Rename(tmpName, path); err != nil {
		return sum, fmt.Errorf("generate demo db: rename into place: %w", err)
	}
	done = true
	if err := fsyncFile(dir); err != nil {
		return sum, fmt.Errorf("generate demo db: fsync directory: %w", err)
	}
	sha, n, err := golden.HashFile(ctx, path)
	if err != nil {
		return sum, fmt.Errorf("generate demo db: %w", err)
	}
	sum.SHA256, sum.Bytes = sha, n
	return sum, nil
}

func fsyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ---------------------------------------------------------------------------
// In-memory data set.

type customer struct {
	id          int
	name, email string
	industry    string
	segment     string
	place       place
	creditCents int64
	terms       int
	createdAt   time.Time
	tier        int // 0 good payer, 1 average, 2 slow
	weight      float64
}

type vendor struct {
	id int
	vendorSpec
}

type invoice struct {
	id         int
	number     string
	customer   *customer
	issue, due time.Time
	status     string
	subtotal   int64
	tax        int64
	total      int64
	lines      []invoiceLine
	paid       int64
}

type invoiceLine struct {
	product  *product
	qty      int64
	total    int64
	costEach int64
}

type payment struct {
	id      int
	number  string
	invoice *invoice
	date    time.Time
	amount  int64
	method  string
}

type bill struct {
	id          int
	number      string
	vendor      *vendor
	account     string
	date, due   time.Time
	amount      int64
	status      string
	paid        time.Time // zero when unpaid
	description string
}

type posting struct {
	account       string
	debit, credit int64
}

type entry struct {
	date     time.Time
	order    int
	desc     string
	srcType  string
	srcID    int // 0 = NULL
	postings []posting
}

type dataset struct {
	seed      int64
	accounts  []account
	accByCode map[string]int
	customers []*customer
	vendors   []*vendor
	products  []*product
	invoices  []*invoice
	payments  []*payment
	bills     []*bill
	entries   []*entry
}

var (
	periodStart = mustDate(PeriodStart)
	asOf        = mustDate(AsOfDate)
)

func mustDate(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func day(t time.Time) string { return t.Format(dateLayout) }

// money converts cents to the REAL stored in the database.
func money(c int64) float64 { return float64(c) / 100 }

// pct returns c*p/100 rounded half up (c >= 0).
func pct(c, p int64) int64 { return (c*p + 50) / 100 }

// gen wraps the seeded source with the helpers the generator needs.
type gen struct{ r *rand.Rand }

func (g gen) intn(n int) int { return g.r.IntN(n) }

// between returns an integer in [lo, hi].
func (g gen) between(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + g.r.Int64N(hi-lo+1)
}

func (g gen) chance(p float64) bool { return g.r.Float64() < p }

// pick returns an index drawn with the given weights.
func (g gen) pick(weights []float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := g.r.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// weekday moves a Saturday/Sunday to the next Monday.
func weekday(t time.Time) time.Time {
	switch t.Weekday() {
	case time.Saturday:
		return t.AddDate(0, 0, 2)
	case time.Sunday:
		return t.AddDate(0, 0, 1)
	}
	return t
}

func monthEnd(year int, month time.Month) time.Time {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC)
}

func build(seed int64) *dataset {
	// A seeded generator: the demo database must be reproducible, not secret.
	g := gen{rand.New(rand.NewPCG(uint64(seed), 0x1b5d_a7e0_c0ff_ee42))} //nolint:gosec // see above
	ds := &dataset{seed: seed, accByCode: map[string]int{}}

	for i, a := range chartOfAccounts {
		a.id = i + 1
		ds.accounts = append(ds.accounts, a)
		ds.accByCode[a.code] = a.id
	}
	for i := range catalogue {
		p := catalogue[i] // copy: the package-level catalogue stays pristine
		p.id = i + 1
		econ := categoryEconomics[p.category]
		p.revenueAcc = econ.revenueAcc
		p.costCents = pct(p.priceCents, g.between(int64(econ.costMin), int64(econ.costMax)))
		ds.products = append(ds.products, &p)
	}
	for i, s := range vendorSpecs {
		ds.vendors = append(ds.vendors, &vendor{id: i + 1, vendorSpec: s})
	}
	buildCustomers(g, ds)
	buildInvoices(g, ds)
	buildPayments(g, ds)
	buildBills(g, ds)
	buildEntries(g, ds)
	return ds
}

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func buildCustomers(g gen, ds *dataset) {
	seen := map[string]bool{}
	termsBySegment := map[string][]int{
		"SMB":        {15, 30, 30, 30},
		"Mid-Market": {30, 30, 45, 60},
		"Enterprise": {30, 45, 60, 60},
	}
	for len(ds.customers) < numCustomers {
		ind := industries[g.intn(len(industries))]
		name := namePrefixes[g.intn(len(namePrefixes))] + " " + ind.suffixes[g.intn(len(ind.suffixes))]
		if seen[name] {
			continue
		}
		seen[name] = true
		c := &customer{id: len(ds.customers) + 1, name: name, industry: ind.name}
		c.email = "accounts@" + slug(name) + ".example.com"
		switch g.pick([]float64{55, 30, 15}) {
		case 0:
			c.segment, c.creditCents, c.weight = "SMB", g.between(20, 80)*100000, 1
		case 1:
			c.segment, c.creditCents, c.weight = "Mid-Market", g.between(80, 250)*100000, 2.2
		default:
			c.segment, c.creditCents, c.weight = "Enterprise", g.between(250, 900)*100000, 4
		}
		c.place = places[g.pick(placeWeights)]
		terms := termsBySegment[c.segment]
		c.terms = terms[g.intn(len(terms))]
		c.tier = g.pick([]float64{60, 30, 10})
		if g.chance(0.7) {
			c.createdAt = time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, g.intn(365))
		} else {
			c.createdAt = periodStart.AddDate(0, 0, g.intn(640))
		}
		c.weight *= 0.5 + g.r.Float64()
		ds.customers = append(ds.customers, c)
	}
}

func buildInvoices(g gen, ds *dataset) {
	span := int(asOf.Sub(periodStart).Hours()/24) + 1
	weights := make([]float64, len(ds.customers))
	for i, c := range ds.customers {
		weights[i] = c.weight
	}
	for range numInvoices {
		// Density grows over the period: a uniform part plus a ramp.
		u := g.r.Float64()
		if g.chance(0.6) {
			u = math.Sqrt(u)
		}
		issue := weekday(periodStart.AddDate(0, 0, int(u*float64(span-1))))
		if issue.After(asOf) { // cannot happen while AsOfDate is a weekday
			issue = asOf
		}
		var c *customer
		for try := 0; try < 100 && c == nil; try++ {
			cand := ds.customers[g.pick(weights)]
			if !cand.createdAt.After(issue) {
				c = cand
			}
		}
		if c == nil {
			for _, cand := range ds.customers {
				if !cand.createdAt.After(issue) {
					c = cand
					break
				}
			}
		}
		inv := &invoice{customer: c, issue: issue, due: issue.AddDate(0, 0, c.terms)}
		nLines := 1 + g.intn(3)
		if c.segment == "Enterprise" {
			nLines++
		}
		used := map[int]bool{}
		for len(inv.lines) < nLines {
			p := ds.products[g.intn(len(ds.products))]
			if used[p.id] {
				continue
			}
			used[p.id] = true
			maxQ := int64(p.maxQty)
			switch c.segment {
			case "SMB":
				maxQ = max(1, maxQ/3)
			case "Mid-Market":
				maxQ = max(1, maxQ*2/3)
			}
			qty := g.between(1, maxQ)
			inv.lines = append(inv.lines, invoiceLine{product: p, qty: qty, total: qty * p.priceCents, costEach: p.costCents})
			inv.subtotal += qty * p.priceCents
		}
		inv.tax = pct(inv.subtotal, VATRatePercent)
		inv.total = inv.subtotal + inv.tax
		if g.chance(0.02) {
			inv.status = "void"
		}
		ds.invoices = append(ds.invoices, inv)
	}
	sort.SliceStable(ds.invoices, func(i, j int) bool { return ds.invoices[i].issue.Before(ds.invoices[j].issue) })
	perYear := map[int]int{}
	for i, inv := range ds.invoices {
		inv.id = i + 1
		perYear[inv.issue.Year()]++
		inv.number = fmt.Sprintf("INV-%d-%04d", inv.issue.Year(), perYear[inv.issue.Year()])
	}
}

func buildPayments(g gen, ds *dataset) {
	methods := []string{"bank_transfer", "card", "check", "cash"}
	methodWeights := []float64{60, 20, 15, 5}
	delays := [3][2]int64{{-8, 10}, {-2, 35}, {10, 95}}
	payProb := [3]float64{0.97, 0.9, 0.72}
	for _, inv := range ds.invoices {
		if inv.status == "void" {
			continue
		}
		c := inv.customer
		var parts []int64 // cents of each instalment
		switch {
		case !g.chance(payProb[c.tier]):
			// never paid
		case g.chance(0.06):
			parts = []int64{pct(inv.total, g.between(30, 70))} // partial only
		case g.chance(0.12):
			first := pct(inv.total, 50)
			parts = []int64{first, inv.total - first}
		default:
			parts = []int64{inv.total}
		}
		d := delays[c.tier]
		date := inv.due.AddDate(0, 0, int(g.between(d[0], d[1])))
		method := methods[g.pick(methodWeights)]
		for k, amt := range parts {
			if k > 0 {
				date = date.AddDate(0, 0, int(g.between(20, 45)))
			}
			if date.Before(inv.issue) {
				date = inv.issue.AddDate(0, 0, 1)
			}
			if date.After(asOf) {
				break // not received yet
			}
			p := &payment{id: len(ds.payments) + 1, invoice: inv, date: date, amount: amt, method: method}
			ds.payments = append(ds.payments, p)
			inv.paid += amt
		}
	}
	sort.SliceStable(ds.payments, func(i, j int) bool { return ds.payments[i].date.Before(ds.payments[j].date) })
	for i, p := range ds.payments {
		p.id = i + 1
		p.number = fmt.Sprintf("PMT-%06d", p.id)
	}
	for _, inv := range ds.invoices {
		switch {
		case inv.status == "void":
		case inv.paid == inv.total:
			inv.status = "paid"
		case inv.paid > 0:
			inv.status = "partially_paid"
		case inv.due.Before(asOf):
			inv.status = "overdue"
		default:
			inv.status = "open"
		}
	}
}

func buildBills(g gen, ds *dataset) {
	var adHoc, hardware []*vendor
	add := func(v *vendor, date time.Time, amount int64, desc string) {
		ds.bills = append(ds.bills, &bill{vendor: v, account: v.account, date: date,
			due: date.AddDate(0, 0, v.terms), amount: amount, description: desc})
	}
	for _, v := range ds.vendors {
		switch {
		case v.category == "Hardware Supplier":
			hardware = append(hardware, v)
		case v.perYear == 0:
			adHoc = append(adHoc, v)
		}
	}
	// Recurring bills.
	for m := range 24 {
		first := periodStart.AddDate(0, m, 0)
		for _, v := range ds.vendors {
			if v.perYear == 12 || (v.perYear == 1 && first.Month() == time.January) {
				date := weekday(first.AddDate(0, 0, (v.id*3)%20))
				add(v, date, g.between(v.minC, v.maxC), fmt.Sprintf("%s - %s", v.description, first.Format("2006-01")))
			}
		}
	}
	// Stock purchases follow the hardware cost of what was sold that month.
	cogs := monthlyHardwareCost(ds)
	for m := range 24 {
		first := periodStart.AddDate(0, m, 0)
		need := cogs[first.Format("2006-01")]
		need = need*g.between(100, 125)/100 + g.between(5000, 20000)*100
		n := 1 + g.intn(2)
		for range n {
			v := hardware[g.intn(len(hardware))]
			date := weekday(first.AddDate(0, 0, g.intn(25)))
			add(v, date, need/int64(n), fmt.Sprintf("%s - %s", v.description, first.Format("2006-01")))
		}
	}
	// Ad-hoc bills.
	span := int(asOf.Sub(periodStart).Hours() / 24)
	for range numAdHocBills {
		v := adHoc[g.intn(len(adHoc))]
		date := weekday(periodStart.AddDate(0, 0, g.intn(span-3)))
		add(v, date, g.between(v.minC, v.maxC), v.description)
	}
	sort.SliceStable(ds.bills, func(i, j int) bool { return ds.bills[i].date.Before(ds.bills[j].date) })
	for i, b := range ds.bills {
		b.id = i + 1
		b.number = fmt.Sprintf("BILL-%05d", b.id)
		if g.chance(0.94) {
			paid := b.due.AddDate(0, 0, int(g.between(-12, 9)))
			if paid.Before(b.date) {
				paid = b.date
			}
			if !paid.After(asOf) {
				b.paid = paid
			}
		}
		switch {
		case !b.paid.IsZero():
			b.status = "paid"
		case b.due.Before(asOf):
			b.status = "overdue"
		default:
			b.status = "open"
		}
	}
}

// monthlyHardwareCost sums the standard cost of hardware sold on non-void
// invoices, by issue month ("2006-01").
func monthlyHardwareCost(ds *dataset) map[string]int64 {
	out := map[string]int64{}
	for _, inv := range ds.invoices {
		if inv.status == "void" {
			continue
		}
		for _, l := range inv.lines {
			if l.product.category == "Hardware" {
				out[inv.issue.Format("2006-01")] += l.qty * l.costEach
			}
		}
	}
	return out
}

func buildEntries(g gen, ds *dataset) {
	var es []*entry
	push := func(e *entry) { e.order = len(es); es = append(es, e) }

	push(&entry{date: periodStart, desc: "Opening balance: share capital paid in", srcType: "opening",
		postings: []posting{{account: "1010", debit: 250000000}, {account: "3100", credit: 250000000}}})

	for _, inv := range ds.invoices {
		if inv.status == "void" {
			continue
		}
		byAcc := map[string]int64{}
		for _, l := range inv.lines {
			byAcc[l.product.revenueAcc] += l.total
		}
		accs := make([]string, 0, len(byAcc))
		for a := range byAcc {
			accs = append(accs, a)
		}
		sort.Strings(accs)
		ps := []posting{{account: "1100", debit: inv.total}}
		for _, a := range accs {
			ps = append(ps, posting{account: a, credit: byAcc[a]})
		}
		if inv.tax > 0 {
			ps = append(ps, posting{account: "2200", credit: inv.tax})
		}
		push(&entry{date: inv.issue, desc: fmt.Sprintf("Invoice %s - %s", inv.number, inv.customer.name),
			srcType: "invoice", srcID: inv.id, postings: ps})
	}
	for _, p := range ds.payments {
		push(&entry{date: p.date, desc: fmt.Sprintf("Payment %s for %s", p.number, p.invoice.number),
			srcType: "payment", srcID: p.id,
			postings: []posting{{account: "1010", debit: p.amount}, {account: "1100", credit: p.amount}}})
	}
	for _, b := range ds.bills {
		push(&entry{date: b.date, desc: fmt.Sprintf("Bill %s - %s", b.number, b.vendor.name),
			srcType: "bill", srcID: b.id,
			postings: []posting{{account: b.account, debit: b.amount}, {account: "2100", credit: b.amount}}})
		if !b.paid.IsZero() {
			push(&entry{date: b.paid, desc: fmt.Sprintf("Payment of bill %s - %s", b.number, b.vendor.name),
				srcType: "bill_payment", srcID: b.id,
				postings: []posting{{account: "2100", debit: b.amount}, {account: "1010", credit: b.amount}}})
		}
	}
	cogs := monthlyHardwareCost(ds)
	payroll := int64(12500000)
	for m := range 24 {
		first := periodStart.AddDate(0, m, 0)
		end := monthEnd(first.Year(), first.Month())
		if m > 0 && m%6 == 0 {
			payroll = payroll * g.between(104, 109) / 100 // hiring rounds
		}
		amt := payroll + g.between(-300000, 600000)
		push(&entry{date: end, desc: "Payroll " + first.Format("2006-01"), srcType: "payroll",
			postings: []posting{{account: "6300", debit: amt}, {account: "1010", credit: amt}}})
		if c := cogs[first.Format("2006-01")]; c > 0 {
			push(&entry{date: end, desc: "Cost of hardware sold " + first.Format("2006-01"), srcType: "cogs",
				postings: []posting{{account: "5100", debit: c}, {account: "1200", credit: c}}})
		}
	}
	sort.SliceStable(es, func(i, j int) bool {
		if !es[i].date.Equal(es[j].date) {
			return es[i].date.Before(es[j].date)
		}
		return es[i].order < es[j].order
	})
	ds.entries = es
}

// ---------------------------------------------------------------------------
// Writing.

func write(ctx context.Context, path string, ds *dataset, sum *Summary) (err error) {
	db, err := sql.Open("sqlite", "file:"+uriPath(path))
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	db.SetMaxOpenConns(1)
	for _, p := range []string{
		"PRAGMA page_size = 4096",
		"PRAGMA auto_vacuum = NONE",
		"PRAGMA journal_mode = DELETE",
		"PRAGMA synchronous = OFF", // the finished file is fsynced by Generate
		"PRAGMA foreign_keys = ON",
		"PRAGMA user_version = 1",
	} {
		if _, err := db.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for _, s := range schemaSQL {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	if err := insertAll(ctx, tx, ds); err != nil {
		return err
	}
	for _, s := range indexSQL {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create index: %w", err)
		}
	}
	for _, s := range viewSQL {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create view: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}

	if err := checkDB(ctx, db); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return summarize(ctx, db, sum)
}

// uriPath escapes the characters that are special in a SQLite URI filename.
func uriPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(p))
}

// inserter runs one prepared INSERT per table.
type inserter struct {
	ctx   context.Context
	tx    *sql.Tx
	table string
	stmt  *sql.Stmt
	err   error
}

func newInserter(ctx context.Context, tx *sql.Tx, table string, cols ...string) *inserter {
	ins := &inserter{ctx: ctx, tx: tx, table: table}
	q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ", "), //nolint:gosec // table and columns are the generator's constants
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))
	ins.stmt, ins.err = tx.PrepareContext(ctx, q)
	if ins.err != nil {
		ins.err = fmt.Errorf("prepare insert into %s: %w", table, ins.err)
	}
	return ins
}

func (ins *inserter) row(args ...any) {
	if ins.err != nil {
		return
	}
	if _, err := ins.stmt.ExecContext(ins.ctx, args...); err != nil {
		ins.err = fmt.Errorf("insert into %s: %w", ins.table, err)
	}
}

func (ins *inserter) close() error {
	if ins.stmt != nil {
		if err := ins.stmt.Close(); err != nil && ins.err == nil {
			ins.err = fmt.Errorf("close insert into %s: %w", ins.table, err)
		}
	}
	return ins.err
}

func nullDate(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return day(t)
}

func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

func insertAll(ctx context.Context, tx *sql.Tx, ds *dataset) error {
	acc := func(code string) int {
		id, ok := ds.accByCode[code]
		if !ok {
			panic("demodb: unknown account code " + code)
		}
		return id
	}

	ins := newInserter(ctx, tx, "dataset_info", "key", "value")
	for _, kv := range [][2]string{
		{"as_of_date", AsOfDate},
		{"company_name", CompanyName},
		{"currency", Currency},
		{"generator", "insightops demodb v1"},
		{"period_end", AsOfDate},
		{"period_start", PeriodStart},
		{"seed", fmt.Sprint(ds.seed)},
		{"vat_rate_percent", fmt.Sprint(VATRatePercent)},
	} {
		ins.row(kv[0], kv[1])
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "accounts", "account_id", "code", "name", "name_ar", "account_type", "parent_account_id", "is_active")
	for _, a := range ds.accounts {
		var parent any
		if a.parent != "" {
			parent = acc(a.parent)
		}
		ins.row(a.id, a.code, a.name, a.nameAr, a.typ, parent, 1)
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "customers", "customer_id", "name", "email", "industry", "segment", "country", "city",
		"credit_limit", "payment_terms_days", "created_at")
	for _, c := range ds.customers {
		ins.row(c.id, c.name, c.email, c.industry, c.segment, c.place.country, c.place.city,
			money(c.creditCents), c.terms, day(c.createdAt))
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "vendors", "vendor_id", "name", "category", "country", "city", "email",
		"payment_terms_days", "expense_account_id")
	for _, v := range ds.vendors {
		ins.row(v.id, v.name, v.category, v.place.country, v.place.city, "billing@"+slug(v.name)+".example.com",
			v.terms, acc(v.account))
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "products", "product_id", "sku", "name", "category", "unit_price", "unit_cost",
		"revenue_account_id", "is_active")
	for _, p := range ds.products {
		ins.row(p.id, p.sku, p.name, p.category, money(p.priceCents), money(p.costCents), acc(p.revenueAcc), 1)
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "invoices", "invoice_id", "invoice_number", "customer_id", "issue_date", "due_date",
		"status", "currency", "subtotal", "tax_amount", "total_amount")
	for _, inv := range ds.invoices {
		ins.row(inv.id, inv.number, inv.customer.id, day(inv.issue), day(inv.due), inv.status, Currency,
			money(inv.subtotal), money(inv.tax), money(inv.total))
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "invoice_lines", "line_id", "invoice_id", "line_number", "product_id", "description",
		"quantity", "unit_price", "unit_cost", "line_total")
	lineID := 0
	for _, inv := range ds.invoices {
		for k, l := range inv.lines {
			lineID++
			ins.row(lineID, inv.id, k+1, l.product.id, l.product.name, l.qty, money(l.product.priceCents),
				money(l.costEach), money(l.total))
		}
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "payments", "payment_id", "payment_number", "invoice_id", "customer_id",
		"payment_date", "amount", "method")
	for _, p := range ds.payments {
		ins.row(p.id, p.number, p.invoice.id, p.invoice.customer.id, day(p.date), money(p.amount), p.method)
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "bills", "bill_id", "bill_number", "vendor_id", "account_id", "bill_date", "due_date",
		"amount", "status", "paid_date", "description")
	for _, b := range ds.bills {
		ins.row(b.id, b.number, b.vendor.id, acc(b.account), day(b.date), day(b.due), money(b.amount), b.status,
			nullDate(b.paid), b.description)
	}
	if err := ins.close(); err != nil {
		return err
	}

	ins = newInserter(ctx, tx, "journal_entries", "entry_id", "entry_number", "entry_date", "account_id", "debit",
		"credit", "description", "source_type", "source_id")
	entryID := 0
	for i, e := range ds.entries {
		number := fmt.Sprintf("JE-%06d", i+1)
		for _, p := range e.postings {
			entryID++
			ins.row(entryID, number, day(e.date), acc(p.account), money(p.debit), money(p.credit), e.desc,
				e.srcType, nullInt(e.srcID))
		}
	}
	return ins.close()
}

// checkDB runs the integrity checks the shipped file must pass.
func checkDB(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	defer rows.Close() // on an early return; closed below before the next query
	var bad []string
	for rows.Next() {
		var table, parent string
		var rowid, fkid sql.NullInt64
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("foreign_key_check: %w", err)
		}
		if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s rowid %d -> %s", table, rowid.Int64, parent))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("foreign_key_check failed: %s", strings.Join(bad, "; "))
	}
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("integrity_check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity_check: %s", res)
	}
	var unbalanced int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (
		SELECT entry_number FROM journal_entries GROUP BY entry_number
		HAVING ROUND(SUM(debit), 2) <> ROUND(SUM(credit), 2))`).Scan(&unbalanced); err != nil {
		return fmt.Errorf("balance check: %w", err)
	}
	if unbalanced > 0 {
		return fmt.Errorf("balance check: %d unbalanced journal entries", unbalanced)
	}
	return nil
}

func summarize(ctx context.Context, db *sql.DB, sum *Summary) error {
	rows, err := db.QueryContext(ctx, `SELECT type, name FROM sqlite_schema
		WHERE type IN ('table', 'view', 'index') AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	defer rows.Close() // on an early return; closed below before the next query
	var tables []string
	for rows.Next() {
		var typ, name string
		if err := rows.Scan(&typ, &name); err != nil {
			return fmt.Errorf("read schema: %w", err)
		}
		switch typ {
		case "table":
			tables = append(tables, name)
		case "view":
			sum.Views = append(sum.Views, name)
		case "index":
			sum.Indexes++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	sum.Tables = sum.Tables[:0]
	sum.TotalRows = 0
	for _, t := range tables {
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+t+`"`).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", t, err)
		}
		sum.Tables = append(sum.Tables, TableCount{Name: t, Rows: n})
		sum.TotalRows += n
	}
	return nil
}
