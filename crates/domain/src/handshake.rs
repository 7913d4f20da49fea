//! The whole `$connect` decision: which protocol a handshake is, whether the stack admits it, and
//! that protocol's check ([`decide_connect`] for Media Streams, [`decide_relay_connect`] for
//! ConversationRelay). The authorizer builds its Allow from an [`Admitted`] only.

use super::connect::{decide_connect, AuthMode, ConnectRequest, Presented, VerifiedConnect};
use super::credentials::Credentials;
use super::protocol::{Protocol, Protocols};
use super::reason::DenyReason;
use super::relay_connect::{
    decide_relay_connect, handshake_kind, HandshakeKind, RelayConnectRequest, VerifiedRelayConnect,
};

/// Everything `$connect` looks at, already pulled out of the AWS event.
#[derive(Debug, Clone, Copy)]
pub struct Handshake<'a> {
    /// `X-Twilio-Signature`.
    pub signature: Presented<'a>,
    /// `X-Twilio-Webhooks-Signature-Settings`.
    pub signature_settings: Presented<'a>,
    /// The `token` query parameter (Media Streams' stream token).
    pub stream_token: Presented<'a>,
    /// The `callSid` query parameter (ConversationRelay).
    pub call_sid: Presented<'a>,
    /// The `callToken` query parameter (ConversationRelay).
    pub call_token: Presented<'a>,
    /// Whether the query holds a parameter other than `callSid` and `callToken`.
    pub other_params: bool,
    /// The wss URL Twilio signed, without any query.
    pub signed_url: &'a str,
}

/// A verified handshake of one protocol: the only input the authorizer's Allow accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// A Media Streams handshake that proved Twilio and an account.
    MediaStreams(VerifiedConnect),
    /// A ConversationRelay handshake that proved Twilio, an account and a call.
    ConversationRelay(VerifiedRelayConnect),
}

impl Admitted {
    /// Which protocol the connection speaks (the `protocol` context key).
    pub fn protocol(&self) -> Protocol {
        match self {
            Self::MediaStreams(_) => Protocol::MediaStreams,
            Self::ConversationRelay(_) => Protocol::ConversationRelay,
        }
    }
}

/// Decides a `$connect` handshake at `now` (Unix seconds, for the call token's expiry).
pub fn decide_handshake(
    h: &Handshake<'_>,
    credentials: Option<&Credentials>,
    mode: AuthMode,
    protocols: Protocols,
    now: u64,
) -> Result<Admitted, DenyReason> {
    let kind = handshake_kind(h.call_sid, h.call_token)?;
    let protocol = match kind {
        HandshakeKind::MediaStreams => Protocol::MediaStreams,
        HandshakeKind::ConversationRelay { .. } => Protocol::ConversationRelay,
    };
    if !protocols.admits(protocol) {
        return Err(DenyReason::ProtocolNotEnabled);
    }
    match kind {
        HandshakeKind::MediaStreams => {
            let req = ConnectRequest {
                signature: h.signature,
                stream_token: h.stream_token,
                signature_settings: h.signature_settings,
                signed_url: h.signed_url,
            };
            decide_connect(&req, credentials, mode).map(Admitted::MediaStreams)
        }
        HandshakeKind::ConversationRelay {
            call_sid,
            call_token,
        } => {
            let req = RelayConnectRequest {
                signature: h.signature,
                signature_settings: h.signature_settings,
                call_sid,
                call_token,
                other_params: h.other_params,
                signed_url: h.signed_url,
            };
            decide_relay_connect(&req, credentials, now).map(Admitted::ConversationRelay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call_token::mint_call_token;
    use crate::sid::{AccountSid, CallSid};
    use crate::signature::compute_signature;
    use Presented::{Absent, One};

    const AC: &str = "AC0123456789abcdef0123456789abcdef";
    const CA: &str = "CA00000000000000000000000000000001";
    const URL: &str = "wss://h.example.com/prod";
    const NOW: u64 = 1_800_000_000;

    fn creds() -> Credentials {
        Credentials::from_json(&format!(
            r#"{{"twilioAccounts":[{{"accountSid":"{AC}","authTokens":["12345"]}}],
                "callTokenKeys":["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"]}}"#
        ))
        .expect("valid")
    }

    fn handshake<'a>(
        sig: &'a str,
        call_sid: Presented<'a>,
        call_token: Presented<'a>,
    ) -> Handshake<'a> {
        Handshake {
            signature: One(sig),
            signature_settings: Absent,
            stream_token: Absent,
            call_sid,
            call_token,
            other_params: false,
            signed_url: URL,
        }
    }

    #[test]
    fn each_protocol_only_where_the_stack_admits_it() {
        let c = creds();
        let media_sig = compute_signature("12345", URL, &[]);
        let (ac, ca) = (
            AccountSid::parse(AC).expect("sid"),
            CallSid::parse(CA).expect("sid"),
        );
        let tok = mint_call_token(&c, &ac, &ca, NOW, 300).expect("minted");
        let tok = tok.expose();
        let relay_sig =
            compute_signature("12345", &format!("{URL}?callSid={CA}&callToken={tok}"), &[]);
        let media = handshake(&media_sig, Absent, Absent);
        let relay = handshake(&relay_sig, One(CA), One(tok));
        let mode = AuthMode::Signature;
        let decide = |h: &Handshake<'_>, p| decide_handshake(h, Some(&c), mode, p, NOW);

        let only_media = Protocols::only(Protocol::MediaStreams);
        let only_relay = Protocols::only(Protocol::ConversationRelay);
        assert_eq!(
            decide(&media, only_media).map(|a| a.protocol()),
            Ok(Protocol::MediaStreams)
        );
        assert_eq!(
            decide(&relay, only_media),
            Err(DenyReason::ProtocolNotEnabled)
        );
        assert_eq!(
            decide(&media, only_relay),
            Err(DenyReason::ProtocolNotEnabled)
        );
        let admitted = decide(&relay, only_relay).expect("admit");
        assert_eq!(admitted.protocol(), Protocol::ConversationRelay);
        for h in [&media, &relay] {
            assert!(decide(h, Protocols::BOTH).is_ok());
        }
        // A half-present query is neither protocol, whatever the stack admits.
        let half = handshake(&media_sig, One(CA), Absent);
        assert_eq!(
            decide(&half, Protocols::BOTH),
            Err(DenyReason::RelayQueryIncomplete)
        );
        // The relay decision ignores the auth mode: a stream token never stands in.
        for mode in [AuthMode::Token, AuthMode::Either, AuthMode::Both] {
            assert!(decide_handshake(&relay, Some(&c), mode, Protocols::BOTH, NOW).is_ok());
        }
    }
}
