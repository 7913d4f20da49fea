//! `stream-gate demo`: the whole system on one machine. Starts the local gateway on a free loopback
//! port with a fresh development credentials document (in a temporary directory, not the user's),
//! places one legitimate simulated call and then every attack, and tabulates expected against
//! observed outcomes: one table for Media Streams, one for ConversationRelay. The gateway keeps call state in memory unless told otherwise
//! ([`DemoOptions::call_state`]); without it, the attacks only call state stops are expected to
//! succeed, and their rows say so.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{AuthMode, CallTokenPolicy, Protocol};
use crate::local::{devcreds, ConnectionRecord, Gateway, GatewayOptions};
use crate::record_server::{EchoOptions, EchoServer};
use crate::sim::attacks::{Attack, CallSetup, Expected, GateState, Scenario, WebhookTarget};
use crate::sim::runner::{plan_of, run_course, Course, Turn};
use crate::sim::{audio, Identity, Observed, ReplayReport, ReplayVerdict, SimError, SimReport};
use stream_gate_lambda::adapters::FileSource;
use stream_gate_lambda::adapters::SinkTarget;
use stream_gate_lambda::config::CallStateMode;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Scenario name (`legit-call` or an attack name).
    pub scenario: String,
    /// Expected outcome.
    pub expected: String,
    /// Observed outcome.
    pub observed: String,
    /// Reason code observed (authorizer deny reason or close reason), `-` when none.
    pub reason: String,
    /// Milliseconds from the start of the scenario to its outcome (close or end).
    pub time_ms: u128,
    /// Observed equals expected.
    pub ok: bool,
}

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// `media` frames of the legitimate call (paced 20 ms: 50 = one second of audio).
    pub legit_frames: usize,
    /// Pacing of the legitimate call's media frames.
    pub pacing: Duration,
    /// The gateway's call state (`memory` by default; `off` shows what a stateless gate leaves
    /// open).
    pub call_state: CallStateMode,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            legit_frames: 50,
            pacing: Duration::from_millis(20),
            call_state: CallStateMode::Memory,
        }
    }
}

/// Why the demo could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Temporary directory or socket.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The generated document did not load (a bug).
    #[error("{0}")]
    Identity(#[from] crate::sim::identity::IdentityError),
    /// A scenario could not be built or connect.
    #[error("{0}")]
    Scenario(String),
}

/// The human wording of an expectation.
pub fn describe(expected: Expected) -> String {
    match expected {
        Expected::Admitted => "admitted, all frames accepted, client stop".into(),
        Expected::Refused(r) => format!("refused 403 {}", r.code()),
        Expected::Closed(code, reason) => format!("closed {code} {}", reason.code()),
        Expected::Ignored => "not closed, 0 frames echoed".into(),
        Expected::SameCallToken => "the same call token twice".into(),
        Expected::NewCallToken => "a new call token for the replay".into(),
    }
}

/// The expectation of `scenario` against a gate in `state`, in words: [`describe`], plus what the
/// row is about when it is an attack only call state stops.
pub fn describe_scenario(scenario: Scenario, state: GateState) -> String {
    describe(scenario.expected_under(state)) + &scenario_note(scenario, state)
}

/// What a row's expectation adds for `scenario` in `state` (shared with `verify`'s rows): the
/// reused-token attack leaves its first connection alone, and attacks only call state stops are
/// marked as not stopped without it.
pub fn scenario_note(scenario: Scenario, state: GateState) -> String {
    let mut note = String::new();
    if matches!(
        scenario,
        Scenario::Attack(Attack::ReuseCallToken | Attack::RelayReuseCallToken)
    ) {
        note.push_str("; first untouched");
    }
    if matches!(scenario, Scenario::Attack(a) if a.needs_call_state())
        && state == GateState::Stateless
    {
        note.push_str(" (no call state: not stopped)");
    }
    note
}

/// The verdict on one scenario: what was seen, and whether it is what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Observed equals expected.
    pub ok: bool,
    /// Observed outcome, in words (`refused 403`, `closed 1008`, ...).
    pub observed: String,
    /// Reason code observed (authorizer deny reason or close reason), `-` when none.
    pub reason: String,
    /// Milliseconds from the start of the scenario to its outcome (close or end).
    pub time_ms: u128,
}

impl Judgement {
    /// The table row of scenario `scenario` expected to end as `expected`.
    pub fn into_row(self, scenario: &str, expected: String) -> Row {
        Row {
            scenario: scenario.into(),
            expected,
            observed: self.observed,
            reason: self.reason,
            time_ms: self.time_ms,
            ok: self.ok,
        }
    }
}

/// Compares what the socket (and, when given, the gateway's record of the connection) showed
/// with what was expected.
pub fn judge(
    expected: Expected,
    report: &SimReport,
    record: Option<&ConnectionRecord>,
) -> Judgement {
    let total = report.elapsed.as_millis();
    if !report.admitted {
        let status = report.refused_status.unwrap_or(0);
        let reason = record.and_then(|r| r.deny_reason).unwrap_or("-");
        let ok = matches!(expected, Expected::Refused(r)
            if status == 403 && record.is_none_or(|rec| rec.deny_reason == Some(r.code())));
        return Judgement {
            ok,
            observed: format!("refused {status}"),
            reason: reason.into(),
            time_ms: total,
        };
    }
    if let Some((code, text, at)) = &report.server_close {
        let ok = matches!(expected, Expected::Closed(c, r)
            if *code == c && text == r.code() && record.is_none_or(|rec| rec.close_reason == Some(r.code())));
        let reason = if text.is_empty() { "-" } else { text.as_str() };
        return Judgement {
            ok,
            observed: format!("closed {code}"),
            reason: reason.into(),
            time_ms: at.as_millis(),
        };
    }
    let accepted = record.map(|r| r.accepted);
    let clean = record.is_none_or(|r| r.close_reason.is_none());
    // What came back other than Twilio's own answers (`media`, `mark`, `clear` for the stream),
    // which come from an application behind the gate (the echo): the gate itself never writes.
    let written = report.frames_received - report.answers.legal().min(report.frames_received);
    let (ok, observed) = match expected {
        Expected::Admitted => {
            let all = record.is_none_or(|r| {
                r.accepted == report.frames_sent as u64 && r.frames == report.frames_sent as u64
            });
            let observed = match accepted {
                Some(a) => format!("admitted, {a}/{} accepted, client stop", report.frames_sent),
                None => format!("admitted, {} sent, client stop", report.frames_sent),
            };
            (all && clean && written == 0, observed)
        }
        _ => {
            let observed = format!("not closed, {written} frames echoed");
            let ok = expected == Expected::Ignored && clean && written == 0;
            (ok, observed)
        }
    };
    Judgement {
        ok,
        observed,
        reason: "-".into(),
        time_ms: total,
    }
}

/// Judges `replay-webhook`'s two answers. The tokens are compared, never shown.
pub fn judge_replay(expected: Expected, report: &ReplayReport) -> Judgement {
    let (ok, observed) = match report.verdict() {
        ReplayVerdict::SameToken => (
            expected == Expected::SameCallToken,
            "the same call token twice".to_owned(),
        ),
        ReplayVerdict::NewToken => (
            expected == Expected::NewCallToken,
            "a new call token for the replay".to_owned(),
        ),
        ReplayVerdict::NoToken(_, what) => (false, what),
    };
    Judgement {
        ok,
        observed,
        reason: "-".into(),
        time_ms: report.elapsed.as_millis(),
    }
}

/// Judges whatever a scenario showed; `records` are the gateway's records of its connections, in
/// the order they connected, when the gateway is at hand.
pub fn judge_observed(
    expected: Expected,
    observed: &Observed,
    records: Option<&[ConnectionRecord]>,
) -> Judgement {
    match observed {
        Observed::Socket(report) => judge(expected, report, records.and_then(|r| r.first())),
        Observed::TokenReuse { first, second } => {
            let mut j = judge(expected, second, records.and_then(|r| r.get(1)));
            // The token's rightful connection must stream on as a legitimate call does.
            let holder = judge(Expected::Admitted, first, records.and_then(|r| r.first()));
            if holder.ok {
                j.observed.push_str("; first untouched");
            } else {
                j.ok = false;
                let why = if holder.reason == "-" {
                    String::new()
                } else {
                    format!(" {}", holder.reason)
                };
                j.observed
                    .push_str(&format!("; first {}{why}", holder.observed));
            }
            j
        }
        Observed::WebhookReplay(report) => judge_replay(expected, report),
    }
}

/// Renders the table (plain text, fixed columns).
pub fn render(rows: &[Row]) -> String {
    let w = |f: &dyn Fn(&Row) -> usize, min: usize| rows.iter().map(f).max().unwrap_or(0).max(min);
    let (ws, we, wo, wr) = (
        w(&|r| r.scenario.len(), 8),
        w(&|r| r.expected.len(), 8),
        w(&|r| r.observed.len(), 8),
        w(&|r| r.reason.len(), 6),
    );
    let mut out = format!(
        "{:ws$} | {:we$} | {:wo$} | {:wr$} | time (ms) | ok\n",
        "scenario", "expected", "observed", "reason"
    );
    out.push_str(&format!(
        "{}-+-{}-+-{}-+-{}-+-----------+---\n",
        "-".repeat(ws),
        "-".repeat(we),
        "-".repeat(wo),
        "-".repeat(wr)
    ));
    for r in rows {
        out.push_str(&format!(
            "{:ws$} | {:we$} | {:wo$} | {:wr$} | {:>9} | {}\n",
            r.scenario,
            r.expected,
            r.observed,
            r.reason,
            r.time_ms,
            if r.ok { "yes" } else { "NO" }
        ));
    }
    out
}

/// Every Media Streams scenario's name in demo order (the legitimate call first).
pub fn scenario_names() -> Vec<&'static str> {
    Scenario::all().map(Scenario::name).collect()
}

/// Every ConversationRelay scenario's name in demo order (the legitimate session first).
pub fn relay_scenario_names() -> Vec<&'static str> {
    Scenario::of(Protocol::ConversationRelay)
        .map(Scenario::name)
        .collect()
}

/// Runs the legitimate call and every attack against `gateway`, one after the other, expecting
/// what a gate with the gateway's call state does.
pub async fn run_scenarios(
    gateway: &Gateway,
    me: &Identity,
    other: &Identity,
    opts: &DemoOptions,
) -> Result<Vec<Row>, DemoError> {
    run_scenarios_with_echo(gateway, None, me, other, opts).await
}

/// Where a scenario's connections are allowed to deliver records (the application behind the
/// gate sees them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Never: the socket has no verified call.
    Never,
    /// The socket is a verified call (Twilio's signature, a valid call token for that call) that
    /// then misbehaves: its own frames up to the offending one are the call's.
    OwnCall,
    /// A gate without call state does not stop it (SECURITY.md lists the gaps).
    Stateless,
}

/// What the demo's echo saw of the attacks.
#[derive(Debug, Default)]
struct AttackRecords {
    /// Connections that must deliver nothing, and the records they delivered.
    hostile: (usize, u64),
    /// Verified calls carrying an attack, and their records.
    own_call: (usize, u64),
    /// Admitted sockets a stateless gate does not stop, and their records.
    stateless: (usize, u64),
    /// Attacks with a record where none may be.
    leaked: Vec<String>,
}

impl AttackRecords {
    fn add(&mut self, attack: Attack, delivery: Delivery, records: u64) {
        let slot = match delivery {
            Delivery::Never => &mut self.hostile,
            Delivery::OwnCall => &mut self.own_call,
            Delivery::Stateless => &mut self.stateless,
        };
        slot.0 += 1;
        slot.1 += records;
        if delivery == Delivery::Never && records > 0 {
            self.leaked.push(attack.name().to_owned());
        }
    }

    fn row(&self, state: GateState) -> Row {
        let mut expected = "0 records from any socket without a verified call".to_owned();
        if state == GateState::Stateless {
            expected.push_str(" (no call state: admitted ones not stopped)");
        }
        let mut observed = format!(
            "{} records from {} hostile sockets",
            self.hostile.1, self.hostile.0
        );
        if self.own_call.0 > 0 {
            observed.push_str(&format!(
                "; {} from {} verified calls that misbehave",
                self.own_call.1, self.own_call.0
            ));
        }
        if self.stateless.0 > 0 {
            observed.push_str(&format!(
                "; {} from {} sockets no call state stops",
                self.stateless.1, self.stateless.0
            ));
        }
        Row {
            scenario: "attack-records".into(),
            expected,
            observed,
            reason: if self.leaked.is_empty() {
                "-".into()
            } else {
                self.leaked.join(",")
            },
            time_ms: 0,
            ok: self.leaked.is_empty() && self.hostile.0 > 0,
        }
    }
}

/// Whether the `index`-th connection of `attack` may deliver records to the application.
fn delivery(attack: Attack, index: usize, state: GateState) -> Delivery {
    match attack.expected_under(state) {
        // Refused at the handshake: no connection, whatever the call state.
        Expected::Refused(_) => return Delivery::Never,
        Expected::SameCallToken | Expected::NewCallToken => return Delivery::Never,
        _ => {}
    }
    if state == GateState::Stateless {
        // Media without a verified start is accepted by a stateless gate, on any admitted socket.
        return Delivery::Stateless;
    }
    match attack {
        // A verified start (or setup), then the offending frame (which itself is never delivered).
        Attack::MalformedJson
        | Attack::BinaryFrame
        | Attack::OversizedFrame
        | Attack::EventFlood
        | Attack::RelayMalformedJson
        | Attack::RelayBinaryFrame
        | Attack::RelayOversizedFrame
        | Attack::MediaStreamsFrame
        | Attack::SecondSetup => Delivery::OwnCall,
        // The token's rightful connection is a call; the second one is the attack.
        Attack::ReuseCallToken | Attack::RelayReuseCallToken if index == 0 => Delivery::OwnCall,
        _ => Delivery::Never,
    }
}

/// The row of the legitimate call's echo: every frame back, in order, the same bytes.
fn echo_row(report: Option<&SimReport>, sent_audio: &[u8]) -> Row {
    let expected = format!(
        "{0} of {0} frames echoed back, in order",
        sent_audio.len() / audio::FRAME_BYTES
    );
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let (ok, observed, time_ms) = match report.and_then(|r| r.answers.echo.as_ref().map(|e| (r, e)))
    {
        Some((r, e)) => {
            let same = e.audio == sent_audio;
            let ok = same && e.in_order && e.echoed == e.sent && r.answers.invalid == 0;
            let mut observed = format!(
                "{} of {} frames echoed back, {}, round-trip p50 {:.1} ms (max {:.1})",
                e.echoed,
                e.sent,
                if e.in_order {
                    "in order"
                } else {
                    "NOT in order"
                },
                ms(e.rtt_p50),
                ms(e.rtt_max)
            );
            if !same {
                observed.push_str(", audio differs");
            }
            if r.answers.invalid > 0 {
                observed.push_str(&format!(
                    ", {} answers Twilio would refuse",
                    r.answers.invalid
                ));
            }
            (ok, observed, r.elapsed.as_millis())
        }
        None => (false, "the call did not run".to_owned(), 0),
    };
    Row {
        scenario: "legit-call-echo".into(),
        expected,
        observed,
        reason: "-".into(),
        time_ms,
        ok,
    }
}

/// The row of the legitimate ConversationRelay session's answers: the application answered every
/// complete prompt and digit, with messages Twilio accepts.
fn relay_answers_row(report: Option<&SimReport>) -> Row {
    let turns = report.and_then(|r| r.answers.relay_turns.map(|t| (r, t)));
    let (ok, expected, observed, time_ms) = match turns {
        Some((r, t)) => {
            let mut observed = format!("{} of {} turns answered", t.answered, t.asked);
            if r.answers.invalid > 0 {
                observed.push_str(&format!(
                    ", {} answers Twilio would refuse",
                    r.answers.invalid
                ));
            }
            let ok = t.asked > 0 && t.answered == t.asked && r.answers.invalid == 0;
            let expected = format!("{0} of {0} turns answered (text)", t.asked);
            (ok, expected, observed, r.elapsed.as_millis())
        }
        None => (
            false,
            "every turn answered".to_owned(),
            "the session did not run".to_owned(),
            0,
        ),
    };
    Row {
        scenario: "legit-call-answers".into(),
        expected,
        observed,
        reason: "-".into(),
        time_ms,
        ok,
    }
}

/// The ConversationRelay table: the legitimate session and every ConversationRelay attack against
/// `gateway`; with `echo`, the session waits for the application's answers (`legit-call-answers`)
/// and no attack delivers a record (`attack-records`).
pub async fn run_relay_scenarios(
    gateway: &Gateway,
    echo: Option<&EchoServer>,
    me: &Identity,
    other: &Identity,
    opts: &DemoOptions,
) -> Result<Vec<Row>, DemoError> {
    run_table(Protocol::ConversationRelay, gateway, echo, me, other, opts).await
}

/// As [`run_scenarios`]; with `echo` (the gateway's HTTP sink), the legitimate call waits for and
/// records what comes back, the echo answers it (and only it), and two rows follow: the call heard
/// itself (`legit-call-echo`), and no attack delivered a record to the application
/// (`attack-records`).
pub async fn run_scenarios_with_echo(
    gateway: &Gateway,
    echo: Option<&EchoServer>,
    me: &Identity,
    other: &Identity,
    opts: &DemoOptions,
) -> Result<Vec<Row>, DemoError> {
    run_table(Protocol::MediaStreams, gateway, echo, me, other, opts).await
}

/// One protocol's table.
async fn run_table(
    protocol: Protocol,
    gateway: &Gateway,
    echo: Option<&EchoServer>,
    me: &Identity,
    other: &Identity,
    opts: &DemoOptions,
) -> Result<Vec<Row>, DemoError> {
    let mut course = DemoCourse {
        gateway,
        echo,
        me,
        other,
        pacing: opts.pacing,
        legit_audio: audio::tone(440.0, opts.legit_frames),
        short_audio: audio::tone(440.0, 3),
        url: gateway.ws_url(),
        local_webhook: gateway.local_webhook_url(),
        state: GateState::of(gateway.call_state()),
        records_before: Cell::new(0),
        rows: Vec::new(),
        attack_records: AttackRecords::default(),
    };
    run_course(&mut course, Scenario::of(protocol), me).await?;
    if let Some(e) = echo {
        e.set_answering(true);
        course.rows.push(course.attack_records.row(course.state));
    }
    Ok(course.rows)
}

/// The demo's course: every scenario against the local gateway, judged with the records the
/// gateway saw (and, with the echo, what the application received).
struct DemoCourse<'g> {
    gateway: &'g Gateway,
    echo: Option<&'g EchoServer>,
    me: &'g Identity,
    other: &'g Identity,
    pacing: Duration,
    legit_audio: Vec<[u8; audio::FRAME_BYTES]>,
    short_audio: Vec<[u8; audio::FRAME_BYTES]>,
    url: String,
    local_webhook: String,
    state: GateState,
    /// How many connection records the gateway held when the scenario started.
    records_before: Cell<usize>,
    rows: Vec<Row>,
    attack_records: AttackRecords,
}

impl Course for DemoCourse<'_> {
    type Error = DemoError;

    fn turn(&self, scenario: Scenario) -> Turn<'_, DemoError> {
        let legit = scenario.is_legit();
        let setup = CallSetup {
            url: &self.url,
            signed_url: self.gateway.public_url(),
            me: self.me,
            other: Some(self.other),
            audio: if legit {
                &self.legit_audio
            } else {
                &self.short_audio
            },
            pacing: if legit { self.pacing } else { Duration::ZERO },
            linger: Duration::from_millis(if legit { 200 } else { 500 }),
            start_grace: self.gateway.start_grace(),
            webhook: Some(WebhookTarget {
                url: &self.local_webhook,
                signed_url: self.gateway.webhook_url(),
            }),
        };
        let plan = match plan_of(scenario, &setup, self.echo.is_some()) {
            Ok(plan) => plan,
            Err(e) => return Turn::Stop(DemoError::Scenario(e.to_string())),
        };
        // The echo answers the legitimate call only: the attack rows judge what the gate itself
        // writes back, and the echo counts the attacks' records.
        if let Some(e) = self.echo {
            e.set_answering(legit);
        }
        self.records_before.set(self.gateway.records().len());
        Turn::Play(plan)
    }

    async fn observed(
        &mut self,
        scenario: Scenario,
        observed: Result<Observed, SimError>,
    ) -> Result<(), DemoError> {
        let name = scenario.name();
        let observed = observed.map_err(|e| DemoError::Scenario(format!("{name}: {e}")))?;
        self.gateway.settle(Duration::from_secs(5)).await;
        let records: Vec<ConnectionRecord> = self
            .gateway
            .records()
            .get(self.records_before.get()..)
            .unwrap_or_default()
            .to_vec();
        let expected = scenario.expected_under(self.state);
        self.rows.push(
            judge_observed(expected, &observed, Some(&records))
                .into_row(name, describe_scenario(scenario, self.state)),
        );
        let Some(e) = self.echo else { return Ok(()) };
        match scenario {
            Scenario::Legit => {
                let report = match &observed {
                    Observed::Socket(r) => Some(r),
                    _ => None,
                };
                self.rows.push(echo_row(report, &self.legit_audio.concat()));
            }
            Scenario::RelayLegit => {
                let report = match &observed {
                    Observed::Socket(r) => Some(r),
                    _ => None,
                };
                self.rows.push(relay_answers_row(report));
            }
            Scenario::Attack(a) => {
                for (i, r) in records.iter().enumerate() {
                    let delivered = e.records_for(&r.connection_id).total;
                    self.attack_records
                        .add(a, delivery(a, i, self.state), delivered);
                }
            }
        }
        Ok(())
    }
}

/// The demo's two tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Media Streams: the call, every attack, the echo and the attacks' records.
    pub media: Vec<Row>,
    /// ConversationRelay: the session, every attack, the answers and the attacks' records.
    pub relay: Vec<Row>,
}

impl Tables {
    /// Every row of both tables.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.media.iter().chain(&self.relay)
    }
}

/// Runs the whole demo: gateway, fresh credentials in a temporary directory, every scenario of
/// both protocols. Returns the tables and the number of `DeleteConnection` requests the gateway
/// served (the router's closes, sent by the real Management API client).
pub async fn run(opts: &DemoOptions) -> Result<(Tables, u64), DemoError> {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "stream-gate-demo-{}",
        crate::random::alphanumeric(12)
    ));
    let path = dir.join(devcreds::FILE_NAME);
    let doc = devcreds::generate();
    devcreds::write_private(&path, &doc)?;
    let result = async {
        let me = Identity::from_document(doc.expose(), 0)?;
        let other = Identity::from_document(doc.expose(), 1)?;
        // The example application behind the gate, in-process: the gateway's HTTP sink posts
        // every record of a verified call to it, and it answers through the Management API.
        let echo = EchoServer::start(EchoOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            on_call_end: None,
        })
        .await?;
        let sink: SinkTarget = echo
            .sink_url()
            .parse()
            .map_err(|e: String| DemoError::Scenario(format!("echo sink: {e}")))?;
        let gateway = Gateway::start(GatewayOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            stage: "dev".into(),
            public_url: None,
            source: Box::new(FileSource::new(path.clone())),
            auth_mode: AuthMode::Either,
            call_token: CallTokenPolicy::Required,
            call_state: opts.call_state.clone(),
            sink,
            management_endpoint: None,
            webhook_url: None,
        })
        .await?;
        let tables = async {
            let media = run_scenarios_with_echo(&gateway, Some(&echo), &me, &other, opts).await?;
            let relay = run_relay_scenarios(&gateway, Some(&echo), &me, &other, opts).await?;
            Ok::<_, DemoError>(Tables { media, relay })
        }
        .await;
        let deletes = gateway
            .shared()
            .management
            .deletes
            .load(std::sync::atomic::Ordering::Relaxed);
        gateway.shutdown().await;
        echo.shutdown().await;
        Ok((tables?, deletes))
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
