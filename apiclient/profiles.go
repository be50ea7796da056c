package apiclient

import (
	"context"
	"net/http"

	"github.com/fleetvault/fleetvault/settingsdoc"
)

// Profiles lists every restore profile.
func (c *Client) Profiles(ctx context.Context) ([]settingsdoc.Profile, error) {
	var out []settingsdoc.Profile
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/profiles", nil, nil, "", &out)
}

// Profile returns one restore profile.
func (c *Client) Profile(ctx context.Context, name string) (settingsdoc.Profile, error) {
	var out settingsdoc.Profile
	return out, c.do(ctx, http.MethodGet, APIPrefix+"/profiles/"+esc(name), nil, nil, "", &out)
}

// PutProfile creates or replaces a restore profile.
func (c *Client) PutProfile(ctx context.Context, p settingsdoc.Profile) (settingsdoc.Profile, error) {
	var out settingsdoc.Profile
	return out, c.putJSON(ctx, APIPrefix+"/profiles/"+esc(p.Name), p, &out)
}

// AttachProfile makes a profile the default of a backup group's restores
// ("" detaches).
func (c *Client) AttachProfile(ctx context.Context, group, profile string) (GroupProfile, error) {
	var out GroupProfile
	return out, c.putJSON(ctx, APIPrefix+"/groups/"+esc(group)+"/profile", GroupProfile{Profile: profile}, &out)
}

func (c *Client) putJSON(ctx context.Context, path string, in, out any) error {
	body, err := jsonBody(in)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, path, nil, body, "application/json", out)
}

// RemediateJob starts the restores that bring a finished drift job's drifted
// devices back, and returns them (none when nothing drifted).
func (c *Client) RemediateJob(ctx context.Context, id string) ([]Job, error) {
	var out []Job
	return out, c.postJSON(ctx, APIPrefix+"/jobs/"+esc(id)+"/remediate", nil, struct{}{}, &out)
}
