package api

import (
	"github.com/fleetvault/fleetvault/service"

	"github.com/fleetvault/fleetvault/apiclient"

	"errors"
	"fmt"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/fleetvault/fleetvault/catalog"
)

const maxGroupName = 256

// checkGroupName refuses names that would be unreadable or unwieldy; names
// may hold spaces ("Backup Group of Devices").
func checkGroupName(name string) error {
	switch {
	case name == "":
		return errors.New("a group name is required")
	case len(name) > maxGroupName:
		return fmt.Errorf("a group name is at most %d bytes", maxGroupName)
	case !utf8.ValidString(name):
		return errors.New("a group name must be valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("a group name may not hold control characters (%q)", name)
		}
	}
	return nil
}

func (s *API) handleListGroups(w http.ResponseWriter, r *http.Request) error {
	gs, err := s.Catalog.Groups()
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	kind := r.URL.Query().Get("kind")
	out := []apiclient.Group{}
	for _, g := range gs {
		if kind != "" && g.Kind != kind {
			continue
		}
		ids, err := s.Catalog.Members(g.Name)
		if err != nil {
			return fmt.Errorf("members of %s: %w", g.Name, err)
		}
		out = append(out, apiclient.Group{Group: g, MemberCount: len(ids)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleCreateGroup(w http.ResponseWriter, r *http.Request) error {
	var ng apiclient.NewGroup
	if err := decodeJSON(w, r, &ng); err != nil {
		return err
	}
	if err := checkGroupName(ng.Name); err != nil {
		return errBadRequest("field \"name\": %v", err)
	}
	switch ng.Kind {
	case "":
		ng.Kind = catalog.GroupDevices
	case catalog.GroupDevices, catalog.GroupBackup:
	default:
		return errBadRequest("field \"kind\" must be %q or %q, not %q", catalog.GroupDevices, catalog.GroupBackup, ng.Kind)
	}
	g := catalog.Group{Name: ng.Name, Kind: ng.Kind, Domain: ng.Domain, Category: ng.Category, Owner: ng.Owner,
		Schedule: ng.Schedule, Description: ng.Description, Optional: ng.Optional}
	if err := s.Catalog.CreateGroup(ng.Name, g); errors.Is(err, catalog.ErrExists) {
		return errConflict("group %q already exists; choose another name", ng.Name)
	} else if err != nil {
		return fmt.Errorf("create group %s: %w", ng.Name, err)
	}
	s.log.Info("group created", "group", ng.Name, "kind", ng.Kind)
	writeJSON(w, http.StatusCreated, apiclient.Group{Group: g})
	return nil
}

func (s *API) handleGetGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.group(r.PathValue("name"))
	if err != nil {
		return err
	}
	ids, err := s.Catalog.Members(g.Name)
	if err != nil {
		return fmt.Errorf("members of %s: %w", g.Name, err)
	}
	out := apiclient.Group{Group: g, MemberCount: len(ids)}
	if r.URL.Query().Get("members") == "true" {
		out.Members = ids
		if out.Members == nil {
			out.Members = []string{}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleAddMembers(w http.ResponseWriter, r *http.Request) error {
	return s.changeMembers(w, r, true)
}

func (s *API) handleRemoveMembers(w http.ResponseWriter, r *http.Request) error {
	return s.changeMembers(w, r, false)
}

func (s *API) changeMembers(w http.ResponseWriter, r *http.Request, add bool) error {
	g, err := s.group(r.PathValue("name"))
	if err != nil {
		return err
	}
	var m apiclient.Members
	if err := decodeJSON(w, r, &m); err != nil {
		return err
	}
	if len(m.Devices) == 0 {
		return errBadRequest("field \"devices\" must list at least one device id")
	}
	if add {
		for _, id := range m.Devices {
			if _, err := s.device(id); err != nil {
				return err
			}
		}
		err = s.Catalog.AddMembers(g.Name, m.Devices)
	} else {
		current, err := s.Catalog.Members(g.Name)
		if err != nil {
			return fmt.Errorf("members of %s: %w", g.Name, err)
		}
		in := map[string]bool{}
		for _, id := range current {
			in[id] = true
		}
		for _, id := range m.Devices {
			if !in[id] {
				return errNotFound("device %q is not a member of group %q%s", id, g.Name, service.Suggest(id, current))
			}
		}
		err = s.Catalog.RemoveMembers(g.Name, m.Devices)
	}
	if err != nil {
		return fmt.Errorf("change members of %s: %w", g.Name, err)
	}
	ids, err := s.Catalog.Members(g.Name)
	if err != nil {
		return fmt.Errorf("members of %s: %w", g.Name, err)
	}
	writeJSON(w, http.StatusOK, apiclient.MembersResult{Group: g.Name, Changed: m.Devices, MemberCount: len(ids)})
	return nil
}

// group looks a group up, or returns a 404 suggesting the closest name.
func (s *API) group(name string) (catalog.Group, error) {
	g, err := s.Catalog.Group(name)
	if errors.Is(err, catalog.ErrNotFound) {
		return g, errNotFound("no group %q%s", name, suggestOr(name, s.groupNames(), "; list them with GET /api/v1/groups"))
	}
	if err != nil {
		return g, fmt.Errorf("look up group %s: %w", name, err)
	}
	return g, nil
}

// members returns a device group's members, or a 404 for an unknown group.
func (s *API) members(name string) ([]string, error) {
	if _, err := s.group(name); err != nil {
		return nil, err
	}
	ids, err := s.Catalog.Members(name)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", name, err)
	}
	return ids, nil
}

func (s *API) groupNames() []string {
	gs, err := s.Catalog.Groups()
	if err != nil {
		return nil
	}
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return names
}
