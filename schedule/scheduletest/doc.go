// Package scheduletest gives tests a clock they move by hand, for
// schedule.Loop and anything else that takes a schedule.Clock.
//
// # Basics
//
// NewClock(t0) stands still until the test calls Advance or Wake. The loop
// sleeps by calling After; Wake waits (polling, never sleeping on a guess)
// until the loop sleeps and moves the clock to the end of that sleep, so a
// test steps through a loop's runs one wake at a time:
//
//	clk := scheduletest.NewClock(t0)
//	go loop.Run(ctx)
//	for clk.Now().Before(end) {
//		clk.Wake(t, 5*time.Second)
//	}
//
// # Caveats
//
// Only the latest After call is kept: a loop that abandons a sleep (woken by
// something else) must call After again before the test can Wake it.
package scheduletest
