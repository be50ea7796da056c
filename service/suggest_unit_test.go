package service

import "testing"

func TestSuggest(t *testing.T) {
	names := []string{"new-homes", "model-house", "reference-iot", "Backup Group of Devices"}
	tests := []struct{ name, in, want string }{
		{"typo", "new-hmes", `; did you mean "new-homes"?`},
		{"swap", "nwe-homes", `; did you mean "new-homes"?`},
		{"case", "backup group of devices", `; did you mean "Backup Group of Devices"?`},
		{"near long name", "Backup Group of Device", `; did you mean "Backup Group of Devices"?`},
		{"far", "garage", ""},
		{"empty list", "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := names
			if tt.name == "empty list" {
				list = nil
			}
			if got := Suggest(tt.in, list); got != tt.want {
				t.Fatalf("Suggest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"new-hmes", "new-homes", 1}, {"zoné", "zone", 1},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if d := editDistance(tt.a, tt.b); d != tt.d || editDistance(tt.b, tt.a) != tt.d {
				t.Fatalf("distance %d, want %d", d, tt.d)
			}
		})
	}
}
