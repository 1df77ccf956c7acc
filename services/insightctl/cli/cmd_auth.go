package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/insightops/insightops/shared/client"
)

func (e *env) loginCommand() *cobra.Command {
	var email, token string
	var passwordStdin, tokenStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in and keep the token in your config directory (mode 0600)",
		Long: `Log in to the API with an e-mail and password, or save a token you already
have (a service token iops_… from 'insightctl tokens create', or a login
token). The token is checked with the API, then saved with the API URL in
<config dir>/insightops/credentials.json, readable by you only. It is sent
only to that URL. INSIGHTOPS_URL and INSIGHTOPS_TOKEN override it.

The password is prompted for without echo on a terminal; with
--password-stdin (or when stdin is not a terminal) it is the first line of
stdin.`,
		Example: `  insightctl login --url http://127.0.0.1:8000 --email admin@example.com
  printf '%s\n' "$ADMIN_PASSWORD" | insightctl login --email admin@example.com --password-stdin
  insightctl login --url https://ops.example.com --token-stdin < ci-token.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			saved, err := e.loadCredentials()
			if err != nil {
				return err
			}
			u := e.resolveURL(saved)
			if tokenStdin {
				if token, err = readLine(e.io.In); err != nil {
					return usagef("read the token from stdin: %v", err)
				}
			}
			c, err := e.newClient(u, "")
			if err != nil {
				return err
			}
			if token == "" {
				if email == "" {
					return usagef("give --email (and the password), or --token / --token-stdin")
				}
				password, err := e.readPassword(passwordStdin)
				if err != nil {
					return err
				}
				login, err := c.Login(cmd.Context(), email, password)
				if err != nil {
					return fmt.Errorf("log in: %w", err)
				}
				token = login.Token
				if login.MustChangePassword {
					fmt.Fprintln(e.io.Err, "insightctl: you must change your password before anything else: insightctl users password")
				}
			}
			who, err := c.WithToken(token).Whoami(cmd.Context())
			if err != nil {
				return fmt.Errorf("check the token: %w", err)
			}
			path, err := e.saveCredentials(credentials{URL: u, Token: token, Subject: who.Subject, Role: who.Role, ExpiresAt: who.ExpiresAt})
			if err != nil {
				return err
			}
			return e.emit(who, func(w io.Writer) {
				fmt.Fprintf(w, "logged in to %s as %s (%s); token saved in %s\n", u, who.Subject, who.Role, path)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "e-mail to log in with")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.StringVar(&token, "token", "", "save this token (a service token iops_… or a login token) instead of logging in; prefer --token-stdin, a flag is visible in ps")
	f.BoolVar(&tokenStdin, "token-stdin", false, "read the token to save from the first line of stdin")
	return cmd
}

// readPassword reads the password: prompted without echo on a terminal,
// else the first line of stdin.
func (e *env) readPassword(fromStdin bool) (string, error) {
	if !fromStdin && e.io.InTerminal {
		if f, ok := e.io.In.(*os.File); ok {
			fmt.Fprint(e.io.Err, "Password: ")
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(e.io.Err)
			if err != nil {
				return "", fmt.Errorf("read the password: %w", err)
			}
			return string(b), nil
		}
	}
	p, err := readLine(e.io.In)
	if err != nil {
		return "", usagef("read the password from stdin: %v", err)
	}
	return p, nil
}

// readLine reads the first line of r, without its line ending.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty input")
	}
	return line, nil
}

func (e *env) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the token in use is: subject, role, kind, expiry",
		Example: `  insightctl whoami
  INSIGHTOPS_TOKEN=iops_… insightctl whoami --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			who, err := c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			return e.emit(who, func(w io.Writer) {
				fmt.Fprintf(w, "%s\nrole     %s\nkind     %s\napi      %s\n", who.Subject, who.Role, who.Kind, c.BaseURL())
				if who.ExpiresAt != nil {
					fmt.Fprintf(w, "expires  %s\n", when(who.ExpiresAt))
				}
				if who.MustChangePassword {
					fmt.Fprintln(w, "must change its password first: insightctl users password")
				}
			})
		},
	}
}

func (e *env) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved login token and forget it",
		Long: `Revoke the saved login token at the API (POST /auth/logout) and delete the
saved login. A service token is only forgotten here: revoke it with
'insightctl tokens revoke ID'.`,
		Example: `  insightctl logout`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			saved, err := e.loadCredentials()
			if err != nil {
				return err
			}
			if saved.Token != "" {
				c, err := e.newClient(saved.URL, saved.Token)
				if err != nil {
					return err
				}
				err = c.Logout(cmd.Context())
				var ae *client.Error
				// 400: a service token (revoked with tokens revoke); 401: no longer valid anyway.
				if err != nil && (!errors.As(err, &ae) || (ae.Status != 400 && ae.Status != 401)) {
					return fmt.Errorf("revoke the token: %w", err)
				}
			}
			if err := e.removeCredentials(); err != nil {
				return err
			}
			return e.emit(map[string]any{"logged_out": true, "url": saved.URL}, func(w io.Writer) {
				fmt.Fprintln(w, "logged out")
			})
		},
	}
}
