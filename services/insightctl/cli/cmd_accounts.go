package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/insightops/insightops/shared/client"
)

// roles are the API's roles, least first.
var roles = []string{"viewer", "operator", "admin"}

// idArg parses a numeric user or token id.
func idArg(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, usagef("%q is not an id (a positive integer; see the list)", s)
	}
	return id, nil
}

func (e *env) usersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage users (admin), and change your own password",
		Example: `  insightctl users list
  insightctl users create --email ops@example.com --role operator
  insightctl users password`,
		Args: cobra.NoArgs,
	}
	userRow := func(u client.User) []string {
		return []string{strconv.FormatInt(u.ID, 10), u.Email, u.Role, strconv.FormatBool(u.Active), strconv.FormatBool(u.MustChangePassword), when(&u.CreatedAt)}
	}
	header := []string{"ID", "EMAIL", "ROLE", "ACTIVE", "MUST_CHANGE_PASSWORD", "CREATED"}

	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		Example: `  insightctl users list --output json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			us, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			return emitTable(e, us, header, userRow)
		},
	}
	get := &cobra.Command{
		Use: "get ID", Short: "Show one user", Args: oneArg("ID"),
		Example: `  insightctl users get 2`,
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := idArg(a[0])
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			u, err := c.User(cmd.Context(), id)
			if err != nil {
				return err
			}
			return emitTable(e, []client.User{u}, header, userRow)
		},
	}

	var nu client.NewUser
	var passwordStdin bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a user; without a password one is generated, shown once, and must be changed first",
		Args:  cobra.NoArgs,
		Example: `  insightctl users create --email ops@example.com --role operator
  printf '%s\n' "$PW" | insightctl users create --email ci@example.com --role viewer --password-stdin`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nu.Email == "" {
				return usagef("--email is required")
			}
			if passwordStdin {
				p, err := readLine(e.io.In)
				if err != nil {
					return usagef("read the password from stdin: %v", err)
				}
				nu.Password = p
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			cu, err := c.CreateUser(cmd.Context(), nu)
			if err != nil {
				return err
			}
			return e.emit(cu, func(w io.Writer) {
				fmt.Fprintf(w, "created user %d %s (%s)\n", cu.User.ID, cu.User.Email, cu.User.Role)
				if cu.GeneratedPassword != "" {
					fmt.Fprintf(w, "generated password (shown once; it must be changed at first login): %s\n", cu.GeneratedPassword)
				}
			})
		},
	}
	create.Flags().StringVar(&nu.Email, "email", "", "the user's e-mail")
	create.Flags().StringVar(&nu.Role, "role", "viewer", "viewer, operator or admin")
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the initial password from stdin (default: generated)")
	_ = create.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(roles, cobra.ShellCompDirectiveNoFileComp))

	var role string
	var active bool
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Change a user's role and/or active flag",
		Args:  oneArg("ID"),
		Example: `  insightctl users update 3 --role admin
  insightctl users update 3 --active=false`,
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := idArg(a[0])
			if err != nil {
				return err
			}
			var p client.UserPatch
			if cmd.Flags().Changed("role") {
				p.Role = &role
			}
			if cmd.Flags().Changed("active") {
				p.Active = &active
			}
			if p.Role == nil && p.Active == nil {
				return usagef("give --role and/or --active")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			u, err := c.UpdateUser(cmd.Context(), id, p)
			if err != nil {
				return err
			}
			return emitTable(e, []client.User{u}, header, userRow)
		},
	}
	update.Flags().StringVar(&role, "role", "", "new role: viewer, operator or admin")
	update.Flags().BoolVar(&active, "active", true, "whether the user may log in")
	_ = update.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(roles, cobra.ShellCompDirectiveNoFileComp))

	del := &cobra.Command{
		Use: "delete ID", Short: "Remove a user (the last active admin cannot be removed)", Args: oneArg("ID"),
		Example: `  insightctl users delete 3`,
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := idArg(a[0])
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), id); err != nil {
				return err
			}
			return e.emit(map[string]any{"deleted": id}, func(w io.Writer) { fmt.Fprintf(w, "deleted user %d\n", id) })
		},
	}

	password := &cobra.Command{
		Use:   "password",
		Short: "Change your own password (the saved login gets the new token)",
		Long: `Change the signed-in user's password. Every older token of the user stops
working; the new token is saved when the saved login was in use. Reads the
current and the new password from two lines of stdin (or prompts on a
terminal).`,
		Args:    cobra.NoArgs,
		Example: `  printf '%s\n%s\n' "$OLD" "$NEW" | insightctl users password`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			current, next, err := e.readPasswordChange()
			if err != nil {
				return err
			}
			login, err := c.ChangePassword(cmd.Context(), current, next)
			if err != nil {
				return err
			}
			saved, err := e.loadCredentials()
			if err != nil {
				return err
			}
			if saved.Token == c.Token() {
				saved.Token, saved.ExpiresAt = login.Token, &login.ExpiresAt
				if _, err := e.saveCredentials(saved); err != nil {
					return err
				}
			}
			return e.emit(map[string]any{"changed": true, "expires_at": login.ExpiresAt}, func(w io.Writer) {
				fmt.Fprintln(w, "password changed; older tokens no longer work")
			})
		},
	}
	cmd.AddCommand(list, get, create, update, del, password)
	return cmd
}

// readPasswordChange reads the current and the new password.
func (e *env) readPasswordChange() (string, string, error) {
	if e.io.InTerminal {
		cur, err := e.readPassword(false)
		if err != nil {
			return "", "", err
		}
		fmt.Fprint(e.io.Err, "New ")
		next, err := e.readPassword(false)
		return cur, next, err
	}
	all, err := io.ReadAll(io.LimitReader(e.io.In, 4096))
	if err != nil {
		return "", "", usagef("read the passwords from stdin: %v", err)
	}
	lines := strings.Split(strings.ReplaceAll(string(all), "\r\n", "\n"), "\n")
	if len(lines) < 2 || lines[0] == "" || lines[1] == "" {
		return "", "", usagef("give the current and the new password on two lines of stdin")
	}
	return lines[0], lines[1], nil
}

func (e *env) tokensCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Manage service tokens for scripts and CI (admin)",
		Example: `  insightctl tokens create --name ci --role operator --expires-in-days 90
  insightctl tokens list`,
		Args: cobra.NoArgs,
	}
	list := &cobra.Command{
		Use: "list", Short: "List service tokens (never their secret)", Args: cobra.NoArgs,
		Example: `  insightctl tokens list --output json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			ts, err := c.ServiceTokens(cmd.Context())
			if err != nil {
				return err
			}
			return emitTable(e, ts, []string{"ID", "NAME", "ROLE", "CREATED_BY", "EXPIRES", "LAST_USED"}, func(t client.ServiceToken) []string {
				return []string{strconv.FormatInt(t.ID, 10), t.Name, t.Role, t.CreatedBy, when(&t.ExpiresAt), when(t.LastUsedAt)}
			})
		},
	}
	var nt client.NewServiceToken
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a service token; its secret (iops_…) is printed once",
		Args:  cobra.NoArgs,
		Example: `  insightctl tokens create --name nightly-backup --role operator --expires-in-days 365
  TOKEN=$(insightctl tokens create --name ci --role operator --output json | jq -r .token)`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nt.Name == "" {
				return usagef("--name is required")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			t, err := c.CreateServiceToken(cmd.Context(), nt)
			if err != nil {
				return err
			}
			return e.emit(t, func(w io.Writer) {
				fmt.Fprintf(w, "created service token %d %s (%s), expires %s\n", t.ID, t.Name, t.Role, when(&t.ExpiresAt))
				fmt.Fprintf(w, "secret (shown once): %s\n", t.Token)
			})
		},
	}
	create.Flags().StringVar(&nt.Name, "name", "", "token name (audit events name it token:<name>)")
	create.Flags().StringVar(&nt.Role, "role", "operator", "viewer, operator or admin")
	create.Flags().IntVar(&nt.ExpiresInDays, "expires-in-days", 0, "lifetime in days (default: the API's)")
	_ = create.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(roles, cobra.ShellCompDirectiveNoFileComp))
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a service token: refused from the next request on", Args: oneArg("ID"),
		Example: `  insightctl tokens revoke 4`,
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := idArg(a[0])
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if err := c.RevokeServiceToken(cmd.Context(), id); err != nil {
				return err
			}
			return e.emit(map[string]any{"revoked": id}, func(w io.Writer) { fmt.Fprintf(w, "revoked service token %d\n", id) })
		},
	}
	cmd.AddCommand(list, create, revoke)
	return cmd
}

func (e *env) completionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script",
		Long: `Print the completion script of bash, zsh or fish. Archive names and job ids
are completed from the API when you are logged in.`,
		Example: `  source <(insightctl completion bash)
  insightctl completion zsh > "${fpath[1]}/_insightctl"
  insightctl completion fish > ~/.config/fish/completions/insightctl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      oneArg("bash, zsh or fish"),
		RunE: func(cmd *cobra.Command, a []string) error {
			root := cmd.Root()
			var err error
			switch a[0] {
			case "bash":
				err = root.GenBashCompletionV2(e.io.Out, true)
			case "zsh":
				err = root.GenZshCompletion(e.io.Out)
			case "fish":
				err = root.GenFishCompletion(e.io.Out, true)
			default:
				return usagef("completion %q: want bash, zsh or fish", a[0])
			}
			if err != nil {
				return fmt.Errorf("write the completion script: %w", err)
			}
			return nil
		},
	}
}
