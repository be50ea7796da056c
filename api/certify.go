package api

import (
	"net/http"
	"strconv"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/service"
)

func (s *API) handleGetCertification(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	c, err := ss.Certification(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *API) handleCertify(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var req apiclient.CertifyRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	c, err := ss.Certify(r.Context(), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *API) handleTestRestore(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var req apiclient.TestRestoreRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	c, err := ss.TestRestore(r.Context(), r.PathValue("id"), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// handleListCertifications reads ?state=&group=&client=&current=true&limit=.
func (s *API) handleListCertifications(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := apiclient.CertificationQuery{State: v.Get("state"), Group: v.Get("group"), Client: v.Get("client")}
	switch c := v.Get("current"); c {
	case "", "false":
	case "true":
		q.Current = true
	default:
		return errBadRequest("query parameter \"current\" must be true or false, not %q", c)
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > service.MaxCertLimit {
			return errBadRequest("query parameter \"limit\" must be a number from 1 to %d, not %q", service.MaxCertLimit, l)
		}
		q.Limit = n
	}
	out, err := ss.Certifications(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleGroupCertification(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.GroupCertification(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleListCertPolicies(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	out, err := ss.CertificationPolicies(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handlePutCertPolicy(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var p apiclient.CertPolicy
	if err := decodeJSON(w, r, &p); err != nil {
		return err
	}
	cat := r.PathValue("category")
	if p.Category != "" && p.Category != cat {
		return errBadRequest("field \"category\" is %q but the path names category %q", p.Category, cat)
	}
	p.Category = cat
	out, err := ss.SetCertificationPolicy(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleUpdateDevice(ss *service.Session, w http.ResponseWriter, r *http.Request) error {
	var u apiclient.DeviceUpdate
	if err := decodeJSON(w, r, &u); err != nil {
		return err
	}
	out, err := ss.UpdateDevice(r.Context(), r.PathValue("id"), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
