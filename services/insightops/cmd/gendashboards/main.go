// Command gendashboards writes insightops's Grafana dashboards (package
// dashboards) into deploy/monitoring/dashboards: `make dashboards`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/insightops/insightops/services/insightops/dashboards"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	files, err := dashboards.Files()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir := filepath.Join(*root, dashboards.Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", filepath.Join(dashboards.Dir, name))
	}
}
