// Command loadgen drives a running insightops API with the load of
// package loadtest: it logs in, keeps -c clients submitting backup prune
// dry runs and polling each to its final state for -d, prints the measured
// figures as JSON and exits 1 if any request or job failed or a submitted
// job did not complete.
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8000 -d 60s -c 8
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/insightops/insightops/services/insightops/loadtest"
	"github.com/insightops/insightops/shared/config"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8000", "API base URL")
	email := flag.String("email", "admin@example.com", "operator or admin e-mail")
	password := flag.String("password", "", "its password (default: $LOADGEN_PASSWORD, else the development admin password)")
	duration := flag.Duration("d", 60*time.Second, "how long to keep submitting")
	concurrency := flag.Int("c", 8, "clients, each with one job in flight")
	poll := flag.Duration("poll", 20*time.Millisecond, "pause between polls of one job")
	flag.Parse()
	if *password == "" {
		*password = os.Getenv("LOADGEN_PASSWORD")
	}
	if *password == "" {
		*password = config.DefaultAdminPassword
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *url, *email, *password, *duration, *concurrency, *poll); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, email, password string, d time.Duration, c int, poll time.Duration) error {
	client := &http.Client{Timeout: 30 * time.Second}
	token, err := loadtest.Login(ctx, client, url, email, password)
	if err != nil {
		return err
	}
	st, err := loadtest.Run(ctx, loadtest.Options{BaseURL: url, Token: token, Duration: d, Concurrency: c, PollInterval: poll})
	out, _ := json.MarshalIndent(st, "", "  ")
	fmt.Println(string(out))
	if err != nil {
		return err
	}
	if st.Errors > 0 || st.Completed != st.Submitted || st.Succeeded != st.Submitted {
		return fmt.Errorf("%d errors; %d submitted, %d completed, %d succeeded", st.Errors, st.Submitted, st.Completed, st.Succeeded)
	}
	return nil
}
