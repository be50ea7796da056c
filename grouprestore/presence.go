package grouprestore

import "sync"

// presence wakes parked offline devices when their transport says they came online.
type presence struct {
	mu      sync.Mutex
	waiters map[string][]chan struct{}
	subs    map[*presenceSub]struct{} // continuous restores: every device's events
}

func newPresence() *presence {
	return &presence{waiters: map[string][]chan struct{}{}, subs: map[*presenceSub]struct{}{}}
}

// wait returns a channel closed the next time device comes online, and a
// function to stop waiting.
func (p *presence) wait(device string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.waiters[device] = append(p.waiters[device], ch)
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		ws := p.waiters[device]
		for i, w := range ws {
			if w == ch {
				p.waiters[device] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(p.waiters[device]) == 0 {
			delete(p.waiters, device)
		}
	}
}

// online is the transports' callback: it must not block.
func (p *presence) online(device string) {
	p.mu.Lock()
	ws := p.waiters[device]
	delete(p.waiters, device)
	for s := range p.subs {
		s.send(device)
	}
	p.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}
