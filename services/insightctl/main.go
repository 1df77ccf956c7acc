// Command insightctl is the command line of insightops (see package cli).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/insightops/insightops/services/insightctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.StdIO())
	stop()
	os.Exit(code)
}
