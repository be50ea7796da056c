package notify_test

import (
	"fmt"
	"time"

	"github.com/fleetvault/fleetvault/notify"
)

// A receiver checks a webhook request's Fleetvault-Signature header.
func ExampleVerify() {
	secret := []byte("shared-secret-of-the-receiver")
	body := []byte(`{"id":"e1","kind":"rpo-missed"}`)
	sent := time.Unix(1_800_000_000, 0)
	header := notify.Sign(secret, sent, body)

	fmt.Println(notify.Verify(secret, header, body, sent.Add(time.Minute), 5*time.Minute) == nil)
	fmt.Println(notify.Verify(secret, header, body, sent.Add(time.Hour), 5*time.Minute) == nil) // a replay
	// Output:
	// true
	// false
}
