package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/catalog"
)

// CoAPKeys is the CoAP transport's key lookup over the resource database:
// the key a device was registered with (catalog.Device.CoAPPSKSecret).
func CoAPKeys(c *catalog.Catalog) coap.KeyFunc {
	return func(_ context.Context, device string) ([]byte, error) {
		d, err := c.Device(device)
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, fmt.Errorf("device %s is not in the resource database: %w", device, coap.ErrNoKey)
		}
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", device, err)
		}
		if len(d.CoAPPSKSecret) == 0 {
			return nil, fmt.Errorf("device %s has no CoAP pre-shared key (coap_key): %w", device, coap.ErrNoKey)
		}
		return d.CoAPPSKSecret, nil
	}
}
