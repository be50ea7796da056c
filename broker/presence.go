package broker

import (
	"errors"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// repairDelays are when, after a device connects, the broker checks that a
// racing cleanup of an older connection with the same id did not unregister
// it (see presence).
var repairDelays = [...]time.Duration{200 * time.Millisecond, 2 * time.Second}

// OnConnect registers fn to be called with a device's client id each time the
// device connects (after authentication, when its session is established).
// Connections with a server identity are not reported. mochi sends CONNACK
// just before, so the device may already be publishing. fn is called on the
// connection's goroutine, so it must not block; for one client id, calls to
// the OnConnect and OnDisconnect functions come in order.
func (b *Broker) OnConnect(fn func(clientID string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onConnect = append(b.onConnect, fn)
}

// OnDisconnect registers fn to be called with a device's client id when its
// connection ends, unless a newer connection with the same client id has
// already taken its place. The rules of OnConnect apply.
func (b *Broker) OnDisconnect(fn func(clientID string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onDisconnect = append(b.onDisconnect, fn)
}

// presence records cl connecting or disconnecting and reports devices.
func (b *Broker) presence(cl *mqtt.Client, up bool) {
	b.mu.Lock()
	var fns []func(string)
	cur, present := b.online[cl.ID]
	switch {
	case up:
		if !present {
			b.stats.connected.Add(1)
		}
		b.online[cl.ID] = cl
		fns = b.onConnect
		// An older connection with this id may be ending right now: mochi's
		// cleanup of it runs on its own goroutine and can delete this newer
		// client from the client map by id (and its subscriptions from the
		// topic tree), after which publishes to the device are skipped. Check
		// shortly after, and put it back if so.
		for _, d := range repairDelays {
			time.AfterFunc(d, func() { b.repairTakeover(cl) })
		}
	case present && cur == cl:
		delete(b.online, cl.ID)
		b.stats.connected.Add(-1)
		fns = b.onDisconnect
	}
	b.mu.Unlock()
	if b.isServer(cl) {
		return
	}
	for _, fn := range fns {
		fn(cl.ID)
	}
}

// Connected reports whether a client with this id is connected now.
func (b *Broker) Connected(clientID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.online[clientID]
	return ok
}

// Subscribed reports whether the connected client clientID holds a
// subscription to exactly filter. Tests use it to know when a subscriber made
// by another program is ready.
func (b *Broker) Subscribed(clientID, filter string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok {
		return false
	}
	_, ok = cl.State.Subscriptions.Get(filter)
	return ok
}

// repairTakeover re-registers cl, the live connection of its client id, if a
// racing cleanup of an older connection removed it from mochi's client map
// or its subscriptions from the topic tree.
func (b *Broker) repairTakeover(cl *mqtt.Client) {
	b.mu.Lock()
	live := b.online[cl.ID] == cl
	b.mu.Unlock()
	if !live || cl.Closed() {
		return
	}
	if got, ok := b.srv.Clients.Get(cl.ID); !ok || got != cl {
		b.srv.Clients.Add(cl)
		b.log.Debug("mqtt: restored a client removed by a racing cleanup", "client", cl.ID)
	}
	for _, sub := range cl.State.Subscriptions.GetAll() {
		b.srv.Topics.Subscribe(cl.ID, sub) // a no-op when still there
	}
}

// Disconnect closes the connection of the client with this id, if any, and
// reports whether there was one: for revoking a device, and for tests.
func (b *Broker) Disconnect(clientID string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok {
		return false
	}
	cl.Stop(errors.New("disconnected by the server"))
	return true
}
