package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetvault/fleetvault/apiclient"
)

// notifyHelp says where the notify commands work.
const notifyHelp = `

It asks the server given by --server with your token; user "" (no --user) is
you. When no server answers there, it works on the installation given by --mbr
directly, as its administrator: name the user with --user. Sending (notify
test) needs the server. Every change is in the audit log.`

// notifyStore is what the notify commands need: *apiclient.Client asks a
// server, *localStore works on the installation.
type notifyStore interface {
	NotificationPrefs(ctx context.Context, user string) (apiclient.NotificationPrefs, error)
	SetNotificationPrefs(ctx context.Context, user string, u apiclient.NotificationUpdate) (apiclient.NotificationPrefs, error)
	TestNotifications(ctx context.Context, user string) (apiclient.NotificationTest, error)
	Undeliverable(ctx context.Context, limit int) ([]apiclient.Undeliverable, error)
}

var (
	_ notifyStore = (*apiclient.Client)(nil)
	_ notifyStore = (*localStore)(nil)
)

// withNotify runs fn against the server, or against the installation when
// no server answers.
func withNotify(cmd *cobra.Command, a *app, readOnly bool, fn func(notifyStore) error) error {
	r := newRemote(cmd, a)
	return serverOrLocal(a, r, readOnly, func() error { return fn(r.client) }, func(ls *localStore) error { return fn(ls) })
}

func newNotifyCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "notify",
		Short: "Set how you are told about failed jobs, missed RPOs and certifications",
		Long: `notify manages a user's notification preferences: an email address, a webhook
(JSON POSTs signed with HMAC-SHA256 over the body and a timestamp, with your
own secret), a mode and a daily digest:

  on-failure  failed or aborted jobs, missed RPOs, certification reminders,
              refusals and lapses (the default)
  always      also every backup or restore job that ended well
  never       nothing

You are told about what you own: your devices, device groups and backup
groups (fleetvault owner assign). Admins are also told when a backup is
refused certification, and about failed jobs of devices without an owner. A
job that touches many devices is one message per person, not one per device.
With --digest on, the day's events come as one message at the server's
digest hour (notify.digest_hour, UTC) instead. A user sets their own; an
admin sets anyone's (--user).` + notifyHelp,
		Args: cobra.NoArgs,
	}
	c.AddCommand(newNotifySetCommand(a), newNotifyShowCommand(a), newNotifyTestCommand(a), newNotifyUndeliverableCommand(a))
	addServerFlags(c, true)
	return c
}

type notifySetOptions struct {
	user, email, webhook, secretFile, mode, digest string
}

func (o *notifySetOptions) AddFlags(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.user, "user", "", "whose preferences (default: yours; an admin may name anyone)")
	f.StringVar(&o.email, "email", "", "email address; \"\" with the flag given removes it")
	f.StringVar(&o.webhook, "webhook", "", "webhook URL (http or https); \"\" with the flag given removes it and its secret")
	f.StringVar(&o.secretFile, "webhook-secret-file", "", "file holding the webhook's signing secret (at least 16 bytes; never shown again)")
	f.StringVar(&o.mode, "mode", "", "on-failure, always or never")
	f.StringVar(&o.digest, "digest", "", "on: one message a day at the digest hour; off: one per event")
}

// update builds the change from the flags given.
func (o *notifySetOptions) update(c *cobra.Command) (apiclient.NotificationUpdate, error) {
	var u apiclient.NotificationUpdate
	set := func(name string) bool { return c.Flags().Changed(name) }
	if set("email") {
		u.Email = &o.email
	}
	if set("webhook") {
		u.Webhook = &o.webhook
	}
	if set("webhook-secret-file") {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return u, fmt.Errorf("--webhook-secret-file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		u.WebhookSecret = &s
	}
	if set("mode") {
		u.Mode = &o.mode
	}
	if set("digest") {
		var on bool
		switch o.digest {
		case "on":
			on = true
		case "off":
		default:
			return u, usageError{fmt.Errorf("--digest is on or off, not %q", o.digest)}
		}
		u.Digest = &on
	}
	if u == (apiclient.NotificationUpdate{}) {
		return u, usageError{errors.New("notify set: give at least one of --email, --webhook, --webhook-secret-file, --mode, --digest")}
	}
	return u, nil
}

func newNotifySetCommand(a *app) *cobra.Command {
	var o notifySetOptions
	c := &cobra.Command{
		Use:   "set [--user U] [--email A] [--webhook URL --webhook-secret-file F] [--mode on-failure|always|never] [--digest on|off]",
		Short: "Change how a user is notified (only the flags given change)",
		Example: `  fleetvault notify set --email alice@example.com --mode on-failure
  fleetvault notify set --webhook https://chat.example.com/hooks/fv --webhook-secret-file hook.secret
  fleetvault notify set --user bob --mode always --digest on`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := o.update(cmd)
			if err != nil {
				return err
			}
			return withNotify(cmd, a, false, func(s notifyStore) error {
				p, err := s.SetNotificationPrefs(cmd.Context(), o.user, u)
				if err != nil {
					return fmt.Errorf("notify set: %w", err)
				}
				return printPrefs(a, p, false)
			})
		},
	}
	o.AddFlags(c)
	return c
}

func newNotifyShowCommand(a *app) *cobra.Command {
	var user string
	var asJSON bool
	c := &cobra.Command{
		Use:   "show [--user U] [--json]",
		Short: "Show how a user is notified (the webhook secret shows as \"set\")",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNotify(cmd, a, true, func(s notifyStore) error {
				p, err := s.NotificationPrefs(cmd.Context(), user)
				if err != nil {
					return fmt.Errorf("notify show: %w", err)
				}
				return printPrefs(a, p, asJSON)
			})
		},
	}
	c.Flags().StringVar(&user, "user", "", "whose preferences (default: yours)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printPrefs(a *app, p apiclient.NotificationPrefs, asJSON bool) error {
	if asJSON {
		return writeJSON(a.stdout, p)
	}
	or := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	digest := "off (one message per event)"
	if p.Digest {
		digest = "on (one message a day)"
	}
	tw := newTable(a.stdout)
	fmt.Fprintf(tw, "user:\t%s\n", p.User)
	fmt.Fprintf(tw, "mode:\t%s\n", p.Mode)
	fmt.Fprintf(tw, "email:\t%s\n", or(p.Email, "-"))
	fmt.Fprintf(tw, "webhook:\t%s\n", or(p.Webhook, "-"))
	fmt.Fprintf(tw, "webhook secret:\t%s\n", or(p.WebhookSecret, "-"))
	fmt.Fprintf(tw, "digest:\t%s\n", digest)
	return tw.Flush()
}

func newNotifyTestCommand(a *app) *cobra.Command {
	var user string
	c := &cobra.Command{
		Use:   "test [--user U]",
		Short: "Send a test notification through each of a user's channels and say whether it arrived",
		Long: `test sends a test event, now, through the server's real channels (its SMTP
server, the user's webhook) to each channel the user has set, once, without
retries, and reports per channel whether it was delivered or why not. It
exits 1 when a channel failed.` + exitCodesHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNotify(cmd, a, true, func(s notifyStore) error {
				res, err := s.TestNotifications(cmd.Context(), user)
				if err != nil {
					return fmt.Errorf("notify test: %w", err)
				}
				failed := 0
				for _, r := range res.Channels {
					if r.Delivered {
						fmt.Fprintf(a.stdout, "%s %s: delivered\n", r.Channel, r.Target)
						continue
					}
					failed++
					fmt.Fprintf(a.stdout, "%s %s: NOT delivered: %s\n", r.Channel, r.Target, r.Error)
				}
				if failed > 0 {
					return fmt.Errorf("notify test: %d of %d channels of %s failed", failed, len(res.Channels), res.User)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&user, "user", "", "whose channels (default: yours)")
	return c
}

func newNotifyUndeliverableCommand(a *app) *cobra.Command {
	var limit int
	var asJSON bool
	c := &cobra.Command{
		Use:   "undeliverable [--limit N] [--json]",
		Short: "List the notifications that did not arrive after their retries (admin)",
		Long: `undeliverable lists, newest first, the notifications that did not arrive:
every try failed, the receiver refused it for good (an HTTP 4xx), or the server
stopped first. The newest 1000 are kept. /metrics counts them
(fleetvault_notifications_total{result="undeliverable"}).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNotify(cmd, a, true, func(s notifyStore) error {
				us, err := s.Undeliverable(cmd.Context(), limit)
				if err != nil {
					return fmt.Errorf("notify undeliverable: %w", err)
				}
				if asJSON {
					return writeJSON(a.stdout, us)
				}
				if len(us) == 0 {
					fmt.Fprintln(a.stdout, "no undeliverable notifications")
					return nil
				}
				tw := newTable(a.stdout)
				fmt.Fprintln(tw, "TIME\tUSER\tKIND\tTARGET\tTRIES\tERROR")
				for _, u := range us {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", u.Time.Format(time.RFC3339), u.User, u.Kind, u.Target, u.Attempts, u.Error)
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 0, "at most this many, the newest (0: all kept)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
