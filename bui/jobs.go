package bui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/grouprestore"
)

// jobsView is the jobs page's data.
type jobsView struct {
	Running, Ended []apiclient.Job
}

// maxEndedJobs is how many ended jobs the jobs page lists.
const maxEndedJobs = 50

func (u *UI) jobs(rq *request) error {
	all, err := rq.ss.Jobs(rq.r.Context())
	if err != nil {
		return err
	}
	var v jobsView
	for _, j := range all {
		if j.State.Final() {
			if len(v.Ended) < maxEndedJobs {
				v.Ended = append(v.Ended, j)
			}
			continue
		}
		v.Running = append(v.Running, j)
	}
	return u.page(rq, http.StatusOK, "jobs", "Jobs", "jobs", v)
}

// jobView is the job page's data.
type jobView struct {
	Job     apiclient.Job
	Filter  string // a device state, or "" for all
	States  []stateCount
	Devices []deviceLine
}

type stateCount struct {
	State grouprestore.State
	N     int
	Href  string
}

// deviceLine is one device of a job, its outcome explained.
type deviceLine struct {
	grouprestore.DeviceOutcome
	Plain string // the outcome in plain words
}

func (u *UI) job(rq *request) error {
	j, err := rq.ss.Job(rq.r.Context(), rq.r.PathValue("id"), true)
	if err != nil {
		return err
	}
	v := jobView{Job: j, Filter: rq.r.URL.Query().Get("state")}
	counts := map[grouprestore.State]int{}
	for _, d := range j.Devices {
		counts[d.State]++
		if v.Filter == "" || string(d.State) == v.Filter {
			v.Devices = append(v.Devices, deviceLine{DeviceOutcome: d, Plain: plainOutcome(d)})
		}
	}
	for st, n := range counts {
		v.States = append(v.States, stateCount{State: st, N: n, Href: fmt.Sprintf("/jobs/%s?state=%s", j.ID, st)})
	}
	sort.Slice(v.States, func(a, b int) bool { return v.States[a].State < v.States[b].State })
	return u.page(rq, http.StatusOK, "job", "Job "+j.ID, "jobs", v)
}

func (u *UI) cancelJob(rq *request) error {
	j, err := rq.ss.CancelJob(rq.r.Context(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	http.Redirect(rq.w, rq.r, "/jobs/"+j.ID, http.StatusSeeOther)
	return nil
}

// sseInterval is how often a job's progress is sent at most.
const sseInterval = 250 * time.Millisecond

// jobEvents streams a job's progress as Server-Sent Events ("progress",
// then one "end" when the job ends), for live.js.
func (u *UI) jobEvents(rq *request) error {
	j, err := rq.ss.JobHandle(rq.r.Context(), rq.r.PathValue("id"))
	if err != nil {
		return err
	}
	w := rq.w
	fl, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("this connection cannot stream events")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{}) // a stream outlives the write timeout
	w.WriteHeader(http.StatusOK)
	ch, stop := j.Watch(sseInterval)
	defer stop()
	var last grouprestore.Progress
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				if last.State.Final() {
					_ = writeEvent(w, fl, "end", last)
				}
				return nil
			}
			last = p
			if writeEvent(w, fl, "progress", p) != nil {
				return nil // the browser went away
			}
		case <-rq.r.Context().Done():
			return nil
		case <-u.ctx.Done():
			return nil
		}
	}
}

func writeEvent(w http.ResponseWriter, fl http.Flusher, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	fl.Flush()
	return nil
}

// plainOutcome says what a device's outcome means, for a person who is not
// a specialist; the engine's reason follows it on the page.
func plainOutcome(d grouprestore.DeviceOutcome) string {
	switch d.State {
	case grouprestore.Restored:
		return "The settings were written to the device and it confirmed them."
	case grouprestore.BackedUp:
		return "The device's settings were saved in the catalog."
	case grouprestore.Pending, grouprestore.Writing:
		return "Still in progress."
	case grouprestore.NoMatch:
		return "No backup fits this device (its manufacturer, model or place differ), so nothing was written."
	case grouprestore.Ambiguous:
		return "Two backups fit this device equally well, so nothing was written to be safe."
	case grouprestore.Unsupported:
		return "The device does not support this operation."
	case grouprestore.TagMismatch:
		return "The device no longer describes itself as it did when the job was planned, so nothing was written."
	case grouprestore.Offline:
		return "The device did not answer: it may be switched off or out of network reach."
	case grouprestore.Rejected:
		return "The device refused the settings."
	case grouprestore.Failed:
		return "It went wrong; the reason below says how."
	case grouprestore.Skipped:
		return "Not attempted: the job was stopped before reaching this device."
	}
	return "Drift check result: see the reason."
}
