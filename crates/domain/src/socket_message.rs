//! What may be written to a Twilio WebSocket: a Media Streams [`Outbound`] or a ConversationRelay
//! [`RelayOutbound`], each valid by construction. The trait is sealed, so a poster that accepts
//! only `impl SocketMessage` can be handed nothing else (a stray string would make Twilio log a
//! warning, or for ConversationRelay count an invalid message toward ending the session).

use crate::outbound::Outbound;
use crate::relay_outbound::RelayOutbound;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Outbound {}
    impl Sealed for super::RelayOutbound {}
}

/// A message Twilio accepts on one of its WebSockets.
pub trait SocketMessage: sealed::Sealed {
    /// The message as the one JSON text frame to send.
    fn to_json(&self) -> String;
}

impl SocketMessage for Outbound {
    fn to_json(&self) -> String {
        Outbound::to_json(self)
    }
}

impl SocketMessage for RelayOutbound {
    fn to_json(&self) -> String {
        RelayOutbound::to_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::StreamSid;

    fn json(m: &impl SocketMessage) -> String {
        m.to_json()
    }

    #[test]
    fn each_message_writes_its_own_json() {
        let stream = StreamSid::parse("MZ00112233445566778899aabbccddeeff").expect("mz");
        let clear = Outbound::clear(stream);
        assert_eq!(json(&clear), clear.to_json());
        let text = RelayOutbound::text("You said: hi", true).expect("text");
        assert_eq!(json(&text), text.to_json());
    }
}
