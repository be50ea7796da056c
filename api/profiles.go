package api

import (
	"net/http"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

func (s *API) handleListProfiles(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	ps, err := ss.Profiles(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ps)
	return nil
}

func (s *API) handleGetProfile(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	p, err := ss.Profile(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *API) handlePutProfile(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var p settingsdoc.Profile
	if err := decodeJSON(w, r, &p); err != nil {
		return err
	}
	name := r.PathValue("name")
	if p.Name != "" && p.Name != name {
		return errBadRequest("field \"name\" is %q but the path names profile %q", p.Name, name)
	}
	p.Name = name
	out, err := ss.PutProfile(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleAttachProfile(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var gp apiclient.GroupProfile
	if err := decodeJSON(w, r, &gp); err != nil {
		return err
	}
	out, err := ss.AttachProfile(r.Context(), r.PathValue("name"), gp.Profile)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleRemediate starts the restores that bring a finished drift job's
// drifted devices back (POST /api/v1/jobs/{id}/remediate): 201 with them,
// or 200 with none when nothing drifted.
func (s *API) handleRemediate(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.RemediateJob(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if len(out) > 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
	return nil
}
