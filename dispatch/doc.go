// Package dispatch decides who is told what: it is the installation's
// event sink (service.EventSink). It routes each event to the people it
// concerns, applies each person's notification preferences, and hands the
// deliveries to a notify.Notifier; it also writes the history of job
// outcomes that `fleetvault stats` sums.
//
// # Basics
//
// Who is concerned by an event: the data owner of its device, group or
// backup (catalog.Device.Owner, catalog.Group.Owner, notify.Event.Owner);
// and the admins for a backup refused certification (NotCertified) and for
// a failed job that touched a device without an owner. Each person's
// preferences (catalog.NotifyPrefs) say how: mode never (nothing),
// on-failure (failed jobs, RPO misses and certification events) or always
// (also jobs that ended well); email and/or a webhook signed with their own
// secret; and digest: their events are kept in the resource database and
// sent as one message a day at Options.DigestHour (UTC), so a restart
// loses none.
//
// Sink.Job watches a job; when it ends, the sink records one history
// delta per device (JobHistory, catalog.RecordHistory) and tells each
// person concerned once per job, however many devices it touched.
//
// Undeliverable deliveries (notify.Recorder) are kept in the catalog
// (catalog.AddUndeliverable, the newest catalog.MaxUndeliverable).
//
// # Caveats
//
// Event never blocks: events wait in a bounded queue (Options.QueueSize)
// for Run; when it is full an event is dropped, logged and counted
// (Stats.Dropped). A digest hour missed while the server was down sends
// the waiting events at the next one.
package dispatch
