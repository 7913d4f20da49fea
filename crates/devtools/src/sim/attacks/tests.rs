//! The attack catalogue and the plans built from it.

use super::*;
use crate::domain::{AccountSid, Secret};
use crate::sim::client::Outgoing;
use crate::sim::identity::fresh_call_sid;

#[test]
fn every_attack_is_listed_once_and_its_name_parses_back() {
    let mut seen = std::collections::HashSet::new();
    for a in ATTACKS.iter().chain(RELAY_ATTACKS) {
        assert!(seen.insert(*a), "{a} listed twice");
        assert_eq!(Attack::parse_for(a.protocol(), a.name()), Ok(*a));
        assert!(attacks_of(a.protocol()).contains(a));
        assert!(!a.description().is_empty());
        // A new variant must be added to this match, and so to the list above it.
        match a {
            Attack::NoSignature
            | Attack::BadSignature
            | Attack::ForeignStreamToken
            | Attack::ForeignStart
            | Attack::OtherCallToken
            | Attack::ExpiredToken
            | Attack::MissingToken
            | Attack::MalformedJson
            | Attack::BinaryFrame
            | Attack::OversizedFrame
            | Attack::EventFlood
            | Attack::MediaBeforeStart
            | Attack::ReuseCallToken
            | Attack::ReplayWebhook
            | Attack::RelayNoSignature
            | Attack::RelayBadSignature
            | Attack::RelayOtherCallToken
            | Attack::RelayExpiredToken
            | Attack::ForeignSetup
            | Attack::OtherCallSetup
            | Attack::SetupMissing
            | Attack::SecondSetup
            | Attack::RelayReuseCallToken
            | Attack::MediaStreamsFrame
            | Attack::RelayMalformedJson
            | Attack::RelayBinaryFrame
            | Attack::RelayOversizedFrame => {}
        }
    }
    assert_eq!((ATTACKS.len(), RELAY_ATTACKS.len()), (14, 13));
    assert!(ATTACKS.iter().all(|a| a.name().parse::<Attack>() == Ok(*a)));
    let err = "legit-call".parse::<Attack>().err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("unknown media-streams attack \"legit-call\"; known: no-signature, bad-signature, foreign-stream-token, foreign-start, other-call-token, expired-token, missing-token, malformed-json, binary-frame, oversized-frame, event-flood, media-before-start, reuse-call-token, replay-webhook")
    );
}

#[test]
fn without_call_state_only_the_call_state_attacks_expect_otherwise() {
    for a in ATTACKS.iter().chain(RELAY_ATTACKS) {
        let (on, off) = (
            a.expected_under(GateState::Stateful),
            a.expected_under(GateState::Stateless),
        );
        assert_eq!(on, a.expected());
        assert_eq!(on != off, a.needs_call_state(), "{a}");
    }
    assert_eq!(
        Attack::MediaBeforeStart.expected(),
        Expected::Closed(1008, CloseReason::MediaBeforeStart)
    );
    assert_eq!(
        Attack::ReuseCallToken.expected(),
        Expected::Closed(1008, CloseReason::CallTokenReused)
    );
    assert_eq!(Attack::ReplayWebhook.expected(), Expected::SameCallToken);
    assert_eq!(
        Attack::ReplayWebhook.expected_under(GateState::Stateless),
        Expected::NewCallToken
    );
    assert_eq!("off".parse(), Ok(GateState::Stateless));
    assert_eq!("dynamodb".parse(), Ok(GateState::Stateful));
    assert!("maybe".parse::<GateState>().is_err());
}

fn setup_with<'a>(
    me: &'a Identity,
    audio: &'a [[u8; FRAME_BYTES]],
    webhook: Option<WebhookTarget<'a>>,
) -> CallSetup<'a> {
    CallSetup {
        url: "ws://127.0.0.1:9/dev",
        signed_url: "ws://127.0.0.1:9/dev",
        me,
        other: None,
        audio,
        pacing: Duration::ZERO,
        linger: Duration::ZERO,
        start_grace: Duration::from_millis(100),
        webhook,
    }
}

fn texts(frames: impl Iterator<Item = Outgoing>) -> Vec<serde_json::Value> {
    frames
        .filter_map(|f| match f {
            Outgoing::Text(t) | Outgoing::Media(t) => serde_json::from_str(&t).ok(),
            _ => None,
        })
        .collect()
}

#[test]
fn the_call_state_attacks_are_built_as_described() {
    let doc = crate::local::devcreds::generate();
    let me = Identity::from_document(doc.expose(), 0).expect("identity");
    let audio = [[0xFFu8; FRAME_BYTES]; 5];

    // media-before-start: connected, then media for the grace + 2 s at 20 ms, never a start.
    let Ok(Plan::Socket(h, script)) =
        attack(Attack::MediaBeforeStart, &setup_with(&me, &audio, None))
    else {
        panic!("one socket");
    };
    assert!(h.signature.is_some(), "a signed, admissible handshake");
    let steps: Vec<Outgoing> = script.frames.collect();
    let pauses = steps
        .iter()
        .filter(|s| matches!(s, Outgoing::Pause(d) if *d == Duration::from_millis(20)))
        .count();
    assert_eq!(pauses, 105, "(100 ms + 2 s) / 20 ms");
    let frames = texts(steps.into_iter());
    assert_eq!(frames.len(), 106);
    assert_eq!(frames[0]["event"], "connected");
    assert!(frames[1..].iter().all(|f| f["event"] == "media"));

    // reuse-call-token: two sockets, one start token.
    let Ok(Plan::TokenReuse(plan)) = attack(Attack::ReuseCallToken, &setup_with(&me, &audio, None))
    else {
        panic!("two sockets");
    };
    let token_of = |frames: &[serde_json::Value]| {
        frames
            .iter()
            .find(|f| f["event"] == "start")
            .map(|f| f["start"]["customParameters"]["token"].clone())
    };
    let steps: Vec<Outgoing> = plan.first.1.frames.collect();
    let at = steps
        .iter()
        .position(|s| matches!(s, Outgoing::Wait(_)))
        .expect("the first waits");
    assert_eq!(at, 5, "connected, start, 3 media, then the wait");
    let first = texts(steps.into_iter());
    let second = texts(plan.second.1.frames);
    assert_eq!(first.len(), 8, "connected, start, 5 media, stop");
    assert_eq!(second.len(), 8);
    assert!(token_of(&first).is_some_and(|t| t.is_string()));
    assert_eq!(token_of(&first), token_of(&second));
    assert_ne!(first[1]["streamSid"], second[1]["streamSid"]);
    assert_eq!(plan.after, REUSE_AFTER);

    // replay-webhook: needs the webhook.
    assert!(matches!(
        attack(Attack::ReplayWebhook, &setup_with(&me, &audio, None)),
        Err(ScenarioError::NoWebhook(Attack::ReplayWebhook))
    ));
    let hook = WebhookTarget {
        url: "http://127.0.0.1:9/voice",
        signed_url: "https://tunnel.example/voice",
    };
    let Ok(Plan::WebhookReplay(r)) =
        attack(Attack::ReplayWebhook, &setup_with(&me, &audio, Some(hook)))
    else {
        panic!("webhook");
    };
    assert_eq!(
        (r.url.as_str(), r.signed_url.as_str(), r.after),
        (
            "http://127.0.0.1:9/voice",
            "https://tunnel.example/voice",
            REPLAY_AFTER
        )
    );
}

#[test]
fn scenarios_start_with_the_legitimate_call() {
    let names: Vec<&str> = Scenario::all().map(Scenario::name).collect();
    assert_eq!(names.first(), Some(&"legit-call"));
    assert_eq!(names.len(), 1 + ATTACKS.len());
    let relay: Vec<Scenario> = Scenario::of(Protocol::ConversationRelay).collect();
    assert_eq!(relay.first(), Some(&Scenario::RelayLegit));
    assert_eq!(relay.len(), 1 + RELAY_ATTACKS.len());
    assert!(relay
        .iter()
        .all(|s| s.protocol() == Protocol::ConversationRelay));
    assert_eq!(Scenario::Legit.expected(), Expected::Admitted);
}

#[test]
fn call_frames_are_numbered_as_twilio_numbers_them() {
    let audio = [[0xFFu8; FRAME_BYTES]; 3];
    let account = AccountSid::parse("AC0123456789abcdef0123456789abcdef").expect("sid");
    let frames: Vec<String> = CallFrames::new(account, fresh_call_sid(), None, &audio)
        .map(|f| match f {
            Outgoing::Text(t) | Outgoing::Media(t) => t,
            _ => String::new(),
        })
        .collect();
    assert_eq!(frames.len(), 6);
    let v: Vec<serde_json::Value> = frames
        .iter()
        .map(|f| serde_json::from_str(f).expect("json"))
        .collect();
    assert_eq!(v[0]["event"], "connected");
    assert_eq!(
        (v[1]["event"].as_str(), v[1]["sequenceNumber"].as_str()),
        (Some("start"), Some("1"))
    );
    assert_eq!(
        (
            v[2]["sequenceNumber"].as_str(),
            v[2]["media"]["chunk"].as_str()
        ),
        (Some("2"), Some("1"))
    );
    assert_eq!(
        (
            v[4]["sequenceNumber"].as_str(),
            v[4]["media"]["chunk"].as_str()
        ),
        (Some("4"), Some("3"))
    );
    assert_eq!(
        (v[5]["event"].as_str(), v[5]["sequenceNumber"].as_str()),
        (Some("stop"), Some("5"))
    );
}

#[test]
fn a_relay_session_carries_its_call_in_the_signed_query_and_opens_with_setup() {
    let doc = crate::local::devcreds::generate();
    let me = Identity::from_document(doc.expose(), 0).expect("identity");
    let audio = [[0xFFu8; FRAME_BYTES]; 1];
    let mut setup = setup_with(&me, &audio, None);
    setup.signed_url = "wss://gate.example.com/prod";
    let (hs, script) = relay_legit(&setup).expect("a call-token key");
    let query = hs
        .url
        .strip_prefix("ws://127.0.0.1:9/dev?callSid=")
        .expect("query");
    let (call, token) = query.split_once("&callToken=").expect("token");
    // Signed as Twilio signs it: over the URL in the TwiML, query included.
    let signed = format!("wss://gate.example.com/prod?callSid={call}&callToken={token}");
    let want = crate::domain::compute_signature(me.auth_token.expose(), &signed, &[]);
    assert_eq!(
        hs.signature.as_ref().map(Secret::expose),
        Some(want.as_str())
    );
    let turns = texts(script.frames);
    let kinds: Vec<&str> = turns.iter().filter_map(|t| t["type"].as_str()).collect();
    assert_eq!(kinds, ["setup", "prompt", "dtmf", "interrupt", "prompt"]);
    assert_eq!(kinds.len(), RELAY_TURNS);
    assert_eq!(turns[0]["callSid"], call);
    assert_eq!(turns[0]["accountSid"], me.account.as_str());

    // Every ConversationRelay attack is built by the relay plans, none by the Media Streams ones.
    for a in RELAY_ATTACKS {
        assert!(attack(*a, &setup).is_ok(), "{a}");
    }
    assert!(matches!(
        relay_plans::relay_attack(Attack::NoSignature, &setup),
        Err(ScenarioError::OtherProtocol(Attack::NoSignature))
    ));
    let Ok(Plan::Socket(unsigned, _)) = attack(Attack::RelayNoSignature, &setup) else {
        panic!("one socket");
    };
    assert!(unsigned.signature.is_none() && unsigned.url.contains("&callToken=v1."));
    let Ok(Plan::Socket(_, foreign)) = attack(Attack::ForeignSetup, &setup) else {
        panic!("one socket");
    };
    let foreign = texts(foreign.frames);
    assert_eq!(foreign[0]["type"], "setup");
    assert_ne!(foreign[0]["accountSid"], me.account.as_str());
    let Ok(Plan::TokenReuse(reuse)) = attack(Attack::RelayReuseCallToken, &setup) else {
        panic!("two sockets");
    };
    assert_eq!(reuse.first.0.url, reuse.second.0.url, "one handshake URL");

    // Without a call-token key there is no ConversationRelay session to place.
    let mut bare: serde_json::Value = serde_json::from_str(doc.expose()).expect("json");
    bare.as_object_mut().map(|o| o.remove("callTokenKeys"));
    let bare = Identity::from_document(&bare.to_string(), 0).expect("identity");
    assert!(matches!(
        relay_legit(&setup_with(&bare, &audio, None)),
        Err(ScenarioError::NoCallTokenKey)
    ));
}
