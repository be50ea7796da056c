package coap_test

import (
	"context"
	"fmt"
	"net"

	"github.com/fleetvault/fleetvault/agent"
	"github.com/fleetvault/fleetvault/agent/agenttest"
	"github.com/fleetvault/fleetvault/agent/coap"
	"github.com/fleetvault/fleetvault/identifiers"
	"github.com/fleetvault/fleetvault/tagmatch"
)

// A device serves its tag over CoAP; the server probes it with a Transport.
func Example() {
	// Device side: bind first, so the handler knows the port it answers to.
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	dev := agenttest.NewMemDevice(tagmatch.Tag{{Key: tagmatch.KeyZone, Value: "South"}}, agent.Settings{"setpoint": 21})
	h := agent.NewHandler("home1-climate", dev, agent.HandlerOptions{Addresses: []string{conn.LocalAddr().String()}})
	srv := coap.NewServer(conn, h, coap.ServerOptions{})
	go srv.Serve(context.Background())
	defer srv.Close()

	// Server side: one transport for every device.
	tr, err := coap.NewTransport(coap.TransportOptions{Insecure: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	resp, err := tr.Do(context.Background(), identifiers.ReadTag("coap", "127.0.0.1", port), &agent.Request{})
	if err != nil {
		fmt.Println(err)
		return
	}
	zone, _ := resp.Tag.Get(tagmatch.KeyZone)
	fmt.Println(resp.Device, zone)
	// Output: home1-climate South
}
