package api

import (
	"net/http"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
)

func (s *API) handleListSchedules(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.Schedules(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleAddSchedule(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var ns apiclient.NewSchedule
	if err := decodeJSON(w, r, &ns); err != nil {
		return err
	}
	out, err := ss.AddSchedule(r.Context(), ns)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *API) handleGetSchedule(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.Schedule(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleRemoveSchedule(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	if err := ss.RemoveSchedule(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *API) handleRunSchedule(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.RunSchedule(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handlePrunePreview(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.PrunePreview(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleRPO(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.RPO(r.Context(), r.URL.Query().Get("group"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
