//! The legitimate call's socket as Twilio makes it: the signed handshake and the call's frames,
//! which most attacks reuse.

use super::{CallSetup, TWILIO_USER_AGENT};
use crate::domain::{compute_signature, fixtures, AccountSid, CallSid, Secret, StreamSid};
use crate::sim::audio::FRAME_BYTES;
use crate::sim::client::{Handshake, Outgoing, Script};
use crate::sim::identity::{fresh_call_sid, fresh_stream_sid, Identity};
use stream_gate_lambda::clock::unix_now;

/// The handshake Twilio makes: `X-Twilio-Signature` over `signed_url` under `me`'s primary auth
/// token, Twilio's User-Agent, connecting to `url` (plus `?token=` when `query` is given).
pub fn signed_handshake(
    me: &Identity,
    url: &str,
    signed_url: &str,
    query: Option<&Secret>,
) -> Handshake {
    let sig = compute_signature(me.auth_token.expose(), signed_url, &[]);
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

pub(super) fn signed(setup: &CallSetup<'_>, query: Option<&Secret>) -> Handshake {
    signed_handshake(setup.me, setup.url, setup.signed_url, query)
}

/// One call's frames as Twilio sends them — `connected`, `start`, then (for an attack) the extra
/// frames, one `media` per audio frame (sequence numbers from 2, chunks from 1), `stop` — built as
/// they are sent, so a long call is never held in memory.
pub struct CallFrames<'a> {
    head: std::vec::IntoIter<Outgoing>,
    account: AccountSid,
    call: CallSid,
    stream: StreamSid,
    audio: &'a [[u8; FRAME_BYTES]],
    next: usize,
    stopped: bool,
}

impl<'a> CallFrames<'a> {
    /// The call `call` of `account` on a fresh stream, with `token` in `customParameters`.
    pub fn new(
        account: AccountSid,
        call: CallSid,
        token: Option<&Secret>,
        audio: &'a [[u8; FRAME_BYTES]],
    ) -> Self {
        Self::with_extra(account, call, token, audio, Vec::new())
    }

    /// As [`CallFrames::new`], with `extra` frames between `start` and the first `media`.
    pub fn with_extra(
        account: AccountSid,
        call: CallSid,
        token: Option<&Secret>,
        audio: &'a [[u8; FRAME_BYTES]],
        extra: Vec<Outgoing>,
    ) -> Self {
        let stream = fresh_stream_sid();
        let mut head = vec![
            Outgoing::Text(fixtures::connected()),
            Outgoing::Text(fixtures::start(
                &account,
                &call,
                &stream,
                token.map(Secret::expose),
            )),
        ];
        head.extend(extra);
        Self {
            head: head.into_iter(),
            account,
            call,
            stream,
            audio,
            next: 0,
            stopped: false,
        }
    }
}

impl Iterator for CallFrames<'_> {
    type Item = Outgoing;

    fn next(&mut self) -> Option<Outgoing> {
        if let Some(f) = self.head.next() {
            return Some(f);
        }
        let seq = self.next as u64 + 2;
        if let Some(audio) = self.audio.get(self.next) {
            self.next += 1;
            return Some(Outgoing::Media(fixtures::media(
                &self.stream,
                seq,
                self.next as u64,
                audio,
            )));
        }
        if self.stopped {
            return None;
        }
        self.stopped = true;
        Some(Outgoing::Text(fixtures::stop(
            &self.account,
            &self.call,
            &self.stream,
            seq,
        )))
    }
}

pub(super) fn script<'a>(
    frames: impl Iterator<Item = Outgoing> + Send + 'a,
    setup: &CallSetup<'_>,
) -> Script<'a> {
    Script {
        frames: Box::new(frames),
        pacing: setup.pacing,
        linger: setup.linger,
        echo: None,
    }
}

/// The legitimate call: signed handshake, `start` with a call token minted for this call.
pub fn legit<'a>(setup: &CallSetup<'a>) -> (Handshake, Script<'a>) {
    let call = fresh_call_sid();
    let token = setup.me.call_token(&call, unix_now(), 300);
    legit_with(setup, call, token.as_ref())
}

/// The legitimate call `call` with the call token `token` (e.g. the one a voice webhook answered).
pub fn legit_with<'a>(
    setup: &CallSetup<'a>,
    call: CallSid,
    token: Option<&Secret>,
) -> (Handshake, Script<'a>) {
    let frames = CallFrames::new(setup.me.account, call, token, setup.audio);
    (signed(setup, None), script(frames, setup))
}
