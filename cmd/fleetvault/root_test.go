package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestUsageErrors: cobra's usage errors reach run typed (usageError), so
// they exit 2 with a sentence, without matching their text.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, exitOK, "Usage:"},
		{"unknown command", []string{"bogus"}, exitUsage, `unknown command "bogus"`},
		{"misspelled command", []string{"devce"}, exitUsage, `did you mean "device"?`},
		{"missing argument", []string{"user", "add"}, exitUsage, "accepts 1 arg(s)"},
		{"extra argument", []string{"audit", "extra"}, exitUsage, `unknown command "extra"`},
		{"required flag", []string{"user", "add", "carol"}, exitUsage, "required flag(s) --role not given"},
		{"unknown flag", []string{"user", "list", "--colour"}, exitUsage, "unknown flag: --colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.want) {
				t.Fatalf("exit %d (want %d), output %q %q, want %q", code, tt.code, out.String(), errb.String(), tt.want)
			}
		})
	}
}
