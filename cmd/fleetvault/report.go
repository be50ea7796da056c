package main

import (
	"github.com/fleetvault/fleetvault/apiclient"

	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

// reportLimit is how many devices of each unsuccessful state a human report
// lists; --json lists every device.
const reportLimit = 10

// printOutcomes prints the counts and, for each state but restored, up to
// three devices with their reasons (the demo's short report).
func printOutcomes(w io.Writer, p grouprestore.Progress, devs []grouprestore.DeviceOutcome) {
	writeOutcomes(w, p, devs, 3)
}

// writeOutcomes prints the counts and, for each state in which a device did
// not end restored or backed up, up to limit devices with their reasons.
func writeOutcomes(w io.Writer, p grouprestore.Progress, devs []grouprestore.DeviceOutcome, limit int) {
	fmt.Fprintf(w, "  %s in %.1fs\n", countsLine(p.Counts), p.Elapsed.Seconds())
	byState := map[grouprestore.State][]grouprestore.DeviceOutcome{}
	for _, d := range devs {
		if d.State != grouprestore.Restored && d.State != grouprestore.BackedUp {
			byState[d.State] = append(byState[d.State], d)
		}
	}
	states := make([]string, 0, len(byState))
	for s := range byState {
		states = append(states, string(s))
	}
	sort.Strings(states)
	for _, s := range states {
		ds := byState[grouprestore.State(s)]
		sort.Slice(ds, func(i, j int) bool { return ds[i].Device < ds[j].Device })
		for _, d := range ds[:min(limit, len(ds))] {
			reason := d.Reason
			if reason == "" {
				reason = "(no reason recorded)"
			}
			fmt.Fprintf(w, "    %-10s %s: %s\n", s, d.Device, reason)
		}
		if len(ds) > limit {
			fmt.Fprintf(w, "    %-10s ... and %d more (--json lists every device)\n", s, len(ds)-limit)
		}
	}
}

// jobTitle is one line naming a job: what it does, from where to where.
func jobTitle(j apiclient.Job) string {
	switch j.Kind {
	case grouprestore.KindBackup:
		return fmt.Sprintf("backup job %s from device group %q into %q", j.ID, j.Source, j.Target)
	case grouprestore.KindUndo:
		return fmt.Sprintf("undo job %s of job %s", j.ID, j.Source)
	case grouprestore.KindDrift:
		return driftTitle(j)
	}
	if j.Device != "" {
		return fmt.Sprintf("restore job %s of backup %s (from %q) to device %s%s", j.ID, j.Piece, j.Source, j.Device, restoreNotes(j))
	}
	return fmt.Sprintf("restore job %s from %q to %q%s", j.ID, j.Source, j.Target, restoreNotes(j))
}

// writeJobReport prints a job's final (or current) report.
func writeJobReport(w io.Writer, j apiclient.Job) {
	state := string(j.State)
	if j.Reason != "" {
		state += ": " + j.Reason
	}
	fmt.Fprintf(w, "%s: %s\n", jobTitle(j), state)
	if j.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", j.Error)
	}
	p := grouprestore.Progress{Total: j.Total}
	if j.Progress != nil {
		p = *j.Progress
	}
	writeOutcomes(w, p, j.Devices, reportLimit)
}

// succeeded is the final state a device of a job of this kind should reach.
func succeeded(k grouprestore.Kind) grouprestore.State {
	switch k {
	case grouprestore.KindBackup:
		return grouprestore.BackedUp
	case grouprestore.KindDrift:
		return grouprestore.InSync
	}
	return grouprestore.Restored
}

// jobExit maps a job to the command's exit status: nil when the job is
// still going or every targeted device ended restored (backed up); exit 3
// when it ended with devices that did not; exit 1 when it failed.
func jobExit(j apiclient.Job) error {
	if j.State == grouprestore.JobFailed {
		return exitCodeError{exitError, fmt.Errorf("job %s failed: %s", j.ID, orText(j.Reason, "see the server's log"))}
	}
	if !j.State.Final() {
		return nil
	}
	ok := 0
	if j.Progress != nil {
		ok = j.Progress.Counts[succeeded(j.Kind)]
	}
	if ok == j.Total {
		return nil
	}
	return exitCodeError{exitIncomplete, fmt.Errorf("job %s ended %s: %d of %d targeted devices did not end %s (see the report)",
		j.ID, j.State, j.Total-ok, j.Total, succeeded(j.Kind))}
}

func orText(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// followJob draws j's progress on a terminal until it ends, then returns the
// job with every device's outcome.
func followJob(ctx context.Context, a *app, r remote, id string, bar bool) (apiclient.Job, error) {
	pb := newProgressBar(a.stdout)
	pb.on = pb.on && bar
	_, err := r.client.WatchJob(ctx, id, func(p grouprestore.Progress) error {
		pb.draw(p)
		return nil
	})
	pb.end()
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
			return apiclient.Job{}, fmt.Errorf("stopped following job %s; it goes on in the server: follow it with fleetvault jobs watch %s, or stop it with fleetvault jobs cancel %s", id, id, id)
		case apiclient.StatusOf(err) != 0:
			return apiclient.Job{}, r.explain(err)
		}
		return apiclient.Job{}, fmt.Errorf("lost the server while following job %s (%v); a restarted server resumes the job: follow it again with fleetvault jobs watch %s", id, err, id)
	}
	// The stream ends with the job, but its last outcomes may still be
	// committing: read until the job shows a final state.
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := r.client.Job(ctx, id, true)
		if err != nil {
			return j, r.explain(err)
		}
		if j.State.Final() || time.Now().After(deadline) {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// showFinal prints a job (JSON or report) and returns its exit status.
func showFinal(a *app, j apiclient.Job, asJSON bool) error {
	if asJSON {
		if err := writeJSON(a.stdout, j); err != nil {
			return err
		}
	} else {
		writeJobReport(a.stdout, j)
	}
	return jobExit(j)
}

// renderPlan prints a dry run: every device with what it would get.
func renderPlan(w io.Writer, p apiclient.Plan) error {
	fmt.Fprintf(w, "Dry run: restore from %q to %q (nothing written)\n", p.Source, p.Target)
	entries := append([]grouprestore.PlanEntry(nil), p.Entries...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Device < entries[j].Device })
	tw := newTable(w)
	fmt.Fprintln(tw, "DEVICE\tWOULD\tBACKUP\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Device, e.State, e.Piece, e.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := renderPlanDiffs(w, entries); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s\n", countsLine(p.Counts))
	return err
}

// planExit is 0 when every device would be restored, 3 otherwise.
func planExit(p apiclient.Plan) error {
	if n := p.Counts[grouprestore.WouldRestore]; n < len(p.Entries) {
		return exitCodeError{exitIncomplete, fmt.Errorf("dry run: %d of %d devices would not be restored (see the plan)", len(p.Entries)-n, len(p.Entries))}
	}
	return nil
}
