package service

import "testing"

func TestSuggestIgnoresCase(t *testing.T) {
	names := []string{"Backup Group of Devices", "homes", "offices-emea", "j-20260301-0001"}
	tests := []struct{ name, want string }{
		{"homez", `; did you mean "homes"?`},
		{"backup group of devices", `; did you mean "Backup Group of Devices"?`},
		{"Backup Group of Device", `; did you mean "Backup Group of Devices"?`},
		{"j-20260301-0002", `; did you mean "j-20260301-0001"?`},
		{"warehouse", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Suggest(tt.name, names); got != tt.want {
				t.Errorf("Suggest(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
	if got := Suggest("x", nil); got != "" {
		t.Errorf("no names: %q", got)
	}
}
