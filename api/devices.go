package api

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
)

func (s *API) handleListDevices(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	q := service.DeviceQuery{Group: r.URL.Query().Get("group"), After: r.URL.Query().Get("after")}
	if l := r.URL.Query().Get("limit"); l != "" {
		var err error
		if q.Limit, err = strconv.Atoi(l); err != nil || q.Limit < 1 {
			return errBadRequest("query parameter \"limit\" must be a positive count, not %q", l)
		}
	}
	out, err := ss.ListDevices(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleAddDevices(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r, maxImportBody)
	if err != nil {
		return err
	}
	var nds []apiclient.NewDevice
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var one apiclient.NewDevice
		if err := decodeStrict(b, &one); err != nil {
			return err
		}
		nds = []apiclient.NewDevice{one}
	} else if err := decodeStrict(b, &nds); err != nil {
		return err
	}
	res, err := ss.AddDevices(r.Context(), nds, r.URL.Query().Get("replace") == "true")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (s *API) handleGetDevice(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	limit := 10
	if l := r.URL.Query().Get("restores"); l != "" {
		var err error
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 {
			return errBadRequest("query parameter \"restores\" must be a count, not %q", l)
		}
	}
	v, err := ss.DeviceDetail(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *API) handleDeleteDevice(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	if err := ss.DeleteDevice(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
