package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNotifyPrefsValidate(t *testing.T) {
	secret := strings.Repeat("s", MinWebhookSecret)
	tests := []struct {
		name string
		p    NotifyPrefs
		ok   bool
	}{
		{"email", NotifyPrefs{User: "a", Email: "a@example.com", Mode: NotifyOnFailure}, true},
		{"webhook with secret", NotifyPrefs{User: "a", Webhook: "https://h.example.com/x", WebhookSecret: secret, Mode: NotifyAlways}, true},
		{"nothing, never", NotifyPrefs{User: "a", Mode: NotifyNever}, true},
		{"bad mode", NotifyPrefs{User: "a", Mode: "sometimes"}, false},
		{"bad email", NotifyPrefs{User: "a", Email: "Alice <a@example.com>", Mode: NotifyNever}, false},
		{"webhook not http", NotifyPrefs{User: "a", Webhook: "ftp://h/x", WebhookSecret: secret, Mode: NotifyNever}, false},
		{"webhook without secret", NotifyPrefs{User: "a", Webhook: "https://h.example.com/x", Mode: NotifyNever}, false},
		{"short secret", NotifyPrefs{User: "a", Webhook: "https://h.example.com/x", WebhookSecret: "short", Mode: NotifyNever}, false},
		{"no user", NotifyPrefs{Mode: NotifyNever}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestNotifyPrefsStored(t *testing.T) {
	c := newTestCatalog(t)
	p := NotifyPrefs{User: "alice", Email: "alice@example.com", Mode: NotifyAlways, Digest: true}
	if err := c.PutNotifyPrefs(p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("prefs of a user who does not exist: %v", err)
	}
	if err := c.CreateUser(User{Name: "alice", Role: UserOwner}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutNotifyPrefs(p); err != nil {
		t.Fatal(err)
	}
	got, found, err := c.NotifyPrefs("alice")
	if err != nil || !found || got != p {
		t.Fatalf("NotifyPrefs = %+v, %v, %v", got, found, err)
	}
	if _, found, err := c.NotifyPrefs("bob"); found || err != nil {
		t.Fatalf("bob: found %v, %v", found, err)
	}
}

func TestDigests(t *testing.T) {
	c := newTestCatalog(t)
	for i, u := range []string{"bob", "alice", "bob", "alice", "bob"} {
		if err := c.AppendDigest(u, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	bs, err := c.PendingDigests()
	if err != nil || len(bs) != 2 || bs[0].User != "alice" || len(bs[0].Events) != 2 || bs[1].User != "bob" || len(bs[1].Events) != 3 ||
		string(bs[1].Events[2]) != `{"n":4}` {
		t.Fatalf("PendingDigests = %+v, %v", bs, err)
	}
	if err := c.AppendDigest("bob", json.RawMessage(`{"n":5}`)); err != nil { // comes after the batch was read
		t.Fatal(err)
	}
	if err := c.RemoveDigests("bob", bs[1].Last); err != nil {
		t.Fatal(err)
	}
	bs, err = c.PendingDigests()
	if err != nil || len(bs) != 2 || len(bs[0].Events) != 2 || len(bs[1].Events) != 1 || string(bs[1].Events[0]) != `{"n":5}` {
		t.Fatalf("after removing bob's batch: %+v, %v", bs, err)
	}
}

func TestUndeliverableBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("1,005 commits")
	}
	c := newTestCatalog(t)
	for i := range MaxUndeliverable + 5 {
		if err := c.AddUndeliverable(UndeliverableRecord{Time: time.Unix(int64(i), 0), Kind: "job-failed", Event: fmt.Sprint(i), Target: "email a@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	us, err := c.Undeliverable(0)
	if err != nil || len(us) != MaxUndeliverable || us[0].Event != fmt.Sprint(MaxUndeliverable+4) || us[len(us)-1].Event != "5" {
		t.Fatalf("%d kept, newest %+v, oldest %+v, %v", len(us), us[0], us[len(us)-1], err)
	}
	if us, _ := c.Undeliverable(3); len(us) != 3 {
		t.Fatalf("limit 3: %d", len(us))
	}
}
