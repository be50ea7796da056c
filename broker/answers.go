package broker

import (
	"fmt"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// This file makes the broker's answers to odd packets the ones MQTT 3.1.1
// and 5 define, where mochi's differ: a CONNACK code 3.1.1 has no meaning,
// or no acknowledgement at all for a refused QoS 1 publish.

// OnPacketRead fixes up a CONNECT before mochi validates it, and answers a
// refused PUBLISH before mochi drops it.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return h.connectRead(cl, pk)
	case packets.Publish:
		return h.publishRead(cl, pk)
	}
	return pk, nil
}

// connectRead treats an empty password as a wrong one (MQTT allows
// zero-length binary data; mochi calls it a protocol violation, 0x82, a code
// 3.1.1 does not define), and applies 3.1.1's rules to a malformed CONNECT:
// an unsupported protocol level gets CONNACK 0x01, anything else is closed
// without a CONNACK [MQTT-3.1.2-2] [MQTT-3.1.4-1].
func (h *hook) connectRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false
	}
	if pk.ProtocolVersion == 5 {
		return pk, nil
	}
	switch code := pk.ConnectValidate(); code {
	case packets.CodeSuccess:
	case packets.ErrProtocolViolationProtocolName, packets.ErrProtocolViolationProtocolVersion:
		if gc, ok := gated(cl.Net.Conn); ok {
			gc.refusal.Store(&refusal{v3: packets.Err3UnsupportedProtocolVersion, v5: packets.ErrUnsupportedProtocolVersion})
		}
	default:
		h.b.warn("mqtt connection closed: malformed CONNECT", "reason", code.Reason, "remote", cl.Net.Remote)
		return pk, fmt.Errorf("broker: malformed CONNECT: %w", code)
	}
	return pk, nil
}

// publishRead refuses a PUBLISH the ACL does not allow (a $SYS topic
// included) with the acknowledgement its QoS calls for: 3.1.1 has no refusal
// code, so a plain PUBACK (or PUBREC) [MQTT-3.3.5-2]; 5 has PUBACK 0x87 "not
// authorized". Disconnecting instead, as mochi does for 3.1.1, would make a
// device with a persistent session resend the message after every reconnect.
// The packet then goes on at QoS 0, which mochi drops without an answer.
// A topic with wildcards is a protocol violation: the connection is closed
// (with DISCONNECT 0x90 for MQTT 5) [MQTT-3.3.2-2].
func (h *hook) publishRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	topic := pk.TopicName
	if cl.Net.Inline || topic == "" { // "" is a v5 topic alias: mochi resolves it
		return pk, nil
	}
	v5 := cl.Properties.ProtocolVersion == 5
	if strings.ContainsAny(topic, "+#") {
		h.b.warn("mqtt connection closed: wildcard in a PUBLISH topic", "client", truncate(cl.ID), "topic", truncate(topic))
		if v5 {
			_ = h.b.srv.DisconnectClient(cl, packets.ErrTopicNameInvalid)
		}
		return pk, fmt.Errorf("broker: PUBLISH to %s: %w", truncate(topic), packets.ErrTopicNameInvalid)
	}
	if h.b.may(cl, topic, true) {
		return pk, nil
	}
	h.b.denied(cl, topic, true)
	if pk.FixedHeader.Qos > 0 {
		ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}
		if pk.FixedHeader.Qos == 2 {
			ack.FixedHeader.Type = packets.Pubrec
		}
		if v5 {
			ack.ReasonCode = packets.ErrNotAuthorized.Code
			ack.Properties.ReasonString = packets.ErrNotAuthorized.Reason
		}
		if err := cl.WritePacket(ack); err != nil {
			return pk, fmt.Errorf("broker: acknowledge refused PUBLISH to %s: %w", truncate(topic), err)
		}
	}
	pk.FixedHeader.Qos, pk.PacketID = 0, 0 // a QoS 0 PUBLISH has no packet id [MQTT-2.3.1-5]
	return pk, nil
}

// OnPacketEncode gives a refused CONNACK the code the broker chose (a
// lockout, an unsupported protocol level), and keeps a 3.1.1 CONNACK within
// the return codes 3.1.1 defines (0x00-0x05).
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Connack || pk.ReasonCode == packets.CodeSuccess.Code {
		return pk
	}
	v5 := cl.Properties.ProtocolVersion == 5
	if gc, ok := gated(cl.Net.Conn); ok {
		if r := gc.refusal.Load(); r != nil {
			code := r.v3
			if v5 {
				code = r.v5
				pk.Properties.ReasonString = code.Reason
			}
			pk.ReasonCode = code.Code
			return pk
		}
	}
	if !v5 {
		pk.ReasonCode = v3Connack(pk.ReasonCode)
	}
	return pk
}

// v3Connack maps an MQTT 5 CONNACK reason code to the nearest 3.1.1 return
// code; codes 3.1.1 defines pass through.
func v3Connack(code byte) byte {
	switch code {
	case 0x00, 0x01, 0x02, 0x03, 0x04, 0x05:
		return code
	case packets.ErrUnsupportedProtocolVersion.Code:
		return packets.Err3UnsupportedProtocolVersion.Code
	case packets.ErrUnspecifiedError.Code, packets.ErrClientIdentifierNotValid.Code:
		return packets.Err3ClientIdentifierNotValid.Code // mochi's 0x80 is a 3.1.1 client id it cannot take [MQTT-3.1.3-8]
	case packets.ErrServerUnavailable.Code, packets.ErrServerBusy.Code, packets.ErrConnectionRateExceeded.Code:
		return packets.Err3ServerUnavailable.Code
	}
	return packets.Err3NotAuthorized.Code
}
