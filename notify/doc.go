// Package notify tells people what they need to know about their backups:
// a job failed or was aborted, a device missed its recovery point
// objective, a backup awaits certification, was refused certification, or
// its certification lapsed. Events are rendered to a subject and a
// plain-text body and delivered by email (SMTP) or webhook, off the
// caller's path, with retries.
//
// # Basics
//
// An Event has a Kind and the fields that kind needs (Event.Validate).
// Renderer turns it into a Message with the text/template files in
// templates/, one per kind (testdata/*.golden shows each; refresh them with
// go test ./notify -run TestRenderGolden -args -update).
//
// Two channels:
//
//   - Email sends over SMTP through github.com/wneessen/go-mail, always
//     with STARTTLS (a server without it is an error) and, given a
//     username, SMTP AUTH with the strongest mechanism the server offers.
//   - Webhook POSTs the event as JSON (the Event's fields, rpo_seconds, and
//     the rendered subject and text) with three headers: Fleetvault-Event
//     (the kind), Fleetvault-Delivery (the event id, the same on every
//     retry, for deduplication) and Fleetvault-Signature:
//     "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">" keyed with a
//     shared secret. Receivers check it with Verify (or their own HMAC) and
//     refuse a timestamp more than a few minutes off, so a captured request
//     cannot be replayed later.
//
// A Notifier ties them together: Notify validates and renders an event and
// queues one delivery per Target (an email address or a webhook URL),
// never blocking; Run's workers deliver. A failed try is retried with
// exponential backoff and jitter (Options.Attempts, BaseDelay, MaxDelay); a
// webhook's 4xx answer other than 408 and 429 is final. A delivery that
// does not arrive is handed to the caller's Recorder as Undeliverable.
//
//	n, err := notify.New(notify.Options{Email: mail, Webhook: hook, Recorder: store, Logger: log})
//	go n.Run(ctx)
//	err = n.Notify(notify.Event{Kind: notify.RPOMissed, Time: now, Device: "home1", RPO: 26 * time.Hour},
//		notify.Target{Email: "owner@example.com"}, notify.Target{Webhook: "https://chat.example.com/hook"})
//
// # Caveats
//
// The queue is bounded (Options.QueueSize): when it is full, Notify drops
// the delivery, logs a warning and counts it in Stats.Dropped; it never
// blocks the job that reported the event. Deliveries are kept in memory
// only: when Run's context ends, what is still queued or waiting for a
// retry is recorded as undeliverable, not sent after a restart; what
// Notify queues after Run returned is never sent.
//
// A worker retries one delivery until it arrives or gives up, so a dead
// receiver holds a worker for the whole backoff (with the defaults, six
// tries over about a minute); Options.Workers sets how many run at once.
//
// Email is sent one message per recipient; who is told about what (per
// user: on failure, always, never; daily digests) is the caller's choice.
package notify
