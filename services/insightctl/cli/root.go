// Package cli is insightctl, the command line of insightops for operators
// and scripts, on the typed API client shared/client: log in, back up,
// restore, download and import archives, follow jobs with a live progress
// bar, read the knowledge base, the audit trail and health, and manage
// users and service tokens. Run is the whole program; its exit codes are
// the table ExitCodes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/insightops/insightops/shared/client"
)

// IO is what Run reads and writes: the standard streams, the environment
// and where the saved login lives.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// Getenv reads the environment (INSIGHTOPS_URL, INSIGHTOPS_TOKEN,
	// NO_COLOR); nil reads nothing.
	Getenv func(string) string
	// ConfigDir holds the saved login; "" is os.UserConfigDir()/insightops.
	ConfigDir string
	// Terminal is true when Out is a terminal: progress bars and colour
	// are drawn only then.
	Terminal bool
	// InTerminal is true when In is a terminal: a password is then
	// prompted for without echo.
	InTerminal bool
}

// StdIO is the process's standard streams and environment.
func StdIO() IO {
	return IO{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv,
		Terminal:   term.IsTerminal(int(os.Stdout.Fd())),
		InTerminal: term.IsTerminal(int(os.Stdin.Fd())),
	}
}

// Output formats.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// env is one run's state: its IO, the global flags and the client.
type env struct {
	io     IO
	url    string
	output string
	noWait bool
	plain  bool
	// key is the Idempotency-Key of job submissions.
	key string
}

// exitCodeHelp is the exit-code table (ExitCodes) as help text.
func exitCodeHelp() string {
	var b strings.Builder
	for _, c := range ExitCodes {
		fmt.Fprintf(&b, "  %d  %-15s %s\n", c.Code, c.Name, c.Meaning)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Run runs insightctl with args (without the program name) and returns
// its exit code (ExitCodes).
func Run(ctx context.Context, args []string, streams IO) int {
	if streams.Getenv == nil {
		streams.Getenv = func(string) string { return "" }
	}
	if streams.In == nil {
		streams.In = strings.NewReader("")
	}
	e := &env{io: streams}
	root := e.rootCommand()
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if isCobraUsage(err) {
		code = ExitUsage
	}
	fmt.Fprintf(streams.Err, "insightctl: %s\n", describe(err))
	if code == ExitUsage && !errors.As(err, new(*client.Error)) {
		fmt.Fprintln(streams.Err, "Run 'insightctl --help' for usage.")
	}
	return code
}

// describe is the one line printed for a failure.
func describe(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		msg := fmt.Sprintf("%s (%d %s)", ae.Message, ae.Status, ae.Code)
		switch ae.Status {
		case 401:
			msg += "; log in again: insightctl login"
		case 403:
			if ae.Code == "password_change_required" {
				msg += "; change it: insightctl users password"
			}
		}
		return msg
	}
	return err.Error()
}

// isCobraUsage tells cobra's own command-line errors (unknown command or
// flag, wrong number of arguments) from the commands' errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "requires at most", "requires exactly", "required flag"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " "+p) {
			return true
		}
	}
	return false
}

func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "insightctl",
		Short: "Command line of insightops: backups, restores, jobs, knowledge base, audit, accounts",
		Long: `insightctl drives an insightops deployment through its HTTP API.

Log in once (the token is kept in your config directory, mode 0600), or set
INSIGHTOPS_URL and INSIGHTOPS_TOKEN (a login token or a service token iops_…)
for scripts. Commands that submit a job wait for it with a live progress bar
and exit non-zero when it fails; --no-wait prints the job id and returns.
--output json prints one JSON object per line.

Exit codes:
` + exitCodeHelp(),
		Example: `  insightctl login --url http://127.0.0.1:8000 --email admin@example.com
  insightctl backup create --note nightly
  insightctl backup list --output json | jq -r .filename
  INSIGHTOPS_TOKEN=iops_… insightctl backup create --no-wait`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%s", err.Error()) })
	pf := root.PersistentFlags()
	pf.StringVar(&e.url, "url", "", "API URL (default: $"+EnvURL+", the saved login's, else "+DefaultURL+")")
	pf.StringVar(&e.output, "output", OutputText, "output format: text or json (one JSON object per line)")
	pf.BoolVar(&e.plain, "no-progress", false, "no progress bar or colour even on a terminal")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if e.output != OutputText && e.output != OutputJSON {
			return usagef("--output %q: want text or json", e.output)
		}
		return nil
	}
	root.AddCommand(
		e.loginCommand(), e.whoamiCommand(), e.logoutCommand(),
		e.backupCommand(), e.jobsCommand(), e.kbCommand(), e.auditCommand(), e.healthCommand(),
		e.usersCommand(), e.tokensCommand(), e.completionCommand(),
	)
	return root
}

// jobFlags adds --no-wait and --idempotency-key to a job-submitting command.
func (e *env) jobFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&e.noWait, "no-wait", false, "print the job id and return instead of waiting for the job")
	cmd.Flags().StringVar(&e.key, "idempotency-key", "", "Idempotency-Key: a retried submission with the same key returns the first job")
}

// resolveURL is the API URL: --url, else $INSIGHTOPS_URL, else the saved
// login's, else DefaultURL.
func (e *env) resolveURL(saved credentials) string {
	switch {
	case e.url != "":
		return e.url
	case e.io.Getenv(EnvURL) != "":
		return e.io.Getenv(EnvURL)
	case saved.URL != "":
		return saved.URL
	}
	return DefaultURL
}

// client is a client with the token: $INSIGHTOPS_TOKEN, else the saved
// login's when it was made for the same URL (a saved token is never sent
// to another server). Without one it is errNotLoggedIn.
func (e *env) client() (*client.Client, error) {
	saved, err := e.loadCredentials()
	if err != nil {
		return nil, err
	}
	u := e.resolveURL(saved)
	tok := e.io.Getenv(EnvToken)
	if tok == "" && saved.Token != "" && sameURL(saved.URL, u) {
		tok = saved.Token
	}
	if tok == "" {
		return nil, errNotLoggedIn
	}
	return e.newClient(u, tok)
}

func (e *env) newClient(u, token string) (*client.Client, error) {
	c, err := client.New(u, client.WithToken(token), client.WithUserAgent("insightctl"))
	if err != nil {
		return nil, usagef("%s", err.Error())
	}
	return c, nil
}

func sameURL(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }

// live tells whether bars and colour are drawn: text output on a terminal.
func (e *env) live() bool {
	return e.io.Terminal && !e.plain && e.output == OutputText
}

// colour tells whether text may be coloured (a live terminal, NO_COLOR unset).
func (e *env) colour() bool { return e.live() && e.io.Getenv("NO_COLOR") == "" }
