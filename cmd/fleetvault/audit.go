package main

import (
	"fmt"
	"github.com/fleetvault/fleetvault/service"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

type auditOptions struct {
	user   string
	since  string
	limit  int
	asJSON bool
}

func newAuditCommand(a *app) *cobra.Command {
	var o auditOptions
	c := &cobra.Command{
		Use:   "audit [--user U] [--since T] [--json]",
		Short: "Show the audit log: every change, who made it, from where, and its outcome",
		Long: `audit prints the audit log, oldest first: every change made through the API
or the CLI (and every refused or unauthenticated attempt), with the user, their
role, the client's address, the action, the objects and the outcome (ok,
refused, failed, unauthenticated). An entry is on disk before the change is
answered, so it survives a crash.

It asks the server given by --server (with an admin token); when no server
answers there, it reads the installation given by --mbr directly.` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := apiclient.AuditQuery{User: o.user, Limit: o.limit}
			if o.since != "" {
				t, err := parseWhen(o.since)
				if err != nil {
					return usageError{fmt.Errorf("--since: %w", err)}
				}
				q.Since = t
			}
			r := newRemote(cmd, a)
			var entries []catalog.AuditEntry
			err := serverOrLocal(a, r, true, func() (err error) {
				entries, err = r.client.Audit(cmd.Context(), q)
				return err
			}, func(ls *localStore) (err error) {
				entries, err = ls.Audit(cmd.Context(), q)
				return err
			})
			if err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			return printAudit(a, entries, o.asJSON)
		},
	}
	f := c.Flags()
	f.StringVar(&o.user, "user", "", "only this user's entries")
	f.StringVar(&o.since, "since", "", "only entries at or after this time (RFC 3339, a date, or a duration ago such as 24h)")
	f.IntVar(&o.limit, "limit", 0, "at most this many entries, the latest (0: all)")
	f.BoolVar(&o.asJSON, "json", false, "print JSON")
	addServerFlags(c, false)
	return c
}

func printAudit(a *app, entries []catalog.AuditEntry, asJSON bool) error {
	if asJSON {
		if entries == nil {
			entries = []catalog.AuditEntry{}
		}
		return writeJSON(a.stdout, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintln(a.stdout, "no audit entries")
		return nil
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "TIME\tUSER\tROLE\tFROM\tACTION\tOBJECTS\tOUTCOME")
	for _, e := range entries {
		user := e.User
		if user == "" {
			user = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02T15:04:05Z07:00"), user, e.Role, e.Addr, e.Action, strings.Join(readable(e.Objects), " "), e.Outcome)
	}
	return tw.Flush()
}

// parseWhen reads a time as RFC 3339, a date (midnight UTC), or a duration
// ago ("24h").
func parseWhen(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-24T10:00:00Z), a date (2026-11-24) or a duration ago (24h)", s)
}

// readable quotes the names a terminal would show misleadingly (control or
// bidirectional-text characters), which refused attempts may carry.
func readable(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n
		if n != "" && service.CheckName("", n) != nil {
			out[i] = strconv.Quote(n)
		}
	}
	return out
}
