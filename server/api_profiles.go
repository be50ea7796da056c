package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// GroupProfile is the body of PUT /groups/{name}/profile: the profile a
// backup group's restores use by default ("" detaches it).
type GroupProfile struct {
	Group   string `json:"group,omitempty"`
	Profile string `json:"profile"`
}

func (s *Server) handleListProfiles(w http.ResponseWriter, _ *http.Request) error {
	ps, err := s.Catalog.Profiles()
	if err != nil {
		return fmt.Errorf("list profiles: %w", err)
	}
	if ps == nil {
		ps = []settingsdoc.Profile{}
	}
	writeJSON(w, http.StatusOK, ps)
	return nil
}

func (s *Server) handleGetProfile(w http.ResponseWriter, r *http.Request) error {
	p, err := s.profile(r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) handlePutProfile(w http.ResponseWriter, r *http.Request) error {
	var p settingsdoc.Profile
	if err := decodeJSON(w, r, &p); err != nil {
		return err
	}
	name := r.PathValue("name")
	if p.Name != "" && p.Name != name {
		return errBadRequest("field \"name\" is %q but the path names profile %q", p.Name, name)
	}
	p.Name = name
	if err := s.Catalog.PutProfile(p); errors.Is(err, settingsdoc.ErrProfile) {
		return errBadRequest("%v", err)
	} else if err != nil {
		return fmt.Errorf("store profile %s: %w", name, err)
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) handleAttachProfile(w http.ResponseWriter, r *http.Request) error {
	var gp GroupProfile
	if err := decodeJSON(w, r, &gp); err != nil {
		return err
	}
	gp.Group = r.PathValue("name")
	if gp.Profile != "" {
		if _, err := s.profile(gp.Profile); err != nil {
			return err
		}
	}
	if err := s.Catalog.AttachProfile(gp.Group, gp.Profile); err != nil {
		return fmt.Errorf("attach profile %q to %s: %w", gp.Profile, gp.Group, err)
	}
	writeJSON(w, http.StatusOK, gp)
	return nil
}

// profile returns a profile by name, or a 404 that suggests a near name.
func (s *Server) profile(name string) (settingsdoc.Profile, error) {
	p, err := s.Catalog.Profile(name)
	if errors.Is(err, catalog.ErrNotFound) {
		var names []string
		if ps, lerr := s.Catalog.Profiles(); lerr == nil {
			for _, q := range ps {
				names = append(names, q.Name)
			}
		}
		return p, errNotFound("no profile %q%s", name, suggestOr(name, names, "; create it with fleetvault profile set (PUT /api/v1/profiles/{name})"))
	}
	return p, err
}

// jobProfile resolves the profile of a restore: the one the request names,
// else the one attached to its backup group, else none. NoProfile skips the
// group's.
func (s *Server) jobProfile(nj NewJob) (*settingsdoc.Profile, error) {
	switch {
	case nj.Profile != "" && nj.NoProfile:
		return nil, errBadRequest("fields \"profile\" and \"no_profile\" exclude each other")
	case nj.Profile != "":
		p, err := s.profile(nj.Profile)
		if err != nil {
			return nil, err
		}
		return &p, nil
	case nj.NoProfile:
		return nil, nil
	}
	p, err := s.Catalog.GroupProfile(nj.Source)
	if err != nil {
		return nil, fmt.Errorf("the profile of backup group %s: %w", nj.Source, err)
	}
	if p.Name == "" {
		return nil, nil
	}
	return &p, nil
}
