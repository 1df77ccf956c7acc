package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

func (e *env) healthCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Show the deployment's health: NATS, databases, Chroma, backups, live workers",
		Long: `Show the health of every dependency and the live worker replicas per kind.
Exits 0 when the status is ok or degraded, 1 when it is down.`,
		Example: `  insightctl health
  insightctl health --output json | jq .status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			rep, err := c.Health(cmd.Context())
			if err != nil && rep.Status == "" {
				return err
			}
			if perr := e.emit(rep, func(w io.Writer) {
				fmt.Fprintf(w, "status  %s\n", rep.Status)
				names := make([]string, 0, len(rep.Components))
				for n := range rep.Components {
					names = append(names, n)
				}
				slices.Sort(names)
				for _, n := range names {
					comp := rep.Components[n]
					fmt.Fprintf(w, "  %-10s %-9s %s\n", n, comp.Status, comp.Detail)
				}
				kinds := make([]string, 0, len(rep.Workers))
				for k := range rep.Workers {
					kinds = append(kinds, k)
				}
				slices.Sort(kinds)
				for _, k := range kinds {
					ids := make([]string, 0, len(rep.Workers[k]))
					for _, wk := range rep.Workers[k] {
						ids = append(ids, wk.ID)
					}
					fmt.Fprintf(w, "  worker %-7s %d live  %s\n", k, len(ids), strings.Join(ids, ", "))
				}
			}); perr != nil {
				return perr
			}
			return err
		},
	}
}
