package chromaworker

import (
	"context"
	"fmt"

	"github.com/insightops/insightops/shared/vectors"
)

// RetrievalQuestion is a natural-language question about the shipped demo
// database that names business terms — never a table's name — with the
// table or view whose DDL answers it.
type RetrievalQuestion struct {
	Question string
	Table    string
}

// RetrievalQuestions measure how well an embedder's vectors retrieve the
// right DDL for a business question (HitRate): TestRetrievalHitRate holds
// the local embedder to at least 80%, and chromabench prints the rate of
// every provider that can run.
var RetrievalQuestions = []RetrievalQuestion{
	{Question: "Which clients have the highest credit limit, and in which industry and segment are they?", Table: "customers"},
	{Question: "What was the gross margin and cost of sales each month?", Table: "v_monthly_revenue"},
	{Question: "How many days overdue is each outstanding balance due, and how much has been paid so far?", Table: "v_invoice_balances"},
	{Question: "Which supplier categories default to which expense ledger code?", Table: "vendors"},
	{Question: "Which SKUs sell above their standard unit cost?", Table: "products"},
	{Question: "Show the total debits and credits posted per entry number and source type", Table: "journal_entries"},
	{Question: "How much did clients pay by bank transfer, card, check or cash?", Table: "payments"},
	{Question: "What is the trial balance: signed balance with total debit and total credit by ledger code?", Table: "v_account_balances"},
	{Question: "Which supplier charges are still unpaid, and when were the others paid?", Table: "bills"},
	{Question: "What quantity was sold on each line and what was the line total?", Table: "invoice_lines"},
	{Question: "How much VAT (tax amount) was charged, and what was the subtotal before tax?", Table: "invoices"},
	{Question: "What is the Arabic name and parent heading of each ledger code?", Table: "accounts"},
	{Question: "What is the as-of date, currency and VAT rate recorded as key/value metadata?", Table: "dataset_info"},
	{Question: "Which settings of the data set are stored as key and value pairs?", Table: "dataset_info"},
	{Question: "How long are the credit terms in days for each supplier, and where are they based?", Table: "vendors"},
	{Question: "Which debit and credit lines came from payroll or cost of goods sold?", Table: "journal_entries"},
	{Question: "Which deals were voided or only partially paid?", Table: "invoices"},
	{Question: "Which deals have a due date long after their issue date?", Table: "invoices"},
	{Question: "Which catalogue items are in the Software, Services, Hardware or Training category and still active?", Table: "products"},
}

// RetrievalResult is one question's outcome.
type RetrievalResult struct {
	RetrievalQuestion
	// Hit: the table's (or view's) DDL, not an index's, is among the top k.
	Hit bool
	// Top lists the top k entries as table/object_type.
	Top []string
}

// HitRate asks the ddl collection each question for its k nearest
// entries and returns every outcome and the number of hits.
func HitRate(ctx context.Context, c *vectors.Client, questions []RetrievalQuestion, k int) ([]RetrievalResult, int, error) {
	out := make([]RetrievalResult, 0, len(questions))
	hits := 0
	for _, q := range questions {
		top, err := c.Query(ctx, vectors.CollectionDDL, q.Question, k)
		if err != nil {
			return nil, 0, fmt.Errorf("retrieval %q: %w", q.Question, err)
		}
		r := RetrievalResult{RetrievalQuestion: q}
		for _, e := range top {
			r.Top = append(r.Top, fmt.Sprintf("%v/%v", e.Metadata[vectors.MetaTable], e.Metadata["object_type"]))
			if e.Metadata[vectors.MetaTable] == q.Table && e.Metadata["object_type"] != ObjectIndex {
				r.Hit = true
			}
		}
		if r.Hit {
			hits++
		}
		out = append(out, r)
	}
	return out, hits, nil
}
