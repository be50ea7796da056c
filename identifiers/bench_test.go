package identifiers

import "testing"

func BenchmarkParse(b *testing.B) {
	for _, s := range []string{
		"mqtt://home0001-climate?READ:SETTINGS?TAG",
		"10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>",
	} {
		b.Run(s[:12], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkString(b *testing.B) {
	id := WriteSettings("mqtt", "home0001-climate", 0)
	b.ReportAllocs()
	for b.Loop() {
		_ = id.String()
	}
}

func BenchmarkRewrite(b *testing.B) {
	id := MustParse("10.10.11.44:6543?WRITE:IP:10.10.11.45,dedupe,<more params>?/mtree/backup/<client-id>")
	rules := []Rule{
		{Endpoint{"10.10.11.44", 6543}, Endpoint{"10.50.4.4", 3456}},
		{Endpoint{"10.10.11.45", 0}, Endpoint{"10.50.4.4", 0}},
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Rewrite(id, rules)
	}
}
