package catalog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"time"

	"go.etcd.io/bbolt"
)

// The resource database's notification buckets (docs/spec/catalog.md,
// "Notifications"): every value is a record frame, sealed in an encrypted
// installation, like every resource record.
var (
	// bktNotifyPrefs: user name -> NotifyPrefs.
	bktNotifyPrefs = []byte("notify-prefs")
	// bktDigest: user name, NUL, 8-byte big-endian sequence -> one event
	// waiting for the user's daily digest (JSON, opaque to the catalog).
	bktDigest = []byte("notify-digest")
	// bktUndeliverable: 8-byte big-endian sequence -> UndeliverableRecord;
	// the newest MaxUndeliverable are kept.
	bktUndeliverable = []byte("notify-undeliverable")
)

// The notification modes of a user (NotifyPrefs.Mode).
const (
	NotifyOnFailure = "on-failure" // failed jobs, RPO misses and certification events
	NotifyAlways    = "always"     // also every job that ends well
	NotifyNever     = "never"      // nothing
)

// MaxUndeliverable is how many undeliverable notifications the catalog
// keeps; older ones are pruned as new ones arrive.
const MaxUndeliverable = 1000

// NotifyPrefs is how one user wants to be told: by email, by webhook (its
// requests signed with WebhookSecret), which events (Mode), and whether
// one daily digest replaces the single messages.
type NotifyPrefs struct {
	User          string `json:"user"`
	Email         string `json:"email,omitempty"`
	Webhook       string `json:"webhook,omitempty"`
	WebhookSecret string `json:"webhook_secret,omitempty"` // never shown; excluded from exports
	Mode          string `json:"mode"`
	Digest        bool   `json:"digest,omitempty"`
}

// MinWebhookSecret is the shortest webhook secret accepted, in bytes.
const MinWebhookSecret = 16

// Validate checks p's fields; the error names the user and the field.
func (p NotifyPrefs) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("catalog: notification preferences of %s: %w: %s", p.User, ErrInvalid, fmt.Sprintf(format, args...))
	}
	if err := checkName("user name", p.User); err != nil {
		return err
	}
	switch p.Mode {
	case NotifyOnFailure, NotifyAlways, NotifyNever:
	default:
		return bad("mode %q is not %s, %s or %s", p.Mode, NotifyOnFailure, NotifyAlways, NotifyNever)
	}
	if p.Email != "" {
		if a, err := mail.ParseAddress(p.Email); err != nil || a.Address != p.Email {
			return bad("email %q is not a plain address such as alice@example.com", p.Email)
		}
	}
	if p.Webhook != "" {
		u, err := url.Parse(p.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("webhook %q is not an http(s) URL", p.Webhook)
		}
		if len(p.WebhookSecret) < MinWebhookSecret {
			return bad("a webhook needs a secret of at least %d bytes to sign its requests, has %d", MinWebhookSecret, len(p.WebhookSecret))
		}
	}
	return nil
}

// NotifyPrefs returns the notification preferences of user; found is false
// when they have set none.
func (c *Catalog) NotifyPrefs(user string) (p NotifyPrefs, found bool, err error) {
	err = view(c.res, "catalog: notification preferences of "+user, func(tx *bbolt.Tx) error {
		found, err = c.resRecords(tx).get(bktNotifyPrefs, []byte(user), &p)
		return err
	})
	return p, found, err
}

// PutNotifyPrefs stores p, replacing the user's preferences. The user must
// exist.
func (c *Catalog) PutNotifyPrefs(p NotifyPrefs) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	return update(c.res, "catalog: put notification preferences of "+p.User, func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		if err := getUser(recs, p.User, &User{}); err != nil {
			return err
		}
		return recs.put(bktNotifyPrefs, []byte(p.User), p)
	})
}

// AppendDigest keeps event (an opaque JSON value) for user's next digest.
func (c *Catalog) AppendDigest(user string, event json.RawMessage) error {
	if err := c.writable(); err != nil {
		return err
	}
	if err := checkName("user name", user); err != nil {
		return err
	}
	return update(c.res, "catalog: append to the digest of "+user, func(tx *bbolt.Tx) error {
		seq, err := tx.Bucket(bktDigest).NextSequence()
		if err != nil {
			return err
		}
		return c.resRecords(tx).put(bktDigest, digestKey(user, seq), event)
	})
}

func digestKey(user string, seq uint64) []byte {
	k := make([]byte, 0, len(user)+9)
	k = append(append(k, user...), 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// DigestBatch is the events waiting for one user's digest, in the order
// they came; Last is the sequence of the newest, for RemoveDigests.
type DigestBatch struct {
	User   string
	Events []json.RawMessage
	Last   uint64
}

// PendingDigests returns the events waiting for digests, one batch per
// user, by user name.
func (c *Catalog) PendingDigests() ([]DigestBatch, error) {
	var out []DigestBatch
	err := view(c.res, "catalog: pending digests", func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		return recs.each(bktDigest, func(k []byte, decode func(any) error) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k)-i != 9 {
				return fmt.Errorf("catalog: %s: %w: digest key %x", recs.file, ErrCorrupt, k)
			}
			var ev json.RawMessage
			if err := decode(&ev); err != nil {
				return err
			}
			u, seq := string(k[:i]), binary.BigEndian.Uint64(k[i+1:])
			if n := len(out); n == 0 || out[n-1].User != u {
				out = append(out, DigestBatch{User: u})
			}
			b := &out[len(out)-1]
			b.Events, b.Last = append(b.Events, ev), seq
			return nil
		})
	})
	return out, err
}

// RemoveDigests deletes user's waiting digest events up to sequence
// through (DigestBatch.Last), once their digest is on its way.
func (c *Catalog) RemoveDigests(user string, through uint64) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: remove the digest of "+user, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktDigest)
		prefix := append([]byte(user), 0)
		cur := b.Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Seek(prefix) {
			if binary.BigEndian.Uint64(k[len(prefix):]) > through {
				break
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// UndeliverableRecord is a notification that did not arrive.
type UndeliverableRecord struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	User     string    `json:"user,omitempty"` // whom it was for
	Kind     string    `json:"kind"`           // the event's kind
	Event    string    `json:"event"`          // the event's id
	Target   string    `json:"target"`         // "email ADDRESS" or "webhook URL"
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
}

// AddUndeliverable stores u (its Seq is assigned) and prunes the oldest
// beyond MaxUndeliverable.
func (c *Catalog) AddUndeliverable(u UndeliverableRecord) error {
	if err := c.writable(); err != nil {
		return err
	}
	return update(c.res, "catalog: record an undeliverable notification", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktUndeliverable)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		u.Seq = seq
		u.Time = u.Time.UTC()
		if err := c.resRecords(tx).put(bktUndeliverable, binary.BigEndian.AppendUint64(nil, seq), u); err != nil {
			return err
		}
		if seq <= MaxUndeliverable {
			return nil
		}
		oldest := binary.BigEndian.AppendUint64(nil, seq-MaxUndeliverable+1)
		cur := b.Cursor()
		for k, _ := cur.First(); k != nil && bytes.Compare(k, oldest) < 0; k, _ = cur.First() {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Undeliverable lists the stored undeliverable notifications, newest
// first, at most limit (0: all).
func (c *Catalog) Undeliverable(limit int) ([]UndeliverableRecord, error) {
	var out []UndeliverableRecord
	err := view(c.res, "catalog: undeliverable notifications", func(tx *bbolt.Tx) error {
		recs := c.resRecords(tx)
		b := tx.Bucket(bktUndeliverable)
		if b == nil {
			return nil
		}
		cur := b.Cursor()
		for k, v := cur.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = cur.Prev() {
			var u UndeliverableRecord
			if err := recs.decode(bktUndeliverable, k, v, &u); err != nil {
				return err
			}
			out = append(out, u)
		}
		return nil
	})
	return out, err
}
