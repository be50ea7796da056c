package broker

import mqtt "github.com/mochi-mqtt/server/v2"

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
