package tagmatch

// Attr is one attribute of a tag: a key and its value, both as the device said them.
type Attr struct {
	Key   string `cbor:"k" json:"key"`
	Value string `cbor:"v" json:"value"`
}

// Tag is what a device says about itself: ordered attributes, with well-known keys
// (manufacturer, product, model, firmware, zone) and free keys. Order is kept
// as the device gave it; lookups are by key.
type Tag []Attr

// Well-known keys.
const (
	KeyManufacturer = "manufacturer"
	KeyProduct      = "product"
	KeyModel        = "model"
	KeyFirmware     = "firmware"
	KeyZone         = "zone" // the article's "User info", e.g. South
)

// Get returns the value of key and whether the tag has it.
func (t Tag) Get(key string) (string, bool) {
	for _, a := range t {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}
