// Command gendemo generates the demo Target DB (the golden source shipped as
// assets/databases/vanna_db.db) with package demodb.
//
// Usage, from the shared module directory:
//
//	go run ./cmd/gendemo -out ../assets/databases/vanna_db.db [-seed 42] [-json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"text/tabwriter"

	"github.com/insightops/insightops/shared/golden/demodb"
)

func main() {
	out := flag.String("out", "", "path of the SQLite file to write (replaced if it exists)")
	seed := flag.Int64("seed", demodb.DefaultSeed, "random seed; the same seed gives the same file")
	asJSON := flag.Bool("json", false, "print the summary as JSON")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gendemo -out PATH [-seed N] [-json]")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	sum, err := demodb.Generate(ctx, *out, *seed)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendemo:", err)
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintln(os.Stderr, "gendemo:", err)
			os.Exit(1)
		}
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "table\trows\t\n")
	for _, t := range sum.Tables {
		fmt.Fprintf(tw, "%s\t%d\t\n", t.Name, t.Rows)
	}
	fmt.Fprintf(tw, "total\t%d\t\n", sum.TotalRows)
	_ = tw.Flush() // stdout, as the Fprintf lines above
	fmt.Printf("views:   %v\nindexes: %d\nfile:    %s\nseed:    %d\nbytes:   %d\nsha256:  %s\n",
		sum.Views, sum.Indexes, sum.Path, sum.Seed, sum.Bytes, sum.SHA256)
}
