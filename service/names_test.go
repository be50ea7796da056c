package service

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"plain", "home1-climate", true},
		{"inner spaces", "Backup Group of Devices", true},
		{"accents", "Maison Sud é", true},
		{"empty", "", false},
		{"only spaces", "   ", false},
		{"only a tab and spaces", " \t ", false},
		{"newline", "home1\nhome2", false},
		{"NUL", "home\x001", false},
		{"escape", "home\x1b[31m", false},
		{"RTL override", "home1\u202Etxt.exe", false},
		{"LTR isolate", "a\u2066b", false},
		{"invalid UTF-8", "home\xff", false},
		{"too long", strings.Repeat("a", maxName+1), false},
		{"longest", strings.Repeat("a", maxName), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckName("device", tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckName(%q) = %v, want ok %v", tt.in, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "device name") {
				t.Errorf("the error does not say what was named: %v", err)
			}
		})
	}
}
