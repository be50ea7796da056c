package catalog

import (
	"fmt"

	"github.com/fleetvault/fleetvault/tagmatch"
)

// OptionalTag is the optional field a device's registered tag is kept under,
// in the structured form (manufacturer=Acme Corp.; model=xyz). The
// registered tag is what the device is: a group job checks the tag the
// device says against it (docs/spec/tagmatch.md, "Tag trust").
const OptionalTag = "tag"

// RegisteredTag returns the tag d was registered with, or nil when it has
// none. A stored tag that does not parse is an error naming the device.
func (d Device) RegisteredTag() (tagmatch.Tag, error) {
	s, ok := d.Optional[OptionalTag]
	if !ok || s == "" {
		return nil, nil
	}
	t, err := tagmatch.ParseKV(s)
	if err != nil {
		return nil, fmt.Errorf("catalog: device %s: %w: registered tag %q: %w", d.ID, ErrInvalid, s, err)
	}
	return t, nil
}
