package service

import (
	"context"
	"errors"
	"strings"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// ChannelTester sends a test notification through the installation's real
// channels (the server's notifier) to every channel p names, once, without
// retries, and says per channel whether it arrived. TestChannels returns
// when every channel has answered or ctx ends.
type ChannelTester interface {
	TestChannels(ctx context.Context, p catalog.NotifyPrefs) []apiclient.ChannelResult
}

// NotificationPrefs returns a user's notification preferences: a user's
// own, or anyone's for an admin; user "" is the caller. A user who set none gets the defaults
// (mode on-failure, no channel). The webhook secret shows as "set".
func (ss *Session) NotificationPrefs(_ context.Context, user string) (apiclient.NotificationPrefs, error) {
	p, err := ss.notifyPrefs(user)
	return prefsView(p), err
}

// notifyPrefs reads user's preferences for the caller, the defaults when
// none are stored.
func (ss *Session) notifyPrefs(user string) (catalog.NotifyPrefs, error) {
	self := user == ""
	if self {
		user = ss.id.User
	}
	if err := ss.id.requireSelfOrAdmin(user, "see the notification preferences"); err != nil {
		return catalog.NotifyPrefs{}, err
	}
	if _, err := ss.s.cat.User(user); errors.Is(err, catalog.ErrNotFound) && self {
		return catalog.NotifyPrefs{}, errorf(ErrNotFound, "you act as %q, which is not a user of the installation (an installation token, or the CLI working on the installation directly): name the user whose notifications you mean (--user)", user)
	} else if errors.Is(err, catalog.ErrNotFound) {
		return catalog.NotifyPrefs{}, errorf(ErrNotFound, "no user %q%s", user, ss.suggestUser(user))
	} else if err != nil {
		return catalog.NotifyPrefs{}, err
	}
	p, found, err := ss.s.cat.NotifyPrefs(user)
	if !found {
		p = catalog.NotifyPrefs{User: user, Mode: catalog.NotifyOnFailure}
	}
	return p, err
}

func prefsView(p catalog.NotifyPrefs) apiclient.NotificationPrefs {
	v := apiclient.NotificationPrefs{User: p.User, Email: p.Email, Webhook: p.Webhook, Mode: p.Mode, Digest: p.Digest}
	if p.WebhookSecret != "" {
		v.WebhookSecret = apiclient.SecretSet
	}
	return v
}

// SetNotificationPrefs changes the fields of a user's notification
// preferences that u gives: a user's own, or anyone's for an admin; user
// "" is the caller.
func (ss *Session) SetNotificationPrefs(_ context.Context, user string, u apiclient.NotificationUpdate) (apiclient.NotificationPrefs, error) {
	var out apiclient.NotificationPrefs
	err := ss.audited("notify.set", []string{user}, func() error {
		p, err := ss.notifyPrefs(user)
		if err != nil {
			return err
		}
		applyUpdate(&p, u)
		if err := p.Validate(); err != nil {
			return errorf(ErrInvalid, "%s", trimCatalog(err))
		}
		if err := ss.s.cat.PutNotifyPrefs(p); err != nil {
			return err
		}
		out = prefsView(p)
		return nil
	})
	return out, err
}

func applyUpdate(p *catalog.NotifyPrefs, u apiclient.NotificationUpdate) {
	if u.Email != nil {
		p.Email = *u.Email
	}
	if u.Webhook != nil {
		p.Webhook = *u.Webhook
		if p.Webhook == "" {
			p.WebhookSecret = ""
		}
	}
	if u.WebhookSecret != nil {
		p.WebhookSecret = *u.WebhookSecret
	}
	if u.Mode != nil {
		p.Mode = *u.Mode
	}
	if u.Digest != nil {
		p.Digest = *u.Digest
	}
}

// TestNotifications sends a test event through the real channels to each
// channel of a user (their own, or anyone's for an admin) and reports per
// channel whether it arrived. It needs the server (Options.Channels).
func (ss *Session) TestNotifications(ctx context.Context, user string) (apiclient.NotificationTest, error) {
	out := apiclient.NotificationTest{User: user, Channels: []apiclient.ChannelResult{}}
	err := ss.audited("notify.test", []string{user}, func() error {
		p, err := ss.notifyPrefs(user)
		if err != nil {
			return err
		}
		out.User = p.User
		if ss.s.channels == nil {
			return errorf(ErrUnprocessable, "notifications are sent by the server: run fleetvault serve and test through it (--server)")
		}
		if p.Email == "" && p.Webhook == "" {
			return errorf(ErrUnprocessable, "user %q has no email address and no webhook; set one with fleetvault notify set --user %s --email ADDRESS", p.User, p.User)
		}
		out.Channels = ss.s.channels.TestChannels(ctx, p)
		return nil
	})
	return out, err
}

// Undeliverable lists the notifications that did not arrive, newest first
// (at most limit; 0: all kept). Only an admin may.
func (ss *Session) Undeliverable(_ context.Context, limit int) ([]apiclient.Undeliverable, error) {
	if err := ss.id.requireAdmin("list undeliverable notifications"); err != nil {
		return nil, err
	}
	us, err := ss.s.cat.Undeliverable(limit)
	out := make([]apiclient.Undeliverable, len(us))
	for i, u := range us {
		out[i] = apiclient.Undeliverable{Time: u.Time, User: u.User, Kind: u.Kind, Event: u.Event, Target: u.Target, Attempts: u.Attempts, Error: u.Error}
	}
	return out, err
}

// trimCatalog is a catalog error as a sentence for a person.
func trimCatalog(err error) string { return strings.TrimPrefix(err.Error(), "catalog: ") }
