package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/insightops/insightops/shared/client"
	"github.com/insightops/insightops/shared/jobspec"
)

// collections are the knowledge base's collections.
var collections = []string{"sql", "ddl", "documentation"}

func (e *env) kbCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kb",
		Short: "Train, list, search and clear the knowledge base (the vector store)",
		Example: `  insightctl kb train
  insightctl kb search "revenue by month" --limit 5`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(e.kbTrain(), e.kbList(), e.kbSearch(), e.kbClear())
	return cmd
}

func (e *env) kbTrain() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the knowledge base from the target DB and the assets (a chroma.train job) and wait",
		Example: `  insightctl kb train
  insightctl kb train --no-wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			acc, err := c.SubmitTrain(cmd.Context(), jobspec.ChromaTrainArgs{}, e.key)
			if err != nil {
				return err
			}
			return e.submitted(cmd.Context(), c, acc)
		},
	}
	e.jobFlags(cmd)
	return cmd
}

// kbFlags adds the page flags of kb list and kb search.
func kbFlags(cmd *cobra.Command, q *client.KBQuery) {
	cmd.Flags().StringVar(&q.Collection, "collection", "", "only this collection: sql, ddl, documentation")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "at most this many entries (1–500; default 50)")
	_ = cmd.RegisterFlagCompletionFunc("collection", cobra.FixedCompletions(collections, cobra.ShellCompDirectiveNoFileComp))
}

// printKB prints the collections and entries of a knowledge-base page.
func (e *env) printKB(kb client.KnowledgeBase) error {
	if e.output == OutputJSON {
		for _, en := range kb.Entries {
			if err := writeJSONLine(e.io.Out, en); err != nil {
				return err
			}
		}
		return nil
	}
	for _, col := range kb.Collections {
		fmt.Fprintf(e.io.Out, "collection %-14s %d entries\n", col.Name, col.Count)
	}
	fmt.Fprintln(e.io.Out)
	return emitTable(e, kb.Entries, []string{"COLLECTION", "DISTANCE", "ID", "CONTENT"}, func(en client.KBEntry) []string {
		d := "-"
		if en.Distance != nil {
			d = fmt.Sprintf("%.3f", *en.Distance)
		}
		content := en.Content
		if en.Question != nil {
			content = *en.Question
		}
		return []string{en.Collection, d, en.ID, oneLine(content, 80)}
	})
}

// oneLine is s on one line, cut to n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (e *env) kbList() *cobra.Command {
	var q client.KBQuery
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the collections and a page of entries",
		Example: `  insightctl kb list
  insightctl kb list --collection sql --limit 100 --offset 100 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			kb, err := c.KnowledgeBase(cmd.Context(), q)
			if err != nil {
				return err
			}
			return e.printKB(kb)
		},
	}
	kbFlags(cmd, &q)
	cmd.Flags().IntVar(&q.Offset, "offset", 0, "skip this many entries")
	return cmd
}

func (e *env) kbSearch() *cobra.Command {
	var q client.KBQuery
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Show the entries nearest to a question, with their distances",
		Example: `  insightctl kb search "total revenue per customer"
  insightctl kb search "invoices" --collection ddl --limit 3 --output json`,
		Args: oneArg("QUERY"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			q.Q = a[0]
			kb, err := c.KnowledgeBase(cmd.Context(), q)
			if err != nil {
				return err
			}
			return e.printKB(kb)
		},
	}
	kbFlags(cmd, &q)
	return cmd
}

func (e *env) kbClear() *cobra.Command {
	var args jobspec.ChromaClearArgs
	var yes bool
	cmd := &cobra.Command{
		Use:   "clear",
		Short: "Empty one collection or all three (admin; a chroma.clear job) and wait",
		Example: `  insightctl kb clear --collection sql --yes
  insightctl kb clear --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !yes {
				return usagef("clear deletes training data: add --yes to confirm")
			}
			if err := args.Validate(); err != nil {
				return usagef("%s", err.Error())
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			acc, err := c.SubmitClear(cmd.Context(), args, e.key)
			if err != nil {
				return err
			}
			return e.submitted(cmd.Context(), c, acc)
		},
	}
	cmd.Flags().StringVar(&args.CollectionName, "collection", "", "only this collection: sql, ddl, documentation (default: all three)")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm: the training data is deleted")
	_ = cmd.RegisterFlagCompletionFunc("collection", cobra.FixedCompletions(collections, cobra.ShellCompDirectiveNoFileComp))
	e.jobFlags(cmd)
	return cmd
}
