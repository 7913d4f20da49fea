//! Criterion benchmarks for the per-event work the Lambda binaries do (BENCHMARKS.md).
//!
//! Frames come from `domain::fixtures` (the dialect Twilio speaks, 160-byte mu-law payloads = 20 ms);
//! the credentials document is 2 accounts x 2 auth tokens, the worst case the issue budgets.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use stream_gate_domain::base64check::decoded_len;
use stream_gate_domain::call_state::StartedCall;
use stream_gate_domain::connection_context::ConnectionContext;
use stream_gate_domain::fixtures;
use stream_gate_domain::pipeline::{self, Decision, StateStep};
use stream_gate_domain::record::{Connection, DeliveryRecord};
use stream_gate_domain::stream_token::verify_stream_token;
use stream_gate_domain::{
    decide_connect, judge_frame, mint_call_token, AccountSid, AuthMode, CallSid, CallTokenPolicy,
    ConnectRequest, Credentials, Presented, Protocol, StreamSid, Verdict,
};

const NOW: u64 = 1_795_881_600;
const ACCOUNT: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const CALL: &str = "CA00112233445566778899aabbccddeeff";
const STREAM: &str = "MZ00112233445566778899aabbccddeeff";

/// 2 accounts x 2 auth tokens, one stream token, one call-token key. Test values only.
const DOCUMENT: &str = r#"{
  "twilioAccounts": [
    {"accountSid": "ACdeadbeefdeadbeefdeadbeefdeadbeef",
     "authTokens": ["bench-only-auth-token-primary-000", "bench-only-auth-token-secondary-00"]},
    {"accountSid": "ACbadbadbadbadbadbadbadbadbadbadba",
     "authTokens": ["bench-only-auth-token-primary-111", "bench-only-auth-token-secondary-11"]}
  ],
  "streamTokens": [{"token": "bench-only-stream-token-0123456789abcdef",
                    "accountSid": "ACdeadbeefdeadbeefdeadbeefdeadbeef"}],
  "callTokenKeys": ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"]
}"#;

fn fixtures() -> (Credentials, AccountSid, CallSid, StreamSid) {
    let creds = Credentials::from_json(DOCUMENT).expect("bench document is valid");
    let account = AccountSid::parse(ACCOUNT).expect("valid SID");
    let call = CallSid::parse(CALL).expect("valid SID");
    let stream = StreamSid::parse(STREAM).expect("valid SID");
    (creds, account, call, stream)
}

/// 160 bytes of mu-law that is not all one value (a realistic base64 alphabet mix).
fn audio() -> Vec<u8> {
    (0..160u32).map(|i| (i * 37 % 251) as u8).collect()
}

fn verdicts(c: &mut Criterion) {
    let (creds, account, call, stream) = fixtures();
    let audio = audio();

    let media = fixtures::media(&stream, 1234, 1233, &audio);
    assert!(matches!(
        judge_frame(
            media.as_bytes(),
            &account,
            CallTokenPolicy::Required,
            None,
            NOW
        ),
        Verdict::Accept(_)
    ));
    c.bench_function("media_verdict", |b| {
        b.iter(|| {
            judge_frame(
                black_box(media.as_bytes()),
                &account,
                CallTokenPolicy::Required,
                None,
                NOW,
            )
        })
    });

    let token = mint_call_token(&creds, &account, &call, NOW, 300).expect("has a key");
    let start = fixtures::start(&account, &call, &stream, Some(token.expose()));
    assert!(matches!(
        judge_frame(
            start.as_bytes(),
            &account,
            CallTokenPolicy::Required,
            Some(&creds),
            NOW
        ),
        Verdict::Accept(_)
    ));
    c.bench_function("start_verdict_call_token", |b| {
        b.iter(|| {
            judge_frame(
                black_box(start.as_bytes()),
                &account,
                CallTokenPolicy::Required,
                Some(&creds),
                NOW,
            )
        })
    });

    // A well-formed signature (base64 of 20 bytes) that no token produces: every account, token and
    // URL variant is tried.
    let req = ConnectRequest {
        signature: Presented::One("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        stream_token: Presented::Absent,
        signature_settings: Presented::Absent,
        signed_url: "wss://abc123.execute-api.us-east-1.amazonaws.com/prod",
    };
    assert!(decide_connect(&req, Some(&creds), AuthMode::Signature).is_err());
    c.bench_function("connect_signature_no_match_2x2", |b| {
        b.iter(|| decide_connect(black_box(&req), Some(&creds), AuthMode::Signature))
    });

    let payload = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &audio);
    c.bench_function("base64_check_160", |b| {
        b.iter(|| decoded_len(black_box(payload.as_bytes())))
    });

    let wrong = "bench-only-stream-token-not-configured-0000";
    assert!(verify_stream_token(&creds, wrong).is_err());
    c.bench_function("stream_token_miss", |b| {
        b.iter(|| verify_stream_token(&creds, black_box(wrong)))
    });

    // Delivery (docs/records.md): what the router adds per delivered frame, excluding the network.
    // The frame's verdict and call-state answer come first (timed above); this is the record alone.
    let connection = Connection {
        protocol: Protocol::MediaStreams,
        connection_id: "Xk2TmdKPIAMCJqw=",
        management_endpoint: "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
        received_at_ms: NOW * 1000,
    };
    let recorded = StartedCall::new(account, call, stream, NOW);
    let context = ConnectionContext::MediaStreams { account };
    let Decision::Deliver(verified) = pipeline::parse(&media, Protocol::MediaStreams)
        .and_then(|p| p.judge(&context, CallTokenPolicy::Required, None, NOW))
        .expect("a media frame is accepted")
        .decide(StateStep::Accept(Some(recorded)))
    else {
        panic!("a media frame of a recorded start is delivered");
    };
    assert!(DeliveryRecord::of_frame(&verified, &connection).is_ok());
    c.bench_function("record_v1_media", |b| {
        b.iter(|| DeliveryRecord::of_frame(black_box(&verified), black_box(&connection)))
    });
}

criterion_group!(benches, verdicts);
criterion_main!(benches);
