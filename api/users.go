package api

import (
	"context"
	"net/http"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/service"
)

func (s *API) handleListUsers(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.Users(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleAddUser(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var nu apiclient.NewUser
	if err := decodeJSON(w, r, &nu); err != nil {
		return err
	}
	if err := ss.AddUser(r.Context(), nu.Name, nu.Role, nu.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *API) handleSetPassword(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var p apiclient.Password
	if err := decodeJSON(w, r, &p); err != nil {
		return err
	}
	if err := ss.SetPassword(r.Context(), r.PathValue("name"), p.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *API) handleDisableUser(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	if err := ss.DisableUser(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *API) handleAssignOwner(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	return s.changeOwner(w, r, ss.AssignOwner)
}

func (s *API) handleUnassignOwner(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	return s.changeOwner(w, r, ss.UnassignOwner)
}

func (s *API) changeOwner(w http.ResponseWriter, r *http.Request, change func(ctx context.Context, user string, a catalog.Assignment) error) error {
	var a catalog.Assignment
	if err := decodeJSON(w, r, &a); err != nil {
		return err
	}
	if len(a.Devices)+len(a.Groups)+len(a.BackupGroups) == 0 {
		return errBadRequest("name at least one of \"devices\", \"groups\" or \"backup_groups\"")
	}
	if err := change(r.Context(), r.PathValue("user"), a); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *API) handleCreateToken(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var nt apiclient.NewToken
	if err := decodeJSON(w, r, &nt); err != nil {
		return err
	}
	tok, err := ss.CreateToken(r.Context(), nt.Name, nt.User)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apiclient.Token{Name: nt.Name, User: nt.User, Token: tok})
	return nil
}
