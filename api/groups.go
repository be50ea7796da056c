package api

import (
	"context"
	"net/http"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
)

func (s *API) handleListGroups(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.ListGroups(r.Context(), r.URL.Query().Get("kind"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleCreateGroup(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var ng apiclient.NewGroup
	if err := decodeJSON(w, r, &ng); err != nil {
		return err
	}
	g, err := ss.CreateGroup(r.Context(), ng)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, g)
	return nil
}

func (s *API) handleGetGroup(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	g, err := ss.Group(r.Context(), r.PathValue("name"), r.URL.Query().Get("members") == "true")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *API) handleAddMembers(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	return s.changeMembers(w, r, ss.AddMembers)
}

func (s *API) handleRemoveMembers(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	return s.changeMembers(w, r, ss.RemoveMembers)
}

func (s *API) changeMembers(w http.ResponseWriter, r *http.Request, change func(ctx context.Context, group string, ids []string) (apiclient.MembersResult, error)) error {
	var m apiclient.Members
	if err := decodeJSON(w, r, &m); err != nil {
		return err
	}
	res, err := change(r.Context(), r.PathValue("name"), m.Devices)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
