// Package schedule runs backup schedules: cron expressions parsed with
// github.com/robfig/cron/v3, driven by one loop with an injectable clock,
// each schedule's next run persisted so a restart neither skips nor doubles
// a run; and recovery point objectives (RPO) checked per device.
//
// # Basics
//
// Parse reads a standard five-field expression ("*/15 * * * *",
// "0 3 * * MON-FRI") or a descriptor ("@daily", "@every 6h"), evaluated in
// UTC unless prefixed with CRON_TZ=Zone. A bad expression gives a
// *ParseError naming the field ("minute", "hour", ...).
//
// New makes a Loop from a Store (where next runs live: catalog.Catalog
// keeps them in the resource database), a RunFunc (what a run does) and a
// Clock; Set gives it the schedules and Run drives them all until its
// context ends:
//
//	loop, err := schedule.New(schedule.Options{Store: cat, Run: backupThenPrune, Logger: log})
//	err = loop.Set([]schedule.Spec{{Name: "nightly", Cron: c}})
//	go loop.Run(ctx)
//
// For each schedule the store holds the next slot to run. When the clock
// reaches it, the loop first records the schedule's following slot (the
// first one after now), then calls RunFunc with Run{Schedule, Slot}. So:
//
//   - a schedule runs each slot once, at the slot's time;
//   - a loop restarted on the same store resumes from the stored slot: a
//     slot that passed while it was down runs once, none runs twice;
//   - after downtime that spans several slots, the oldest missed slot runs
//     once, marked CatchUp, and the rest are folded into it; then the
//     normal cadence resumes;
//   - a schedule new to the store first runs at its first slot after now.
//
// CheckRPO compares the age of each device's last successful backup with an
// objective and returns an RPOStatus per device (met or missed), the figure
// a metrics exporter publishes and a notifier reports.
//
// # Caveats
//
// RunFunc is called from the loop's goroutine, one run at a time: it should
// start a job and return. A slow RunFunc delays other schedules' runs (each
// still runs once, late), never drops them.
//
// The following slot is recorded before RunFunc runs: after a crash during
// a run, the loop does not repeat it (at most once). The run's Schedule and
// Slot identify it, so the job engine can key the job on them and resume it
// from its journal.
//
// One loop per store: two loops on the same resource database would each
// run every slot. A changed cron expression keeps the stored next slot only
// if the catalog kept it (catalog.PutSchedule resets it when the expression
// changes). The loop wakes at least once a day even with no schedules, and
// retries a failing store every Options.RetryDelay (default a minute); a
// schedule does not run until its next slot is recorded.
package schedule
