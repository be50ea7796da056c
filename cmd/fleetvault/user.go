package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// peopleHelp is the part of the help of user and owner that says where
// they work.
const peopleHelp = `

It asks the server given by --server, with an admin token; when no server
answers there, it works on the installation given by --mbr directly, as its
administrator (whoever can open its files owns it). Every change is written
to the audit log (fleetvault audit).`

func newUserCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "user",
		Short: "Add, list and disable the people who use the API, with their roles",
		Long: `user manages the installation's users. Each has a role:

  admin     everything, user management and the audit log included
  operator  devices, groups, backups and jobs on everything; no user management
  owner     a data owner: sees and acts only on the devices, device groups and
            backup groups assigned to them (fleetvault owner assign)

Passwords are stored as argon2id hashes. An API token acts as its user, with
the user's role: fleetvault token create --name NAME --user USER.` + peopleHelp,
		Args: cobra.NoArgs,
	}
	c.AddCommand(newUserAddCommand(a), newUserListCommand(a), newUserPasswdCommand(a), newUserDisableCommand(a))
	addServerFlags(c, true)
	return c
}

// peopleStore is what the user, owner and token commands need:
// *apiclient.Client asks a server, *localStore works on the installation.
type peopleStore interface {
	AddUser(ctx context.Context, name, role, password string) error
	Users(ctx context.Context) ([]apiclient.User, error)
	SetPassword(ctx context.Context, name, password string) error
	DisableUser(ctx context.Context, name string) error
	AssignOwner(ctx context.Context, user string, a catalog.Assignment) error
	UnassignOwner(ctx context.Context, user string, a catalog.Assignment) error
	CreateToken(ctx context.Context, name, user string) (string, error)
}

var (
	_ peopleStore = (*apiclient.Client)(nil)
	_ peopleStore = (*localStore)(nil)
)

// withAdmin runs fn against the server; when no server answers, against the
// installation given by --mbr, as its local administrator.
func withAdmin(cmd *cobra.Command, a *app, fn func(peopleStore) error) error {
	r := newRemote(cmd, a)
	return serverOrLocal(a, r, false, func() error { return fn(r.client) }, func(ls *localStore) error { return fn(ls) })
}

// passwordOptions say where a new password comes from.
type passwordOptions struct {
	stdin bool
}

func (o *passwordOptions) AddFlags(c *cobra.Command) {
	c.Flags().BoolVar(&o.stdin, "password-stdin", false, "read the password from the first line of standard input (otherwise: prompt twice on the terminal)")
}

// read returns the password: the first line of in with --password-stdin,
// else typed twice at the terminal without echo.
func (o *passwordOptions) read(cmd *cobra.Command, user string) (string, error) {
	in := cmd.InOrStdin()
	if o.stdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{errors.New("no terminal to ask for the password on: give --password-stdin and pipe it in")}
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(cmd.ErrOrStderr(), prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		return string(b), err
	}
	pw, err := ask(fmt.Sprintf("Password for %s: ", user))
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	again, err := ask("Again: ")
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if pw != again {
		return "", errors.New("the two passwords differ; nothing was changed")
	}
	return pw, nil
}
