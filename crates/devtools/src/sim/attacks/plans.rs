//! The [`Plan`] of each hostile client: [`attack`] is one arm per [`Attack`], each a few lines or
//! a call to the function below that builds it.

use std::time::Duration;

use tokio::sync::oneshot;

use super::frames::{script, signed, CallFrames};
use super::{
    Attack, CallSetup, Plan, ScenarioError, TokenReuse, WebhookReplay, BEYOND_GRACE, REPLAY_AFTER,
    REUSE_AFTER,
};
use crate::domain::{compute_signature, fixtures, CallSid, Protocol, Secret};
use crate::sim::audio::FRAME_BYTES;
use crate::sim::client::{Handshake, Outgoing};
use crate::sim::identity::{fresh_call_sid, fresh_stream_sid};
use stream_gate_lambda::clock::unix_now;

/// One attack's call: a fresh CallSid of the calling account, and a good call token for it.
struct Call<'s, 'a> {
    setup: &'s CallSetup<'a>,
    sid: CallSid,
    now: u64,
    token: Option<Secret>,
}

impl<'a> Call<'_, 'a> {
    /// One socket: `handshake`, then `frames` at the setup's pacing.
    fn socket(
        &self,
        handshake: Handshake,
        frames: impl Iterator<Item = Outgoing> + Send + 'a,
    ) -> Plan<'a> {
        Plan::Socket(handshake, script(frames, self.setup))
    }

    /// The legitimate call's frames (the good token), with `extra` frames after `start`.
    fn normal(&self, extra: Vec<Outgoing>) -> CallFrames<'a> {
        CallFrames::with_extra(
            self.setup.me.account,
            self.sid,
            self.token.as_ref(),
            self.setup.audio,
            extra,
        )
    }

    /// The call's frames with `token` in `start` instead of the good one.
    fn with_token(&self, token: Option<&Secret>) -> CallFrames<'a> {
        CallFrames::new(self.setup.me.account, self.sid, token, self.setup.audio)
    }
}

/// The hostile client `which`, of either protocol.
pub fn attack<'a>(which: Attack, setup: &CallSetup<'a>) -> Result<Plan<'a>, ScenarioError> {
    match which.protocol() {
        Protocol::MediaStreams => media_attack(which, setup),
        Protocol::ConversationRelay => super::relay_plans::relay_attack(which, setup),
    }
}

/// The Media Streams hostile client `which`.
// A flat table: one arm per attack.
fn media_attack<'a>(which: Attack, setup: &CallSetup<'a>) -> Result<Plan<'a>, ScenarioError> {
    let now = unix_now();
    let sid = fresh_call_sid();
    let call = Call {
        setup,
        sid,
        now,
        token: setup.me.call_token(&sid, now, 300),
    };
    let hs = signed(setup, None);
    Ok(match which {
        Attack::NoSignature => {
            let mut h = hs;
            h.signature = None;
            call.socket(h, call.normal(vec![]))
        }
        Attack::BadSignature => {
            let mut h = hs;
            let wrong =
                compute_signature("0123456789abcdef0123456789abcdef", setup.signed_url, &[]);
            h.signature = Some(Secret::new(wrong));
            call.socket(h, call.normal(vec![]))
        }
        Attack::ForeignStreamToken => {
            let other =
                setup
                    .other
                    .and_then(|o| o.stream_token.as_ref())
                    .ok_or(ScenarioError::Needs(
                        which,
                        "a second account with a stream token",
                    ))?;
            call.socket(signed(setup, Some(other)), call.normal(vec![]))
        }
        Attack::ForeignStart => foreign_start(&call, hs)?,
        Attack::OtherCallToken => {
            let token = setup.me.call_token(&fresh_call_sid(), now, 300);
            call.socket(hs, call.with_token(token.as_ref()))
        }
        Attack::ExpiredToken => {
            let token = setup.me.call_token(&sid, now.saturating_sub(3600), 300);
            call.socket(hs, call.with_token(token.as_ref()))
        }
        Attack::MissingToken => call.socket(hs, call.with_token(None)),
        Attack::MalformedJson => call.socket(
            hs,
            call.normal(vec![Outgoing::Text("{\"event\":\"media\",".into())]),
        ),
        Attack::BinaryFrame => call.socket(
            hs,
            call.normal(vec![Outgoing::Binary(vec![0xFF; FRAME_BYTES])]),
        ),
        Attack::OversizedFrame => call.socket(hs, call.normal(vec![oversized_frame()])),
        Attack::EventFlood => call.socket(hs, call.normal(event_flood())),
        Attack::MediaBeforeStart => call.socket(hs, media_without_start(setup)),
        Attack::ReuseCallToken => reuse_call_token(&call, hs),
        Attack::ReplayWebhook => {
            let hook = setup.webhook.ok_or(ScenarioError::NoWebhook(which))?;
            Plan::WebhookReplay(WebhookReplay {
                url: hook.url.to_owned(),
                signed_url: hook.signed_url.to_owned(),
                call: sid,
                after: REPLAY_AFTER,
            })
        }
        relay => return Err(ScenarioError::OtherProtocol(relay)),
    })
}

/// `foreign-start`: the call started for the second account, with its own good token.
fn foreign_start<'a>(call: &Call<'_, 'a>, hs: Handshake) -> Result<Plan<'a>, ScenarioError> {
    let setup = call.setup;
    let other = setup.other.ok_or(ScenarioError::Needs(
        Attack::ForeignStart,
        "a second account in the credentials document",
    ))?;
    let token = other.call_token(&call.sid, call.now, 300);
    let frames = CallFrames::new(other.account, call.sid, token.as_ref(), setup.audio);
    Ok(call.socket(hs, frames))
}

/// `oversized-frame`: a 40 KiB text frame.
fn oversized_frame() -> Outgoing {
    Outgoing::Text(format!(
        "{{\"event\":\"media\",\"pad\":\"{}\"}}",
        "x".repeat(40 * 1024)
    ))
}

/// `event-flood`: 200 frames of a non-Twilio event.
fn event_flood() -> Vec<Outgoing> {
    let stream = fresh_stream_sid();
    (0..200)
        .map(|i| {
            Outgoing::Text(
                serde_json::json!({"event": "surprise", "sequenceNumber": (i + 2).to_string(),
                    "streamSid": stream.as_str(), "surprise": {"n": i}})
                .to_string(),
            )
        })
        .collect()
}

/// `reuse-call-token`: the token's rightful user, and a second connection with the same call and
/// token on its own stream (`hs`) while the first waits.
fn reuse_call_token<'a>(call: &Call<'_, 'a>, hs: Handshake) -> Plan<'a> {
    let setup = call.setup;
    let (reached_tx, reached) = oneshot::channel::<()>();
    let (release, release_rx) = oneshot::channel::<()>();
    let wait = Outgoing::Wait(Box::pin(async move {
        let _ = reached_tx.send(());
        let _ = release_rx.await;
    }));
    let first = first_of_reuse(call, wait);
    // The second connection: the same call, the same token, its own stream.
    let second = call.with_token(call.token.as_ref());
    Plan::TokenReuse(TokenReuse {
        first: (signed(setup, None), script(first.into_iter(), setup)),
        second: (hs, script(second, setup)),
        reached,
        release,
        after: REUSE_AFTER,
    })
}

/// The first connection of `reuse-call-token`, the token's rightful user: connected, start, a few
/// media, then `wait` (for the second connection's turn), then the rest of the call.
fn first_of_reuse(call: &Call<'_, '_>, wait: Outgoing) -> Vec<Outgoing> {
    let (me, audio) = (call.setup.me.account, call.setup.audio);
    let (head, tail) = audio.split_at(audio.len().min(3));
    let stream = fresh_stream_sid();
    let mut first: Vec<Outgoing> = vec![
        Outgoing::Text(fixtures::connected()),
        Outgoing::Text(fixtures::start(
            &me,
            &call.sid,
            &stream,
            call.token.as_ref().map(Secret::expose),
        )),
    ];
    let media = |i: usize, audio: &[u8; FRAME_BYTES]| {
        Outgoing::Media(fixtures::media(&stream, i as u64 + 2, i as u64 + 1, audio))
    };
    first.extend(head.iter().enumerate().map(|(i, a)| media(i, a)));
    first.push(wait);
    first.extend(
        tail.iter()
            .enumerate()
            .map(|(i, a)| media(i + head.len(), a)),
    );
    first.push(Outgoing::Text(fixtures::stop(
        &me,
        &call.sid,
        &stream,
        audio.len() as u64 + 2,
    )));
    first
}

/// `media-before-start`: `connected`, then a `media` frame every 20 ms — never a `start` — for the
/// start grace plus [`BEYOND_GRACE`] (the client stops early when the server closes).
fn media_without_start<'a>(setup: &CallSetup<'a>) -> impl Iterator<Item = Outgoing> + Send + 'a {
    const SILENCE: [u8; FRAME_BYTES] = [0xFF; FRAME_BYTES];
    const EVERY: Duration = Duration::from_millis(20);
    let stream = fresh_stream_sid();
    let count = (setup.start_grace + BEYOND_GRACE).as_millis() / EVERY.as_millis();
    let audio = setup.audio;
    std::iter::once(Outgoing::Text(fixtures::connected())).chain(
        (0..u64::try_from(count).unwrap_or(u64::MAX)).flat_map(move |i| {
            let frame = usize::try_from(i)
                .ok()
                .and_then(|i| audio.get(i % audio.len().max(1)))
                .unwrap_or(&SILENCE);
            [
                Outgoing::Pause(EVERY),
                Outgoing::Text(fixtures::media(&stream, i + 2, i + 1, frame)),
            ]
        }),
    )
}
