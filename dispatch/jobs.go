package dispatch

import (
	"fmt"
	"strings"
	"time"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/grouprestore"
	"github.com/fleetvault/fleetvault/notify"
)

// Job watches j: when it ends, its outcomes go into the history and the
// people concerned are told, once each. Watching a job twice does nothing.
// Only backup and restore jobs are counted and told about.
func (s *Sink) Job(j *grouprestore.Job) {
	k := j.Spec().Kind
	if k != grouprestore.KindBackup && k != grouprestore.KindRestore {
		return
	}
	s.mu.Lock()
	if s.watched[j.ID()] {
		s.mu.Unlock()
		return
	}
	s.watched[j.ID()] = true
	s.jobs.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.jobs.Done()
		select {
		case <-s.stop:
			return // the journal resumes it at the next start; it is watched then
		case <-j.Done():
		}
		s.jobEnded(j.Spec(), j.Progress(), j.Devices())
		s.mu.Lock()
		delete(s.watched, j.ID())
		s.mu.Unlock()
	}()
}

// jobEnded records the job's history and tells the people concerned.
func (s *Sink) jobEnded(spec grouprestore.Spec, p grouprestore.Progress, outs []grouprestore.DeviceOutcome) {
	deltas := JobHistory(spec.Kind, p.Started, outs, s.pieceSize)
	if err := s.cat.RecordHistory(deltas); err != nil {
		s.log.Error("history: record a job's outcomes", "job", p.Job, "err", err)
	}
	e, failed := jobEvent(spec, p, outs, s.opts.Now())
	people, unowned := s.jobPeople(spec, outs)
	if failed && unowned {
		s.addAdmins(people)
	}
	s.tell(sorted(people), e)
}

func (s *Sink) pieceSize(id string) int64 {
	p, err := s.cat.Piece(id)
	if err != nil {
		s.log.Warn("history: size of a backup", "piece", id, "err", err)
		return 0
	}
	return p.Size
}

// succeeded: the device was backed up, or restored and verified.
func succeeded(st grouprestore.State) bool {
	return st == grouprestore.BackedUp || st == grouprestore.Restored
}

// attempted: the device has a final outcome other than skipped.
func attempted(st grouprestore.State) bool {
	return st.Final() && st != grouprestore.Skipped
}

// JobHistory is what a job of kind, started at start, adds to the history:
// one delta per device attempted, on the day (UTC) of its outcome. size
// gives a backed-up piece's size in bytes. A restore's duration is from the
// job's start to the device's outcome. Kinds other than backup and restore
// add nothing.
func JobHistory(kind grouprestore.Kind, start time.Time, outs []grouprestore.DeviceOutcome, size func(piece string) int64) []catalog.HistoryRecord {
	hk := map[grouprestore.Kind]string{grouprestore.KindBackup: catalog.HistoryBackup, grouprestore.KindRestore: catalog.HistoryRestore}[kind]
	if hk == "" {
		return nil
	}
	var out []catalog.HistoryRecord
	for _, o := range outs {
		if !attempted(o.State) {
			continue
		}
		at := start
		if o.Time != 0 {
			at = time.UnixMilli(o.Time)
		}
		h := catalog.HistoryRecord{Day: at.UTC().Format(catalog.DayLayout), Kind: hk, Device: o.Device, Attempts: 1}
		if succeeded(o.State) {
			h.Successes = 1
		} else {
			h.Failures = 1
		}
		if hk == catalog.HistoryBackup && h.Successes == 1 && o.Piece != "" {
			h.Bytes = size(o.Piece)
		}
		if hk == catalog.HistoryRestore {
			h.RestoreMSSum = max(0, at.Sub(start).Milliseconds())
			h.RestoreMSMax = h.RestoreMSSum
		}
		out = append(out, h)
	}
	return out
}

// jobEvent is the one event a job's end makes: JobFailed when the job
// failed or was aborted or a device failed, else JobCompleted.
func jobEvent(spec grouprestore.Spec, p grouprestore.Progress, outs []grouprestore.DeviceOutcome, now time.Time) (notify.Event, bool) {
	counts := map[grouprestore.State]int{}
	failedDevs := 0
	var firstFailure string
	for _, o := range outs {
		if attempted(o.State) && !succeeded(o.State) {
			failedDevs++
			counts[o.State]++
			if firstFailure == "" {
				firstFailure = o.String()
			}
		}
	}
	e := notify.Event{ID: notify.NewID(), Kind: notify.JobCompleted, Time: now, Job: p.Job, Outcome: string(p.State),
		Failed: failedDevs, Total: len(outs), Group: backupGroup(spec), Schedule: spec.Schedule}
	failed := p.State == grouprestore.JobFailed || p.State == grouprestore.JobAborted || failedDevs > 0
	if !failed {
		return e, false
	}
	e.Kind, e.Outcome = notify.JobFailed, "failed"
	if p.State == grouprestore.JobAborted {
		e.Outcome = "aborted"
	}
	var parts []string
	if p.Reason != "" {
		parts = append(parts, p.Reason+".")
	}
	if failedDevs > 0 {
		parts = append(parts, fmt.Sprintf("%s. First: %s.", summarize(counts), firstFailure))
	}
	e.Detail = strings.Join(parts, " ")
	return e, true
}

// backupGroup is the backup group a job writes or reads.
func backupGroup(spec grouprestore.Spec) string {
	if spec.Kind == grouprestore.KindBackup {
		return spec.Target
	}
	return spec.Source
}

// summarize writes failure counts as "2 offline, 1 rejected".
func summarize(counts map[grouprestore.State]int) string {
	var parts []string
	for _, st := range grouprestore.FinalStates {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

// jobPeople are the owners of the job's groups and devices; unowned
// reports a failed device without an owner.
func (s *Sink) jobPeople(spec grouprestore.Spec, outs []grouprestore.DeviceOutcome) (map[string]bool, bool) {
	people := map[string]bool{}
	for _, name := range []string{spec.Source, spec.Target} {
		if name == "" {
			continue
		}
		if g, err := s.cat.Group(name); err == nil && g.Owner != "" {
			people[g.Owner] = true
		}
	}
	failed := make(map[string]bool, len(outs))
	inJob := make(map[string]bool, len(outs))
	for _, o := range outs {
		inJob[o.Device] = true
		if attempted(o.State) && !succeeded(o.State) {
			failed[o.Device] = true
		}
	}
	owned := map[string]bool{}
	err := s.cat.Devices(func(d catalog.Device) error {
		if inJob[d.ID] && d.Owner != "" {
			people[d.Owner] = true
			owned[d.ID] = true
		}
		return nil
	})
	if err != nil {
		s.log.Error("notifications: owners of a job's devices", "err", err)
	}
	unowned := false
	for id := range failed {
		if !owned[id] {
			unowned = true
			break
		}
	}
	return people, unowned
}
