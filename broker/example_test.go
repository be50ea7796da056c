package broker_test

import (
	"context"
	"fmt"
	"log"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetvault/fleetvault/broker"
)

// A broker for one device, the server's side wired in-process through the
// inline client: the server sends a request, the device answers.
func Example() {
	secret := broker.NewSecret() // given to the device at provisioning; only the hash is stored
	hash, err := broker.HashPassword(secret)
	if err != nil {
		log.Fatal(err)
	}
	creds := broker.StaticCredentials{
		"home1-thermo": {Name: "home1-thermo", Role: broker.RoleDevice, PasswordHash: hash},
	}
	b, err := broker.New(broker.Options{TCPAddr: "127.0.0.1:0", Credentials: creds})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	online := make(chan string, 1)
	b.OnConnect(func(id string) { online <- id }) // must not block
	responses := make(chan string, 1)
	stop, err := b.Subscribe(broker.ResponseFilter, func(topic string, payload []byte) {
		responses <- topic + ": " + string(payload)
	})
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	// The device: client id and username are its device id.
	dev := paho.NewClient(paho.NewClientOptions().AddBroker("mqtt://" + b.Addr().String()).
		SetClientID("home1-thermo").SetUsername("home1-thermo").SetPassword(secret))
	if tok := dev.Connect(); tok.Wait() && tok.Error() != nil {
		log.Fatal(tok.Error())
	}
	defer dev.Disconnect(0)
	fmt.Println("online:", <-online)
	answer := func(c paho.Client, m paho.Message) {
		c.Publish(broker.ResponseTopic("home1-thermo"), 1, false, "tag of "+string(m.Payload()))
	}
	if tok := dev.Subscribe(broker.RequestTopic("home1-thermo"), 1, answer); tok.Wait() && tok.Error() != nil {
		log.Fatal(tok.Error())
	}

	// The server.
	if err := b.Publish(broker.RequestTopic("home1-thermo"), []byte("home1-thermo"), 1); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-responses)
	// Output:
	// online: home1-thermo
	// fleetvault/v1/home1-thermo/res: tag of home1-thermo
}
