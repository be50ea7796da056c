package schedule_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/schedule"
)

func ExampleParse() {
	c, err := schedule.Parse("0 3 * * MON-FRI")
	if err != nil {
		panic(err)
	}
	from := time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC) // a Friday
	fmt.Println(c.Next(from))

	_, err = schedule.Parse("0 27 * * *")
	var pe *schedule.ParseError
	fmt.Println(errors.As(err, &pe), pe.Field)
	// Output:
	// 2026-03-09 03:00:00 +0000 UTC
	// true hour
}

func ExampleCheckRPO() {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	last := map[string]time.Time{"home1": now.Add(-2 * time.Hour), "home2": now.Add(-30 * time.Hour)}
	st, err := schedule.CheckRPO(24*time.Hour, now, []string{"home1", "home2", "home3"}, last)
	if err != nil {
		panic(err)
	}
	for _, s := range st {
		fmt.Println(s.Device, s.State(), s.Age)
	}
	// Output:
	// home1 met 2h0m0s
	// home2 missed 30h0m0s
	// home3 missed 0s
}
