package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The webhook's headers.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex>": v1 is the
	// HMAC-SHA256, keyed with the shared secret, of "<t>.<body>".
	SignatureHeader = "Fleetvault-Signature"
	EventHeader     = "Fleetvault-Event"    // the event's kind
	DeliveryHeader  = "Fleetvault-Delivery" // the event's id: the same on every retry
)

// ErrSignature: a webhook request's signature is missing, malformed, wrong
// or too old (Verify).
var ErrSignature = errors.New("bad webhook signature")

// errPermanent marks a failure that a retry cannot fix (a 4xx answer).
var errPermanent = errors.New("permanent failure")

// WebhookOptions configure the webhook channel.
type WebhookOptions struct {
	// Secret is the HMAC key shared with the receivers (at least 16
	// bytes), for targets that carry no secret of their own (Target.Secret);
	// empty: every target must carry one.
	Secret []byte
	Client *http.Client // nil: a client with a 30 s timeout
	Now    func() time.Time
}

// Webhook posts events as JSON, signed with HMAC-SHA256 over the body and
// a timestamp, so a receiver can check who sent it and refuse replays.
type Webhook struct {
	opts WebhookOptions
}

// NewWebhook checks opts and returns the channel.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	if len(opts.Secret) > 0 && len(opts.Secret) < minSecret {
		return nil, fmt.Errorf("notify: webhook: %w: the secret must have at least 16 bytes, has %d", ErrInvalid, len(opts.Secret))
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Webhook{opts: opts}, nil
}

// webhookBody is the JSON a receiver gets: the event, its rendered subject
// and text, and the RPO in seconds.
type webhookBody struct {
	Event
	RPOSeconds int64  `json:"rpo_seconds,omitempty"`
	Subject    string `json:"subject"`
	Text       string `json:"text"`
}

// checkURL accepts absolute http and https URLs.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("notify: webhook: %w: %q is not an http(s) URL", ErrInvalid, raw)
	}
	return nil
}

// minSecret is the shortest HMAC key accepted, in bytes.
const minSecret = 16

// Send posts e (rendered as msg) to target once, signed with the channel's
// secret. A 2xx answer is success; 4xx other than 408 and 429 is a
// permanent failure (not worth a retry).
func (w *Webhook) Send(ctx context.Context, target string, e Event, msg Message) error {
	return w.SendSigned(ctx, target, nil, e, msg)
}

// SendSigned is Send signing with secret, or with the channel's secret
// when secret is empty.
func (w *Webhook) SendSigned(ctx context.Context, target string, secret []byte, e Event, msg Message) error {
	if err := checkURL(target); err != nil {
		return err
	}
	if len(secret) == 0 {
		secret = w.opts.Secret
	}
	if len(secret) < minSecret {
		return fmt.Errorf("notify: webhook %s: %w: no signing secret of at least %d bytes", target, ErrInvalid, minSecret)
	}
	body, err := json.Marshal(webhookBody{Event: e, RPOSeconds: int64(e.RPO / time.Second), Subject: msg.Subject, Text: msg.Body})
	if err != nil {
		return fmt.Errorf("notify: webhook: encode %s event: %w", e.Kind, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: webhook %s: %w", target, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fleetvault-notify")
	req.Header.Set(EventHeader, string(e.Kind))
	req.Header.Set(DeliveryHeader, e.ID)
	req.Header.Set(SignatureHeader, Sign(secret, w.opts.Now(), body))
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("notify: webhook %s: %w", target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		return fmt.Errorf("notify: webhook %s answered %s: %w", target, resp.Status, errPermanent)
	default:
		return fmt.Errorf("notify: webhook %s answered %s", target, resp.Status)
	}
}

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a SignatureHeader value against body, for receivers: the
// HMAC must match and the timestamp be within tolerance of now (either
// way), so a captured request cannot be replayed later. A receiver should
// also drop a DeliveryHeader it has seen within tolerance.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("notify: %w: header %q lacks t= or v1=", ErrSignature, header)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || subtle.ConstantTimeCompare(got, mac(secret, ts, body)) != 1 {
		return fmt.Errorf("notify: %w: signature does not match the body", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("notify: %w: signed at %v, %v away from now (tolerance %v)", ErrSignature, time.Unix(sec, 0).UTC(), d, tolerance)
	}
	return nil
}
