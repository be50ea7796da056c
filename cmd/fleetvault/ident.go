package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/spf13/cobra"
)

// newIdentCommand groups the identifier tools: parse and rewrite.
func newIdentCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "ident",
		Short: "Parse, check and DR-rewrite identifiers (address:port?METHOD:params?location)",
		Long: `Identifiers say what to read or write, and where:

  [scheme://]address[:port]?METHOD[:params]?location

for example 10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>
or mqtt://home0001-climate?READ:SETTINGS?TAG. The standard is docs/spec/identifiers.md.

Quote identifiers in the shell: '?', '<' and '>' are special to it.`,
		Args: cobra.NoArgs,
	}
	c.AddCommand(newIdentParseCommand(a), newIdentRewriteCommand(a))
	return c
}

func newIdentParseCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "parse ID...",
		Short: "Print the parts and the canonical form of identifiers, one JSON object per line",
		Long: `Parse prints, for each identifier, one JSON object on its own line with the
fields address, port (0 if absent), scheme ("" if none), method, params (the
items as written), location and canonical (the canonical form).

Every identifier is checked; the valid ones are printed. If any is malformed,
its error (with the column, counted in characters from 1) goes to stderr and
the exit status is 1.`,
		Example: `  fleetvault ident parse '10.10.33.33:7890?READ:SETTINGS:TAG'
  {"address":"10.10.33.33","port":7890,"scheme":"","method":"READ","params":["SETTINGS"],"location":"TAG","canonical":"10.10.33.33:7890?READ:SETTINGS?TAG"}

  fleetvault ident parse 'mqtt://home0001-climate?READ:SETTINGS?TAG' '[::1]:5683?WRITE:SETTINGS?TAG+SETTINGS'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return runIdentParse(a.stdout, args)
		},
	}
}

// identJSON is the output of ident parse, the same shape as the fields of
// docs/spec/vectors/identifiers.json.
type identJSON struct {
	Address   string   `json:"address"`
	Port      int      `json:"port"`
	Scheme    string   `json:"scheme"`
	Method    string   `json:"method"`
	Params    []string `json:"params"`
	Location  string   `json:"location"`
	Canonical string   `json:"canonical"`
}

func runIdentParse(w io.Writer, args []string) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // placeholders <...> stay readable
	var errs []error
	for _, s := range args {
		id, err := identifiers.Parse(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out := identJSON{id.Address, id.Port, id.Scheme, id.Method, id.Params, id.Location, id.String()}
		if out.Params == nil {
			out.Params = []string{}
		}
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("ident parse: write output: %w", err)
		}
	}
	return errors.Join(errs...)
}

func newIdentRewriteCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "rewrite --replication FILE ID...",
		Short: "Rewrite identifiers for the DR site, by the replication rules",
		Long: `Rewrite prints each identifier, in canonical form, as the backup server on the
DR site must use it: its address, and any IP address among its params (a bare
item such as 10.10.11.99, or the value of a key:value item such as
IP:10.10.11.45), are replaced by their replicas. A rule with a port matches
only that address and port; a rule without one matches the host on any port
and keeps the port unless the remote names one. The most specific rule wins.

The replication file is YAML:

  replication:
    - local: 10.10.11.44:6543
      remote: 10.50.4.4:3456
    - local: 10.10.11.45
      remote: 10.50.4.4

Malformed identifiers are reported on stderr with exit status 1; the others
are still printed.`,
		Example: `  fleetvault ident rewrite --replication replication.yaml \
    '10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>'
  10.50.4.4:3456?WRITE:IP:10.50.4.4,dedupe,<more params>?/mtree/backup/<client-id>`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The flag itself, not viper: a configuration file's replication:
			// key holds the rules, not a file name.
			file, _ := cmd.Flags().GetString("replication")
			return runIdentRewrite(a.stdout, file, args)
		},
	}
	c.Flags().String("replication", "", "YAML file with the replication rules (required)")
	_ = c.MarkFlagRequired("replication")
	return c
}

func runIdentRewrite(w io.Writer, file string, args []string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("ident rewrite: %w", err)
	}
	defer f.Close()
	rules, err := identifiers.ReadReplication(f, file)
	if err != nil {
		return fmt.Errorf("ident rewrite: %w", err)
	}
	var errs []error
	for _, s := range args {
		id, err := identifiers.Parse(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := fmt.Fprintln(w, identifiers.Rewrite(id, rules)); err != nil {
			return fmt.Errorf("ident rewrite: write output: %w", err)
		}
	}
	return errors.Join(errs...)
}
