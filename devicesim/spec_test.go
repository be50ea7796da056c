package devicesim

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustLoad(t testing.TB, path string) *Spec {
	t.Helper()
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPlan(t testing.TB, s *Spec, seed uint64) []*planned {
	t.Helper()
	ps, err := s.plan(seed, DefaultSecret(seed))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestShippedFleets loads every fleet file shipped in examples/fleets.
func TestShippedFleets(t *testing.T) {
	files, err := filepath.Glob("../examples/fleets/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("expected the shipped fleet files, got %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s := mustLoad(t, f)
			ps := mustPlan(t, s, s.Seed)
			if len(ps) == 0 {
				t.Fatal("no devices")
			}
			refs := 0
			for _, p := range ps {
				if p.info.Reference {
					refs++
					if p.info.Faults != (DeviceFaults{}) {
						t.Errorf("reference device %s has faults %+v", p.info.ID, p.info.Faults)
					}
				}
				if len(p.info.Tag) == 0 || p.info.Password == "" {
					t.Errorf("device %s: empty tag or password", p.info.ID)
				}
			}
			if refs == 0 {
				t.Error("no reference devices")
			}
		})
	}
}

func TestModelHouse(t *testing.T) {
	s := mustLoad(t, "../examples/fleets/model-house.yaml")
	ps := mustPlan(t, s, s.Seed)
	byID := map[string]*planned{}
	zones := map[string]int{}
	hubs := 0
	for _, p := range ps {
		byID[p.info.ID] = p
		if p.info.Group == "new-homes" && p.info.Type == "climate" {
			z, _ := p.info.Tag.Get("zone")
			zones[z]++
		}
		if p.info.Type == "hub-x9" {
			hubs++
		}
	}
	north := byID["model-north-climate"]
	if north == nil || north.settings["setpoint_c"] != 21.5 || north.settings["mode"] != "heat" {
		t.Fatalf("model-north-climate: %+v", north)
	}
	if sched := north.settings["schedule"].(map[string]any)["weekday"].([]any); len(sched) != 2 {
		t.Errorf("reference schedule not applied: %v", sched)
	}
	home := byID["home0001-climate"]
	if home == nil || home.settings["setpoint_c"] != int64(20) || home.settings["name"] != "home0001-climate" {
		t.Fatalf("home0001-climate: %+v", home)
	}
	if zones["North"]+zones["South"] != 1000 || zones["North"] < 500 || zones["South"] < 300 {
		t.Errorf("zones of new homes: %v", zones)
	}
	if hubs == 0 || hubs > 40 {
		t.Errorf("unknown hubs: %d, expected about 10", hubs)
	}
	// Devices of one home share the home's zone.
	z1, _ := byID["home0002-climate"].info.Tag.Get("zone")
	z2, _ := byID["home0002-lighting-2"].info.Tag.Get("zone")
	if z1 != z2 {
		t.Errorf("home0002 devices in zones %s and %s", z1, z2)
	}
}

func TestPlanDeterministic(t *testing.T) {
	s := mustLoad(t, "testdata/small.yaml")
	a, b := mustPlan(t, s, 5), mustPlan(t, s, 5)
	if len(a) != len(b) {
		t.Fatal("different sizes")
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].info, b[i].info) || !reflect.DeepEqual(a[i].settings, b[i].settings) {
			t.Fatalf("device %d differs between runs: %+v vs %+v", i, a[i].info, b[i].info)
		}
	}
	c := mustPlan(t, s, 6)
	same := true
	for i := range a {
		if !reflect.DeepEqual(a[i].info.Tag, c[i].info.Tag) || a[i].info.Faults != c[i].info.Faults {
			same = false
		}
	}
	if same {
		t.Error("seeds 5 and 6 gave the same fleet")
	}
}

func TestFaultShares(t *testing.T) {
	s := mustLoad(t, "testdata/small.yaml")
	ps := mustPlan(t, s, s.Seed)
	var n, offline, late, slow, drop, reject, corrupt, reboot int
	for _, p := range ps {
		f := p.info.Faults
		if p.info.Type != "climate" || p.info.Reference {
			if f != (DeviceFaults{}) {
				t.Errorf("%s: unexpected faults %+v", p.info.ID, f)
			}
			continue
		}
		n++
		for _, c := range []struct {
			on  bool
			ctr *int
		}{{f.Offline, &offline}, {f.LateAfter > 0, &late}, {f.Slow, &slow}, {f.Drop, &drop}, {f.Reject, &reject}, {f.Corrupt, &corrupt}, {f.Reboot, &reboot}} {
			if c.on {
				*c.ctr++
			}
		}
	}
	if n != 20 {
		t.Fatalf("climate devices in homes: %d, want 20", n)
	}
	// 10% of 20 is 2 each; a late device that is also offline stays offline.
	for name, got := range map[string]int{"offline": offline, "slow": slow, "drop": drop, "reject": reject, "corrupt": corrupt, "reboot": reboot} {
		if got != 2 {
			t.Errorf("%s: %d devices, want 2", name, got)
		}
	}
	if late > 2 {
		t.Errorf("late: %d devices, want at most 2", late)
	}
}

func TestRestoreProfile(t *testing.T) {
	const base = "types: [{name: a, tag: {zone: x}}]\ngroups: [{name: g, devices: [{type: a}]}]\n"
	s, err := Parse("p.yaml", []byte(base+`restore_profile: {name: keep-identity, keep: [/name, "/network/*"], set: ["/label={{.Device.ID}}"], only: [/schedule]}`))
	if err != nil {
		t.Fatal(err)
	}
	p := s.RestoreProfile
	if p == nil || p.Name != "keep-identity" || fmt.Sprint(p.Keep) != "[/name /network/*]" || fmt.Sprint(p.Only) != "[/schedule]" ||
		len(p.Set) != 1 || p.Set[0].Pointer != "/label" || p.Set[0].Template != "{{.Device.ID}}" {
		t.Fatalf("profile %+v", p)
	}
	for _, name := range []string{"model-house", "offices", "faults"} {
		s := mustLoad(t, "../examples/fleets/"+name+".yaml")
		if s.RestoreProfile == nil || s.RestoreProfile.Keep[0] != "/name" {
			t.Errorf("shipped fleet %s: restore profile %+v, want one keeping /name", name, s.RestoreProfile)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const base = "types: [{name: a, tag: {zone: x}}]\ngroups: [{name: g, devices: [{type: a}]}]\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"empty", "", []string{"bad.yaml", "empty file"}},
		{"not yaml", "types: [", []string{"bad.yaml", "not valid YAML"}},
		{"unknown top key", base + "typos: 1\n", []string{"typos", "unknown key"}},
		{"offline over 1", "types: [{name: a, faults: {offline: 1.5}}]\ngroups: [{name: g, devices: [{type: a}]}]", []string{"types[0].faults.offline", "share between 0 and 1", `"1.5"`}},
		{"third type offline", "types: [{name: a}, {name: b}, {name: c, faults: {offline: lots}}]\ngroups: [{name: g, devices: [{type: a}]}]", []string{"bad.yaml:1", "types[2].faults.offline"}},
		{"bad transport", "types: [{name: a, transport: zigbee}]\ngroups: [{name: g, devices: [{type: a}]}]", []string{"types[0].transport", "mqtt or coap"}},
		{"bad latency", "types: [{name: a, faults: {latency: {gaussian: 1ms}}}]\ngroups: [{name: g, devices: [{type: a}]}]", []string{"types[0].faults.latency.gaussian", "fixed, uniform, exponential"}},
		{"uniform reversed", "types: [{name: a, faults: {latency: {uniform: [5ms, 1ms]}}}]\ngroups: [{name: g, devices: [{type: a}]}]", []string{"min <= max"}},
		{"unknown type", "types: [{name: a}]\ngroups: [{name: g, devices: [{type: b}]}]", []string{"groups[0].devices[0].type", `unknown device type "b"`}},
		{"unknown var", "types: [{name: a, tag: {zone: \"{zone}\"}}]\ngroups: [{name: g, devices: [{type: a}]}]", []string{"types[0].tag.zone", "unknown variable {zone}", "groups[0].devices[0]"}},
		{"bad template", "types: [{name: a, tag: {zone: \"{zone\"}}]\ngroups: [{name: g, vars: {zone: x}, devices: [{type: a}]}]", []string{"types[0].tag.zone", "unclosed {"}},
		{"duplicate ids", "types: [{name: a}]\ngroups: [{name: g, sites: 2, site: same, devices: [{type: a}]}]", []string{"groups[0].devices[0]", `"same-a" is made twice`}},
		{"too many", "types: [{name: a}]\ngroups: [{name: g, sites: 1000000, devices: [{type: a, count: 2}]}]", []string{"more than 1000000 devices"}},
		{"no groups", "types: [{name: a}]", []string{"groups", "at least one group"}},
		{"bad generator", "types: [{name: a, settings: {factory: {x: {$normal: [1, 2]}}}}]\ngroups: [{name: g, devices: [{type: a}]}]", []string{"types[0].settings.factory.x.$normal", "$choice"}},
		{"bad weight", "types: [{name: a}]\ngroups: [{name: g, vars: {zone: {choice: {N: -1}}}, devices: [{type: a}]}]", []string{"groups[0].vars.zone.choice.N", "positive weight"}},
		{"bad id", "types: [{name: a}]\ngroups: [{name: g, site: \"x/y\", devices: [{type: a}]}]", []string{`"x/y-a"`}},
		{"id not an identifier address", "types: [{name: a}]\ngroups: [{name: g, site: \"1.2\", devices: [{type: a}], sites: 1}]", []string{"groups.g", `device id "1.2-a"`, "host name"}},
		{"id label too long", "types: [{name: a}]\ngroups: [{name: g, site: \"" + strings.Repeat("s", 62) + "\", devices: [{type: a}]}]", []string{"longer than 63"}},
		{"duplicate key", "types: [{name: a, tag: {k: 1, k: 2}}]\ngroups: [{name: g, devices: [{type: a}]}]", []string{"types[0].tag.k"}},
		{"bad profile pointer", base + "restore_profile: {name: p, keep: [name]}\n", []string{"restore_profile", `"name"`, "starts with /"}},
		{"bad profile set", base + "restore_profile: {name: p, set: [/name]}\n", []string{"restore_profile.set", "POINTER=TEMPLATE"}},
		{"unknown profile key", base + "restore_profile: {name: p, kept: [/name]}\n", []string{"restore_profile.kept", "unknown key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse("bad.yaml", []byte(c.yaml))
			if err == nil {
				_, err = s.plan(1, DefaultSecret(1))
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	cases := []struct{ in, want string }{
		{"home{n:04}", "home0007"},
		{"{site}-{type}", "s-t"},
		{"{{literal}}", "{literal}"},
		{"plain", "plain"},
	}
	vars := map[string]string{"n": "7", "site": "s", "type": "t"}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			tm, err := parseTemplate(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := tm.render(vars); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/small.yaml", "../examples/fleets/faults.yaml"} {
		s := mustLoadBytes(f, p)
		f.Add(s)
	}
	f.Add([]byte("types: [{name: a}]\ngroups: [{name: g, sites: 3, devices: [{type: a}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "devicesim: fuzz.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		total := 0
		for _, g := range s.Groups {
			for _, m := range g.Devices {
				total += g.Sites * m.Count
			}
		}
		if total > 5000 {
			return // planning is linear; keep the fuzzer fast
		}
		_, _ = s.plan(1, DefaultSecret(1))
	})
}
