package service

import (
	"context"
	"errors"
	"testing"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/catalog/catalogtest"
)

// ownersService has owners alice (device a1, group ga) and bob (b1), a
// day of history for each device, and bob's preferences with a webhook.
func ownersService(t *testing.T) *Service {
	t.Helper()
	c := catalogtest.New(t)
	for _, u := range []string{"alice", "bob"} {
		if err := c.CreateUser(catalog.User{Name: u, Role: RoleOwner}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PutDevices(context.Background(), []catalog.Device{{ID: "a1", Owner: "alice"}, {ID: "b1", Owner: "bob"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateGroup("ga", catalog.Group{Kind: catalog.GroupDevices, Owner: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddMembers("ga", []string{"a1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordHistory([]catalog.HistoryRecord{
		{Day: "2026-02-01", Kind: catalog.HistoryBackup, Device: "a1", Attempts: 1, Successes: 1, Bytes: 10},
		{Day: "2026-02-01", Kind: catalog.HistoryBackup, Device: "b1", Attempts: 3, Failures: 3},
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutNotifyPrefs(catalog.NotifyPrefs{User: "bob", Webhook: "https://h.example.com/x", WebhookSecret: "bob's secret, 16 bytes at least", Mode: catalog.NotifyAlways}); err != nil {
		t.Fatal(err)
	}
	return New(Options{Catalog: c})
}

// TestStatsScope: an owner's statistics count only their devices; asking
// for another owner's is refused; an admin may select any owner or group.
func TestStatsScope(t *testing.T) {
	svc := ownersService(t)
	alice, admin := Identity{User: "alice", Role: RoleOwner}, Identity{User: "root", Role: RoleAdmin}
	tests := []struct {
		name     string
		id       Identity
		q        apiclient.StatsQuery
		attempts int
		err      error
	}{
		{"owner: only theirs", alice, apiclient.StatsQuery{}, 1, nil},
		{"owner: their own named", alice, apiclient.StatsQuery{Owner: "alice"}, 1, nil},
		{"owner: another's", alice, apiclient.StatsQuery{Owner: "bob"}, 0, ErrForbidden},
		{"owner: their group", alice, apiclient.StatsQuery{Group: "ga"}, 1, nil},
		{"admin: everything", admin, apiclient.StatsQuery{}, 4, nil},
		{"admin: bob's", admin, apiclient.StatsQuery{Owner: "bob"}, 3, nil},
		{"admin: a group", admin, apiclient.StatsQuery{Group: "ga"}, 1, nil},
		{"admin: no such group", admin, apiclient.StatsQuery{Group: "nope"}, 0, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := svc.As(tt.id).Stats(context.Background(), tt.q)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Stats = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || st.Total.BackupAttempts != tt.attempts {
				t.Fatalf("Stats = %+v, %v; want %d attempts", st.Total, err, tt.attempts)
			}
		})
	}
}

// TestNotificationPrefsScope: a user sees and sets only their own
// preferences, an admin anyone's; the secret is never shown.
func TestNotificationPrefsScope(t *testing.T) {
	svc := ownersService(t)
	ctx := context.Background()
	alice, admin := svc.As(Identity{User: "alice", Role: RoleOwner}), svc.As(Identity{User: "root", Role: RoleAdmin})
	mode := catalog.NotifyNever
	if _, err := alice.NotificationPrefs(ctx, "bob"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("alice reads bob's: %v", err)
	}
	if _, err := alice.SetNotificationPrefs(ctx, "bob", apiclient.NotificationUpdate{Mode: &mode}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("alice sets bob's: %v", err)
	}
	if p, err := alice.NotificationPrefs(ctx, ""); err != nil || p.User != "alice" || p.Mode != catalog.NotifyOnFailure {
		t.Fatalf("alice's own defaults: %+v, %v", p, err)
	}
	p, err := admin.NotificationPrefs(ctx, "bob")
	if err != nil || p.WebhookSecret != apiclient.SecretSet || p.Mode != catalog.NotifyAlways {
		t.Fatalf("admin reads bob's: %+v, %v", p, err)
	}
	if _, err := admin.NotificationPrefs(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an admin who is no user reads their own: %v", err)
	}
	bad := "sometimes"
	if _, err := admin.SetNotificationPrefs(ctx, "bob", apiclient.NotificationUpdate{Mode: &bad}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad mode: %v", err)
	}
	empty := ""
	p, err = admin.SetNotificationPrefs(ctx, "bob", apiclient.NotificationUpdate{Webhook: &empty})
	if err != nil || p.Webhook != "" || p.WebhookSecret != "" {
		t.Fatalf("removing the webhook: %+v, %v", p, err)
	}
}
