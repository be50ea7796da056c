package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
)

// ListGroups lists the groups of kind ("" every kind) the caller may see,
// with their member counts.
func (ss *Session) ListGroups(_ context.Context, kind string) ([]apiclient.Group, error) {
	gs, counts, err := ss.s.cat.GroupsWithCounts()
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	out := []apiclient.Group{}
	for _, g := range gs {
		if (kind != "" && g.Kind != kind) || !ss.id.ownsGroup(g) {
			continue
		}
		out = append(out, apiclient.Group{Group: g, MemberCount: counts[g.Name]})
	}
	return out, nil
}

// Groups lists every group the caller may see, as the client does.
func (ss *Session) Groups(ctx context.Context) ([]apiclient.Group, error) {
	return ss.ListGroups(ctx, "")
}

// CreateGroup creates a device group (the default) or a backup group. Only
// an admin or an operator may.
func (ss *Session) CreateGroup(_ context.Context, ng apiclient.NewGroup) (apiclient.Group, error) {
	var out apiclient.Group
	err := ss.audited("group.create", []string{ng.Name}, func() error {
		if err := ss.id.requireManage("create groups"); err != nil {
			return err
		}
		if err := CheckName("group", ng.Name); err != nil {
			return &FieldError{Field: "name", Problem: err.Error()}
		}
		switch ng.Kind {
		case "":
			ng.Kind = catalog.GroupDevices
		case catalog.GroupDevices, catalog.GroupBackup:
		default:
			return &FieldError{Field: "kind", Problem: fmt.Sprintf("must be %q or %q, not %q", catalog.GroupDevices, catalog.GroupBackup, ng.Kind)}
		}
		g := catalog.Group{Name: ng.Name, Kind: ng.Kind, Domain: ng.Domain, Category: ng.Category, Owner: ng.Owner,
			Schedule: ng.Schedule, Description: ng.Description, Optional: ng.Optional}
		if err := ss.s.cat.CreateGroup(ng.Name, g); errors.Is(err, catalog.ErrExists) {
			return errorf(ErrConflict, "group %q already exists; choose another name", ng.Name)
		} else if err != nil {
			return fmt.Errorf("create group %s: %w", ng.Name, err)
		}
		ss.s.log.Info("group created", "group", ng.Name, "kind", ng.Kind, "user", ss.id.User)
		out = apiclient.Group{Group: g}
		return nil
	})
	return out, err
}

// Group returns a group the caller may see, with its member ids when
// members (an owner sees only their own devices among them).
func (ss *Session) Group(_ context.Context, name string, members bool) (apiclient.Group, error) {
	g, ms, err := ss.groupMembers(name)
	if err != nil {
		return apiclient.Group{}, err
	}
	out := apiclient.Group{Group: g, MemberCount: len(ms)}
	if members {
		out.Members = []string{}
		for _, m := range ms {
			if !ss.id.owner() || (m.Found && ss.id.ownsDevice(m.Device)) {
				out.Members = append(out.Members, m.ID)
			}
		}
	}
	return out, nil
}

// AddMembers adds existing devices to a group. Only an admin or an operator
// may.
func (ss *Session) AddMembers(_ context.Context, group string, ids []string) (apiclient.MembersResult, error) {
	return ss.changeMembers("group.members.add", group, ids, func(g catalog.Group, _ []catalog.Member) error {
		for _, id := range ids {
			if err := checkDeviceID(id); err != nil {
				return errorf(ErrInvalid, "device %q: %v", id, err)
			}
			if _, err := ss.device(id); err != nil {
				return err
			}
		}
		return ss.s.cat.AddMembers(g.Name, ids)
	})
}

// RemoveMembers removes devices from a group; each must be a member. Only an
// admin or an operator may.
func (ss *Session) RemoveMembers(_ context.Context, group string, ids []string) (apiclient.MembersResult, error) {
	return ss.changeMembers("group.members.remove", group, ids, func(g catalog.Group, current []catalog.Member) error {
		in := map[string]bool{}
		names := make([]string, len(current))
		for i, m := range current {
			in[m.ID] = true
			names[i] = m.ID
		}
		for _, id := range ids {
			if !in[id] {
				return errorf(ErrNotFound, "device %q is not a member of group %q%s", id, g.Name, Suggest(id, names))
			}
		}
		return ss.s.cat.RemoveMembers(g.Name, ids)
	})
}

// changeMembers authorizes and audits a membership change made by change.
func (ss *Session) changeMembers(action, group string, ids []string, change func(catalog.Group, []catalog.Member) error) (apiclient.MembersResult, error) {
	var out apiclient.MembersResult
	err := ss.audited(action, append([]string{group}, ids...), func() error {
		g, current, err := ss.groupMembers(group)
		if err != nil {
			return err
		}
		if err := ss.id.requireManage("change group members"); err != nil {
			return err
		}
		if len(ids) == 0 {
			return &FieldError{Field: "devices", Problem: "must list at least one device id"}
		}
		if err := change(g, current); err != nil {
			return err
		}
		n, err := ss.s.cat.Members(g.Name)
		if err != nil {
			return fmt.Errorf("members of %s: %w", g.Name, err)
		}
		out = apiclient.MembersResult{Group: g.Name, Changed: ids, MemberCount: len(n)}
		return nil
	})
	return out, err
}

// groupMembers returns a group the caller may see and its members, read in
// one transaction, or ErrNotFound suggesting the closest name they may see.
func (ss *Session) groupMembers(name string) (catalog.Group, []catalog.Member, error) {
	g, ms, err := ss.s.cat.GroupMembers(name)
	if err == nil && !ss.id.ownsGroup(g) {
		err = catalog.ErrNotFound
	}
	if errors.Is(err, catalog.ErrNotFound) {
		return g, nil, errorf(ErrNotFound, "no group %q%s", name, suggestOr(name, ss.groupNames(), "; list them with GET /api/v1/groups"))
	}
	if err != nil {
		return g, nil, fmt.Errorf("look up group %s: %w", name, err)
	}
	return g, ms, nil
}

// groupNames lists the groups the caller may see, for suggestions.
func (ss *Session) groupNames() []string {
	gs, err := ss.s.cat.Groups()
	if err != nil {
		return nil
	}
	var names []string
	for _, g := range gs {
		if ss.id.ownsGroup(g) {
			names = append(names, g.Name)
		}
	}
	return names
}

// checkOwner requires owner to be a user with the owner role.
func (ss *Session) checkOwner(owner string) error {
	u, err := ss.s.cat.User(owner)
	if errors.Is(err, catalog.ErrNotFound) {
		return errorf(ErrNotFound, "no user %q; add one with fleetvault user add %s --role owner", owner, owner)
	}
	if err != nil {
		return fmt.Errorf("look up user %s: %w", owner, err)
	}
	if u.Role != RoleOwner {
		return errorf(ErrInvalid, "user %q has role %s; only a user with role owner can be a data owner", owner, u.Role)
	}
	return nil
}
