package api

import (
	"context"
	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"

	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fleetvault/fleetvault/grouprestore"
)

func (s *API) handleListJobs(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.ListJobs(r.Context(), r.URL.Query().Get("state"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleStartJob(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var nj apiclient.NewJob
	if err := decodeJSON(w, r, &nj); err != nil {
		return err
	}
	if nj.DryRun {
		p, err := ss.PlanJob(r.Context(), nj)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
	// The request's context bounds only the planning; the job itself runs in
	// the engine's context and outlives the request.
	out, err := ss.StartJob(r.Context(), nj)
	if err != nil {
		return err
	}
	w.Header().Set("Location", APIPrefix+"/jobs/"+out.ID)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *API) handleGetJob(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.Job(r.Context(), r.PathValue("id"), r.URL.Query().Get("devices") == "true")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleCancelJob(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, ss.CancelJob)
}

func (s *API) handlePauseJob(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, ss.PauseJob)
}

func (s *API) handleResumeJob(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	return s.controlJob(w, r, ss.ResumeJob)
}

// controlJob applies a control and answers with the job as it then stands.
func (s *API) controlJob(w http.ResponseWriter, r *http.Request, control func(context.Context, string) (apiclient.Job, error)) error {
	out, err := control(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// SSE: progress at most every sseInterval, then one end event.
const sseInterval = 250 * time.Millisecond

func (s *API) handleJobEvents(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	j, err := ss.JobHandle(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("this connection cannot stream events")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	// A stream outlives a server's write timeout: lift it for this answer.
	// (Not every ResponseWriter can; then there is no deadline to lift.)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	ch, stop := j.Watch(sseInterval)
	defer stop()
	var last grouprestore.Progress
	seq := 0
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				if !last.State.Final() {
					// The engine stopped (the server is shutting down) and the job
					// stays resumable: close without an end event, so a client
					// knows to watch again rather than think the job ended.
					return nil
				}
				return writeEvent(w, fl, "end", seq, last)
			}
			last = p
			if err := writeEvent(w, fl, "progress", seq, p); err != nil {
				return nil // the client went away
			}
			seq++
		case <-r.Context().Done():
			return nil
		case <-s.ctx.Done():
			return nil // the server is closing
		}
	}
}

// writeEvent writes one Server-Sent Event with a JSON data line.
func writeEvent(w http.ResponseWriter, fl http.Flusher, event string, id int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: %s\nid: %d\ndata: %s\n\n", event, id, b); err != nil {
		return err
	}
	fl.Flush()
	return nil
}
