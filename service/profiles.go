package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/fleetvault/fleetvault/apiclient"
	"github.com/fleetvault/fleetvault/catalog"
	"github.com/fleetvault/fleetvault/settingsdoc"
)

// Restore profiles say which parts of each device's settings a restore
// writes (package settingsdoc). Everyone signed in may read them: they hold
// no settings, only the rules; admins and operators create them and attach
// them to backup groups.

// Profiles lists every restore profile.
func (ss *Session) Profiles(_ context.Context) ([]settingsdoc.Profile, error) {
	ps, err := ss.s.cat.Profiles()
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	if ps == nil {
		ps = []settingsdoc.Profile{}
	}
	return ps, nil
}

// Profile returns one restore profile, or ErrNotFound suggesting a near name.
func (ss *Session) Profile(_ context.Context, name string) (settingsdoc.Profile, error) {
	p, err := ss.s.cat.Profile(name)
	if errors.Is(err, catalog.ErrNotFound) {
		var names []string
		if ps, lerr := ss.s.cat.Profiles(); lerr == nil {
			for _, q := range ps {
				names = append(names, q.Name)
			}
		}
		return p, errorf(ErrNotFound, "no profile %q%s", name, suggestOr(name, names, "; create it with fleetvault profile set (PUT /api/v1/profiles/{name})"))
	}
	if err != nil {
		return p, fmt.Errorf("look up profile %s: %w", name, err)
	}
	return p, nil
}

// PutProfile creates or replaces a restore profile (admins and operators).
func (ss *Session) PutProfile(_ context.Context, p settingsdoc.Profile) (settingsdoc.Profile, error) {
	err := ss.audited("profile.put", []string{p.Name}, func() error {
		if err := ss.id.requireManage("create or change restore profiles"); err != nil {
			return err
		}
		if err := CheckName("profile name", p.Name); err != nil {
			return err
		}
		err := ss.s.cat.PutProfile(p)
		if errors.Is(err, settingsdoc.ErrProfile) || errors.Is(err, catalog.ErrInvalid) {
			return errorf(ErrInvalid, "%v", err)
		}
		return err
	})
	return p, err
}

// AttachProfile makes a profile the default of a backup group's restores;
// "" detaches it (admins and operators).
func (ss *Session) AttachProfile(ctx context.Context, group, profile string) (apiclient.GroupProfile, error) {
	gp := apiclient.GroupProfile{Group: group, Profile: profile}
	err := ss.audited("profile.attach", []string{group, profile}, func() error {
		if err := ss.id.requireManage("attach restore profiles to backup groups"); err != nil {
			return err
		}
		if profile != "" {
			if _, err := ss.Profile(ctx, profile); err != nil {
				return err
			}
		}
		if err := ss.s.cat.AttachProfile(group, profile); err != nil {
			return fmt.Errorf("attach profile %q to %s: %w", profile, group, err)
		}
		return nil
	})
	return gp, err
}

// jobProfile resolves the profile of a restore or drift: the one the request
// names, else the one attached to its backup group, else none. NoProfile
// skips the group's.
func (ss *Session) jobProfile(nj apiclient.NewJob, source string) (*settingsdoc.Profile, error) {
	switch {
	case nj.Profile != "":
		p, err := ss.Profile(context.Background(), nj.Profile)
		if err != nil {
			return nil, err
		}
		return &p, nil
	case nj.NoProfile:
		return nil, nil
	}
	p, err := ss.s.cat.GroupProfile(source)
	if err != nil {
		return nil, fmt.Errorf("the profile of backup group %s: %w", source, err)
	}
	if p.Name == "" {
		return nil, nil
	}
	return &p, nil
}
