package fleethistory

import (
	"fmt"
	"math/rand/v2"
)

// deviceType is a kind of device and how to build one of its profiles.
type deviceType struct {
	product, manufacturer, model string
	weight                       int // share of the fleet
	build                        func(r *rand.Rand, region string) map[string]any
}

var regions = []string{"North", "South", "East", "West", "Coast", "Mountain"}

// types is the fleet's catalogue of device types.
var types = []deviceType{
	{"thermostat", "Acme", "T-200", 12, thermostat},
	{"climate-controller", "Nordklima", "CC-9", 8, climate},
	{"lighting-controller", "Lumen", "LX-40", 10, lighting},
	{"smart-lock", "Bolt&Co", "SL-3", 8, lock},
	{"blinds", "Shade", "B-12", 6, blinds},
	{"smoke-detector", "SafeAir", "SD-1", 8, simple("sensitivity", "test_day")},
	{"camera", "Vista", "C-4K", 5, camera},
	{"doorbell", "Vista", "DB-2", 3, simple("chime", "motion_zone")},
	{"water-heater", "Therma", "WH-80", 3, waterHeater},
	{"irrigation", "Rainy", "IR-16", 3, irrigation},
	{"energy-meter", "Volt", "EM-3P", 6, meter},
	{"ev-charger", "Volt", "EV-22", 3, charger},
	{"air-purifier", "SafeAir", "AP-5", 4, simple("fan_speed", "filter_days")},
	{"humidifier", "Therma", "H-2", 2, simple("target_rh", "night_mode")},
	{"garage-door", "Bolt&Co", "GD-1", 2, simple("auto_close_min", "light_on_open")},
	{"alarm-panel", "Guardian", "AP-10", 4, alarm},
	{"speaker", "Sonic", "SP-1", 3, simple("volume", "eq")},
	{"smart-plug", "Volt", "PL-1", 5, plug},
	{"solar-inverter", "Sunny", "SI-8", 2, inverter},
	{"ventilation", "Nordklima", "V-300", 3, ventilation},
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// half returns a value in steps of 0.5 from lo.
func half(r *rand.Rand, lo float64, steps int) float64 { return lo + float64(r.IntN(steps))/2 }

var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// weekSchedule is a weekly schedule of periods per day, each with a setpoint.
func weekSchedule(r *rand.Rand, periods int, lo float64) []any {
	days := make([]any, 0, len(weekdays))
	for _, d := range weekdays {
		ps := make([]any, periods)
		for i := range ps {
			ps[i] = map[string]any{"start": fmt.Sprintf("%02d:%02d", 5+i*(18/periods), 15*r.IntN(4)), "setpoint": half(r, lo, 8)}
		}
		days = append(days, map[string]any{"day": d, "periods": ps})
	}
	return days
}

func common(r *rand.Rand, region string) map[string]any {
	return map[string]any{
		"region":   region,
		"timezone": pick(r, "Europe/Oslo", "Europe/Madrid", "America/Chicago", "Asia/Tokyo"),
		"units":    pick(r, "metric", "imperial"),
		"ntp":      []any{"0.pool.ntp.org", "1.pool.ntp.org"},
		"telemetry": map[string]any{
			"interval_s": uint64(pick(r, 60, 300, 900)),
			"enabled":    true,
		},
		"network":     map[string]any{"dhcp": true, "mtu": uint64(1500), "ipv6": r.IntN(2) == 0},
		"maintenance": map[string]any{"window": pick(r, "02:00", "03:00", "04:00"), "auto_update": true, "channel": pick(r, "stable", "lts")},
	}
}

func thermostat(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["mode"] = pick(r, "heat", "cool", "auto")
	s["setpoint"] = half(r, 19, 8)
	s["away_setpoint"] = half(r, 15, 6)
	s["hysteresis"] = 0.5
	s["schedule"] = weekSchedule(r, 4, 17)
	s["display"] = map[string]any{"brightness": uint64(r.IntN(100)), "lock": false}
	return s
}

func climate(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	zones := make([]any, 3+r.IntN(4))
	for i := range zones {
		zones[i] = map[string]any{"name": fmt.Sprintf("zone %d", i+1), "setpoint": half(r, 20, 6), "fan": pick(r, "low", "auto"), "schedule": weekSchedule(r, 3, 18)}
	}
	s["zones"] = zones
	s["defrost"] = map[string]any{"interval_min": uint64(60 * (1 + r.IntN(4))), "max_min": uint64(10)}
	return s
}

func lighting(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	scenes := make([]any, 4+r.IntN(6))
	for i := range scenes {
		scenes[i] = map[string]any{"name": pick(r, "morning", "work", "dinner", "movie", "night", "party") + fmt.Sprint(i), "level": uint64(r.IntN(101)), "kelvin": uint64(2700 + 100*r.IntN(40)), "fade_ms": uint64(500)}
	}
	s["scenes"] = scenes
	s["circuits"] = []any{"hall", "kitchen", "living", "bedroom", "bath", "porch"}[:2+r.IntN(5)]
	s["sunset_offset_min"] = int64(r.IntN(60) - 30)
	return s
}

func lock(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["auto_lock_s"] = uint64(pick(r, 30, 60, 120))
	s["keypad"] = map[string]any{"enabled": true, "wrong_code_limit": uint64(5), "lockout_s": uint64(60)}
	s["access_windows"] = weekSchedule(r, 2, 0)
	return s
}

func blinds(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["open_at"], s["close_at"] = "07:00", pick(r, "19:00", "20:30", "sunset")
	s["sun_protection"] = map[string]any{"lux": uint64(30000 + 1000*r.IntN(20)), "tilt": uint64(45)}
	return s
}

func camera(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	masks := make([]any, 2+r.IntN(4))
	for i := range masks {
		masks[i] = []any{uint64(r.IntN(1920)), uint64(r.IntN(1080)), uint64(100 + r.IntN(400)), uint64(100 + r.IntN(300))}
	}
	s["privacy_masks"] = masks
	s["stream"] = map[string]any{"codec": "h265", "fps": uint64(pick(r, 15, 25, 30)), "bitrate_kbps": uint64(pick(r, 2048, 4096))}
	s["recording"] = weekSchedule(r, 2, 0)
	return s
}

func waterHeater(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["target_c"] = half(r, 50, 20)
	s["legionella"] = map[string]any{"day": pick(r, weekdays...), "at": "03:00", "temp_c": 65.0}
	s["schedule"] = weekSchedule(r, 2, 45)
	return s
}

func irrigation(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	zones := make([]any, 4+r.IntN(12))
	for i := range zones {
		zones[i] = map[string]any{"name": fmt.Sprintf("bed %d", i+1), "minutes": uint64(5 + r.IntN(25)), "days": []any{"mon", "wed", "fri"}}
	}
	s["zones"] = zones
	s["rain_skip_mm"] = 2.5
	return s
}

func meter(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["tariffs"] = weekSchedule(r, 3, 0)
	s["ct_ratio"] = uint64(pick(r, 100, 200, 400))
	s["phases"] = []any{"L1", "L2", "L3"}
	return s
}

func charger(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["max_a"] = uint64(pick(r, 16, 24, 32))
	s["smart_charging"] = map[string]any{"cheap_hours": []any{uint64(1), uint64(2), uint64(3), uint64(4)}, "solar_only": r.IntN(2) == 0}
	s["rfid_required"] = r.IntN(2) == 0
	return s
}

func alarm(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	sensors := make([]any, 6+r.IntN(20))
	for i := range sensors {
		sensors[i] = map[string]any{"id": uint64(i + 1), "name": pick(r, "front door", "back door", "window", "hall pir", "garage") + fmt.Sprint(i), "type": pick(r, "contact", "pir", "glass"), "delay_s": uint64(pick(r, 0, 30))}
	}
	s["sensors"] = sensors
	s["exit_delay_s"] = uint64(45)
	return s
}

func plug(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["on_at"], s["off_at"] = "18:00", pick(r, "23:00", "00:30")
	s["power_limit_w"] = uint64(pick(r, 1800, 2300, 3600))
	return s
}

func inverter(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["export_limit_w"] = uint64(pick(r, 0, 3000, 5000))
	s["strings"] = []any{map[string]any{"panels": uint64(10), "tilt": uint64(30)}, map[string]any{"panels": uint64(8), "tilt": uint64(35)}}
	s["grid_code"] = pick(r, "EN50549", "VDE4105", "IEEE1547")
	return s
}

func ventilation(r *rand.Rand, region string) map[string]any {
	s := common(r, region)
	s["levels"] = []any{uint64(20), uint64(45), uint64(70), uint64(100)}
	s["schedule"] = weekSchedule(r, 3, 1)
	s["bypass_c"] = half(r, 20, 8)
	return s
}

// simple builds a small type with two specific settings.
func simple(a, b string) func(*rand.Rand, string) map[string]any {
	return func(r *rand.Rand, region string) map[string]any {
		s := common(r, region)
		s[a] = uint64(r.IntN(10))
		s[b] = pick(r, "off", "low", "high", "mon")
		return s
	}
}
