//! The legitimate call and the hostile clients, as (handshake, script) pairs.

use std::time::Duration;

use super::audio::FRAME_BYTES;
use super::client::{Handshake, Outgoing, Script};
use super::identity::{fresh_call_sid, fresh_stream_sid, Identity};
use crate::domain::{compute_signature, messages, AccountSid, DenyReason, Secret};
use stream_gate_lambda::clock::unix_now;

/// Twilio's WebSocket client User-Agent.
pub const TWILIO_USER_AGENT: &str = "Twilio.TmeWs/1.0";

/// What a scenario should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Admitted, every frame accepted, closed by the client after `stop`.
    Admitted,
    /// Handshake refused with 403; the authorizer's reason.
    Refused(DenyReason),
    /// Admitted, then closed by the gateway with this code and reason text.
    Closed(u16, &'static str),
    /// Admitted, never closed by the server, nothing written back (unknown events are ignored).
    Ignored,
}

/// A hostile client.
pub struct Attack {
    /// `--attack` name.
    pub name: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The gate's expected answer.
    pub expected: Expected,
}

/// Every attack, in demo order.
pub const ATTACKS: &[Attack] = &[
    Attack {
        name: "no-signature",
        description: "handshake without X-Twilio-Signature",
        expected: Expected::Refused(DenyReason::SignatureMissing),
    },
    Attack {
        name: "bad-signature",
        description: "signature under a wrong auth token",
        expected: Expected::Refused(DenyReason::SignatureMismatch),
    },
    Attack {
        name: "foreign-stream-token",
        description: "valid signature of account A plus ?token= of account B",
        expected: Expected::Refused(DenyReason::AccountMismatch),
    },
    Attack {
        name: "foreign-start",
        description: "start for another account",
        expected: Expected::Closed(1008, "start_account_mismatch"),
    },
    Attack {
        name: "other-call-token",
        description: "call token minted for another call",
        expected: Expected::Closed(1008, "call_token_invalid"),
    },
    Attack {
        name: "expired-token",
        description: "call token expired an hour ago",
        expected: Expected::Closed(1008, "call_token_expired"),
    },
    Attack {
        name: "missing-token",
        description: "start without customParameters.token",
        expected: Expected::Closed(1008, "call_token_missing"),
    },
    Attack {
        name: "malformed-json",
        description: "a frame that is not JSON",
        expected: Expected::Closed(1008, "frame_not_json"),
    },
    Attack {
        name: "binary-frame",
        description: "a binary frame",
        expected: Expected::Closed(1003, "frame_not_text"),
    },
    Attack {
        name: "oversized-frame",
        description: "a 40 KiB text frame",
        expected: Expected::Closed(1009, "frame_too_large"),
    },
    Attack {
        name: "event-flood",
        description: "200 frames of a non-Twilio event",
        expected: Expected::Ignored,
    },
];

/// Looks an attack up by name.
pub fn find(name: &str) -> Option<&'static Attack> {
    ATTACKS.iter().find(|a| a.name == name)
}

/// Everything a scenario needs.
pub struct CallSetup<'a> {
    /// URL to connect to.
    pub url: &'a str,
    /// URL to sign (the one in the TwiML).
    pub signed_url: &'a str,
    /// The calling account.
    pub me: &'a Identity,
    /// Another configured account (for the cross-account attacks).
    pub other: Option<&'a Identity>,
    /// mu-law frames for `media`.
    pub audio: &'a [[u8; FRAME_BYTES]],
    /// Pause between media frames.
    pub pacing: Duration,
    /// How long to wait for a server close after the script.
    pub linger: Duration,
}

/// Why a scenario cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// No such attack.
    #[error("unknown attack {0:?}; known: {1}")]
    Unknown(String, String),
    /// The credentials document lacks what the attack needs.
    #[error("attack {0} needs {1}")]
    Needs(&'static str, &'static str),
}

fn signed(setup: &CallSetup<'_>, url: &str, query: Option<&Secret>) -> Handshake {
    let sig = compute_signature(setup.me.auth_token.expose(), setup.signed_url, &[]);
    let url = match query {
        Some(t) => format!(
            "{url}?token={}",
            url::form_urlencoded::byte_serialize(t.expose().as_bytes()).collect::<String>()
        ),
        None => url.to_owned(),
    };
    Handshake {
        url,
        signature: Some(Secret::new(sig)),
        user_agent: TWILIO_USER_AGENT.into(),
    }
}

/// connected, start (with `token`, for `account`), the audio, stop.
fn call_frames(
    setup: &CallSetup<'_>,
    account: &AccountSid,
    token: Option<&Secret>,
    call: &crate::domain::CallSid,
    middle: Vec<Outgoing>,
) -> Vec<Outgoing> {
    let stream = fresh_stream_sid();
    let mut f = vec![
        Outgoing::Text(messages::connected()),
        Outgoing::Text(messages::start(
            account,
            call,
            &stream,
            token.map(Secret::expose),
        )),
    ];
    f.extend(middle);
    let mut seq = 2u64;
    for (chunk, audio) in setup.audio.iter().enumerate() {
        f.push(Outgoing::Media(messages::media(
            &stream,
            seq,
            chunk as u64 + 1,
            audio,
        )));
        seq += 1;
    }
    f.push(Outgoing::Text(messages::stop(account, call, &stream, seq)));
    f
}

fn script(frames: Vec<Outgoing>, setup: &CallSetup<'_>) -> Script {
    Script {
        frames,
        pacing: setup.pacing,
        linger: setup.linger,
    }
}

/// The legitimate call: signed handshake, `start` with a call token minted for this call.
pub fn legit(setup: &CallSetup<'_>) -> (Handshake, Script) {
    let call = fresh_call_sid();
    let token = setup.me.call_token(&call, unix_now(), 300);
    let frames = call_frames(setup, &setup.me.account, token.as_ref(), &call, vec![]);
    (signed(setup, setup.url, None), script(frames, setup))
}

/// The hostile client `name`.
pub fn attack(name: &str, setup: &CallSetup<'_>) -> Result<(Handshake, Script), ScenarioError> {
    let call = fresh_call_sid();
    let now = unix_now();
    let good_token = setup.me.call_token(&call, now, 300);
    let me = &setup.me.account;
    let normal = |middle: Vec<Outgoing>| call_frames(setup, me, good_token.as_ref(), &call, middle);
    let hs = signed(setup, setup.url, None);
    Ok(match name {
        "no-signature" => {
            let mut h = hs;
            h.signature = None;
            (h, script(normal(vec![]), setup))
        }
        "bad-signature" => {
            let mut h = hs;
            let wrong =
                compute_signature("0123456789abcdef0123456789abcdef", setup.signed_url, &[]);
            h.signature = Some(Secret::new(wrong));
            (h, script(normal(vec![]), setup))
        }
        "foreign-stream-token" => {
            let other =
                setup
                    .other
                    .and_then(|o| o.stream_token.as_ref())
                    .ok_or(ScenarioError::Needs(
                        "foreign-stream-token",
                        "a second account with a stream token",
                    ))?;
            (
                signed(setup, setup.url, Some(other)),
                script(normal(vec![]), setup),
            )
        }
        "foreign-start" => {
            let other = setup.other.ok_or(ScenarioError::Needs(
                "foreign-start",
                "a second account in the credentials document",
            ))?;
            let token = other.call_token(&call, now, 300);
            let frames = call_frames(setup, &other.account, token.as_ref(), &call, vec![]);
            (hs, script(frames, setup))
        }
        "other-call-token" => {
            let token = setup.me.call_token(&fresh_call_sid(), now, 300);
            (
                hs,
                script(call_frames(setup, me, token.as_ref(), &call, vec![]), setup),
            )
        }
        "expired-token" => {
            let token = setup.me.call_token(&call, now.saturating_sub(3600), 300);
            (
                hs,
                script(call_frames(setup, me, token.as_ref(), &call, vec![]), setup),
            )
        }
        "missing-token" => (
            hs,
            script(call_frames(setup, me, None, &call, vec![]), setup),
        ),
        "malformed-json" => (
            hs,
            script(
                normal(vec![Outgoing::Text("{\"event\":\"media\",".into())]),
                setup,
            ),
        ),
        "binary-frame" => (
            hs,
            script(
                normal(vec![Outgoing::Binary(vec![0xFF; FRAME_BYTES])]),
                setup,
            ),
        ),
        "oversized-frame" => {
            let big = format!(
                "{{\"event\":\"media\",\"pad\":\"{}\"}}",
                "x".repeat(40 * 1024)
            );
            (hs, script(normal(vec![Outgoing::Text(big)]), setup))
        }
        "event-flood" => {
            let stream = fresh_stream_sid();
            let flood = (0..200)
                .map(|i| {
                    Outgoing::Text(
                        serde_json::json!({"event": "surprise", "sequenceNumber": (i + 2).to_string(),
                            "streamSid": stream.as_str(), "surprise": {"n": i}})
                        .to_string(),
                    )
                })
                .collect();
            (hs, script(normal(flood), setup))
        }
        other => {
            let known = ATTACKS
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ScenarioError::Unknown(other.to_owned(), known));
        }
    })
}
