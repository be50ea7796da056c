package main

import (
	"github.com/fleetvault/fleetvault/service"

	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newTokenCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke HTTP API tokens",
		Long: `token manages the HTTP API's bearer tokens. They live hashed (SHA-256) in
api-tokens.yaml beside the MBR, mode 0600; a token is printed once, when it is
created. A running server picks up changes on its next request. A token made
with --user acts as that user, with the user's role (fleetvault user); one
without, like the token fleetvault init prints, is an installation admin.

Use a token with: curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8686/api/v1/jobs`,
		Args: cobra.NoArgs,
	}
	c.PersistentFlags().String("token-file", "", "API token file (default: api-tokens.yaml beside the MBR) (config: http.token_file)")
	c.AddCommand(newTokenCreateCommand(a), newTokenListCommand(a), newTokenRevokeCommand(a))
	return c
}

// tokenStore opens the token file named by --token-file, http.token_file, or
// the one beside the MBR.
func tokenStore(a *app, cmd *cobra.Command) (*service.Tokens, error) {
	if err := a.v.BindPFlag("http.token_file", cmd.Flags().Lookup("token-file")); err != nil {
		return nil, err
	}
	if p := a.v.GetString("http.token_file"); p != "" {
		return service.OpenTokens(p), nil
	}
	mbr, err := mbrPath(a)
	if err != nil {
		return nil, err
	}
	return service.OpenTokens(service.TokenFile(mbr)), nil
}

func newTokenCreateCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "create --name NAME [--user USER]",
		Short: "Create an API token and print it (only this once)",
		Long: `create makes an API token. With --user it acts as that user, with the user's
role (fleetvault user add), and is made by the server given by --server
(with an admin token) or, when none answers, on the installation given by
--mbr directly. Without --user it is an installation admin token, like the
one fleetvault init prints, written to the token file directly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := tokenStore(a, cmd)
			if err != nil {
				return err
			}
			return runTokenCreate(cmd, a, ts, a.v.GetString("name"), a.v.GetString("user"))
		},
	}
	c.Flags().String("name", "", "the token's name, e.g. admin or ci (required)")
	c.Flags().String("user", "", "the user the token acts as (default: none, an installation admin token)")
	addServerFlags(c, false)
	return c
}

func runTokenCreate(cmd *cobra.Command, a *app, ts *service.Tokens, name, user string) error {
	// ts is where the local administrator's tokens go; openLocalStore finds
	// the same file through http.token_file, which tokenStore has bound.
	if name == "" {
		return usageError{errors.New("token create: --name is required")}
	}
	var tok string
	var err error
	if user == "" {
		tok, err = ts.Create(name)
	} else {
		err = withAdmin(cmd, a, func(ps peopleStore) error {
			tok, err = ps.CreateToken(cmd.Context(), name, user)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	fmt.Fprintf(a.stdout, "API token %q (shown only now; store it safely):\n%s\n", name, tok)
	return nil
}

func newTokenListCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "List API tokens by name (never the tokens themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := tokenStore(a, cmd)
			if err != nil {
				return err
			}
			return runTokenList(a, ts, a.v.GetBool("json"))
		},
	}
	c.Flags().Bool("json", false, "print JSON")
	return c
}

func runTokenList(a *app, ts *service.Tokens, asJSON bool) error {
	list, err := ts.List()
	if err != nil {
		return fmt.Errorf("token list: %w", err)
	}
	if asJSON {
		if list == nil {
			list = []service.TokenInfo{}
		}
		return writeJSON(a.stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(a.stdout, "no API tokens in %s; create one with fleetvault token create --name NAME\n", ts.Path())
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUSER\tCREATED")
	for _, t := range list {
		user := t.User
		if user == "" {
			user = "(admin)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, user, t.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func newTokenRevokeCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API token; requests with it are refused from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := tokenStore(a, cmd)
			if err != nil {
				return err
			}
			if err := ts.Revoke(args[0]); err != nil {
				return fmt.Errorf("token revoke: %w", err)
			}
			fmt.Fprintf(a.stdout, "revoked API token %q\n", args[0])
			return nil
		},
	}
}
