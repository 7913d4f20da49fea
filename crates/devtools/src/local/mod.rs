//! `stream-gate local`: a development gateway that behaves like API Gateway for this WebSocket API
//! and runs the same entrypoint code as the Lambda binaries.
//!
//! One loopback port serves the WebSocket endpoint `GET /{stage}`, the Management API
//! `/{stage}/@connections/{id}` and the voice webhook `POST /voice`, `POST /relay` and
//! `POST /relay/ended` ([`webhook_route`]). The router's
//! closes travel through the real `aws-sdk-apigatewaymanagement` client to that same port; the
//! webhook and the router share one credentials cache and one call-state store, as the functions
//! of one stack share one secret and one table.
//!
//! Close frames written by the gateway (API Gateway writes them in production):
//! - binary frame: 1003, reason `frame_not_text`;
//! - text frame over 32 KiB: 1009, reason `frame_too_large`;
//! - `DeleteConnection`: 1008 (policy violation), reason = the router's close reason code when the
//!   router asked for the close, else `connection_deleted`.

pub mod connection;
pub mod devcreds;
pub mod events;
pub mod launch;
pub mod management;
pub mod records;
pub mod settings;
pub mod webhook_route;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::Router;
use tokio::sync::{mpsc, oneshot};

use crate::domain::{AuthMode, CallTokenPolicy, Protocols};
use records::{GatewayStats, Records, StatsSnapshot};
use stream_gate_lambda::adapters::{
    CredentialCache, DocumentSource, LazySdk, ManagementApiCloser, SinkTarget,
};
use stream_gate_lambda::config::{
    AuthorizerConfig, CallStateMode, CredentialsConfig, RouterConfig, SecretLocation, WebhookConfig,
};
use stream_gate_lambda::state::{AuthorizerState, CallState, RouterState, WebhookState};

/// Largest text frame API Gateway accepts (32 KB); larger ones are closed with 1009 before any
/// Lambda runs. (The domain's own `MAX_FRAME_BYTES` is a larger parser bound.)
pub const API_GATEWAY_FRAME_BYTES: usize = 32 * 1024;
/// What the WebSocket layer reads at most (so the 32 KiB check is ours, with a typed close).
pub const READ_LIMIT_BYTES: usize = 256 * 1024;
/// `$default` invocations in flight per connection (Lambda runs frames concurrently).
pub const MAX_IN_FLIGHT: u32 = 8;

/// How to run the gateway.
pub struct GatewayOptions {
    /// Listen address (loopback).
    pub listen: SocketAddr,
    /// Stage name (`dev`).
    pub stage: String,
    /// The URL put in TwiML, as Twilio signs it; default `ws://{listen}/{stage}`.
    pub public_url: Option<String>,
    /// The credentials document.
    pub source: Box<dyn DocumentSource>,
    /// `$connect` auth mode.
    pub auth_mode: AuthMode,
    /// Call-token policy for `start`.
    pub call_token: CallTokenPolicy,
    /// Per-connection call state (`memory` by default for the local gateway).
    pub call_state: CallStateMode,
    /// Where accepted frames of verified calls are delivered (`http://…`, `file:…`, `none`).
    pub sink: SinkTarget,
    /// Where the router sends `DeleteConnection`; default the gateway's own Management API
    /// (`http://{addr}/{stage}`). A test and diagnosis aid: pointed at an endpoint that refuses,
    /// the router's closes fail and offending connections stay open, as on a deployment whose
    /// router lacks the `ManageConnections` permission.
    pub management_endpoint: Option<String>,
    /// The URL Twilio posts the voice webhook to and signs (`STREAM_GATE_WEBHOOK_URL`); default
    /// [`webhook_route::webhook_url_for`] the public URL (`http://{listen}/voice` on loopback).
    pub webhook_url: Option<String>,
}

/// A command to a live connection (from the Management API).
#[derive(Debug)]
pub enum Command {
    /// Write a text frame; answered with whether it was written.
    Send(String, oneshot::Sender<bool>),
    /// Close the socket (`DeleteConnection`).
    Close,
}

/// A live connection as the Management API sees it.
#[derive(Clone)]
pub struct LiveConnection {
    /// Commands to the connection's task.
    pub commands: mpsc::UnboundedSender<Command>,
    /// Connect time, Unix ms.
    pub connected_at: u64,
    /// Peer address.
    pub source_ip: String,
}

/// What happened on one connection (for the demo, the tests and the console).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// Connection id.
    pub connection_id: String,
    /// The authorizer allowed and `$connect` answered 2xx.
    pub admitted: bool,
    /// Authorizer deny reason code.
    pub deny_reason: Option<&'static str>,
    /// `$connect` status when the router refused.
    pub connect_status: Option<i64>,
    /// Text frames passed to `$default`.
    pub frames: u64,
    /// Frames the router accepted.
    pub accepted: u64,
    /// Frames the router dropped (call state: no start recorded yet, within the grace).
    pub dropped: u64,
    /// First close reason code (router or gateway).
    pub close_reason: Option<&'static str>,
    /// Close code the gateway wrote, if it closed.
    pub close_code: Option<u16>,
    /// Frames written to the client (Management API POST only).
    pub written: u64,
    /// `$disconnect` has run.
    pub finished: bool,
}

/// Counters of the Management API routes.
#[derive(Debug, Default)]
pub struct ManagementCounters {
    /// `DELETE` requests served (any answer).
    pub deletes: AtomicU64,
    /// `POST` requests served.
    pub posts: AtomicU64,
    /// `GET` requests served.
    pub gets: AtomicU64,
    /// Requests refused for lack of a SigV4 `Authorization` header.
    pub unsigned: AtomicU64,
}

/// State shared by the routes and connection tasks.
pub struct Shared {
    /// The authorizer's state (one per gateway, as one per Lambda instance).
    pub authorizer: AuthorizerState,
    /// The router's state.
    pub router: RouterState,
    /// The voice webhook's state (the same credentials cache and call-state store).
    pub webhook: WebhookState,
    /// The URL the webhook verifies signatures over.
    pub webhook_url: String,
    /// The bound address (the webhook event's `domainName`).
    pub addr: SocketAddr,
    /// Stage served.
    pub stage: String,
    /// Live connections by id.
    pub live: Mutex<HashMap<String, LiveConnection>>,
    /// Records of the most recent connection attempts, oldest first.
    pub records: Records,
    /// Gateway-wide totals (`GET /_local/stats`).
    pub stats: GatewayStats,
    /// Management API counters.
    pub management: ManagementCounters,
}

impl Shared {
    /// Applies `f` to the record of `id`.
    pub fn record(&self, id: &str, f: impl FnOnce(&mut ConnectionRecord)) {
        self.records.update(id, f);
    }
}

/// `GET /_local/stats`: the gateway's totals (a local-only route; API Gateway has none).
async fn stats(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
) -> axum::Json<StatsSnapshot> {
    axum::Json(shared.stats.snapshot())
}

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    public_url: String,
    management_endpoint: String,
    webhook_url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// The SDK configuration the local gateway's Management API client uses: region us-east-1, static
/// dummy credentials.
pub async fn local_sdk_config() -> aws_config::SdkConfig {
    // Static dummy credentials: the local Management API checks that requests are signed, not by whom.
    let creds = aws_sdk_apigatewaymanagement::config::Credentials::new(
        "AKIDLOCALSTREAMGATE",
        "local-development-only",
        None,
        None,
        "stream-gate-local",
    );
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(4))
                .build(),
        )
        .load()
        .await
}

/// The URLs a gateway on `addr` serves and signs, from its options.
struct Urls {
    public_url: String,
    management_endpoint: String,
    webhook_url: String,
}

impl Urls {
    fn of(opts: &GatewayOptions, addr: SocketAddr) -> Self {
        let stage = &opts.stage;
        let public_url = opts
            .public_url
            .clone()
            .unwrap_or_else(|| format!("ws://{addr}/{stage}"));
        let management_endpoint = opts
            .management_endpoint
            .clone()
            .unwrap_or_else(|| format!("http://{addr}/{stage}"));
        let webhook_url = opts
            .webhook_url
            .clone()
            .or_else(|| webhook_route::webhook_url_for(&public_url))
            .unwrap_or_else(|| format!("http://{addr}{}", webhook_route::WEBHOOK_PATH));
        Self {
            public_url,
            management_endpoint,
            webhook_url,
        }
    }
}

/// The three functions' states, as one stack's functions hold them: one credentials cache (one
/// secret), one call-state store (one table).
struct Functions {
    authorizer: AuthorizerState,
    router: RouterState,
    webhook: WebhookState,
}

impl Functions {
    async fn new(opts: GatewayOptions, urls: &Urls) -> Self {
        // The source is re-read every 2 s, so an edited credentials file takes effect at once.
        let credentials = CredentialsConfig {
            secret: SecretLocation::None,
            ttl: Duration::from_secs(2),
            max_stale: Duration::from_secs(3600),
        };
        // One cache for both functions: one document, as both Lambdas read one secret.
        let cache = Arc::new(CredentialCache::new(
            opts.source,
            credentials.ttl,
            credentials.max_stale,
        ));
        let authorizer = AuthorizerState {
            config: AuthorizerConfig {
                credentials: credentials.clone(),
                auth_mode: opts.auth_mode,
                public_url: Some(urls.public_url.clone()),
                // Both: the router judges each connection by its protocol's grammar
                // (docs/conversation-relay.md), and a local stack has nothing to keep closed.
                protocols: Protocols::BOTH,
            },
            credentials: cache.clone(),
        };
        let sdk = LazySdk::from(local_sdk_config().await);
        let call_state = CallState::from_mode(&opts.call_state, &sdk);
        // One sink for both: a session's `session_end` follows its messages to one place.
        let sink = opts.sink.build(sdk.clone());
        let webhook = WebhookState {
            config: webhook_config(
                credentials.clone(),
                urls,
                opts.call_state.clone(),
                opts.sink.clone(),
            ),
            credentials: cache.clone(),
            // The very store the router uses: a token the webhook answered is the token whose
            // claim the router records.
            call_state: call_state.clone(),
            sink: sink.clone(),
        };
        let router = RouterState::new(
            RouterConfig {
                credentials,
                call_token: opts.call_token,
                management_endpoint: Some(urls.management_endpoint.clone()),
                region: None,
                call_state: opts.call_state,
                start_grace: Duration::from_millis(
                    stream_gate_lambda::config::defaults::START_GRACE_MS,
                ),
                sink: opts.sink.clone(),
            },
            cache,
            Arc::new(ManagementApiCloser::new(sdk.clone())),
            call_state,
        )
        .with_sink(sink);
        Self {
            authorizer,
            router,
            webhook,
        }
    }
}

/// The voice webhook's configuration: the functions' defaults, the gateway's URLs.
fn webhook_config(
    credentials: CredentialsConfig,
    urls: &Urls,
    call_state: CallStateMode,
    sink: SinkTarget,
) -> WebhookConfig {
    WebhookConfig {
        credentials,
        stream_url: urls.public_url.clone(),
        webhook_url: Some(urls.webhook_url.clone()),
        call_token_ttl: Duration::from_secs(
            stream_gate_lambda::config::defaults::CALL_TOKEN_TTL_SECS,
        ),
        call_state,
        issued_retention: Duration::from_secs(
            stream_gate_lambda::config::defaults::ISSUED_RETENTION_DAYS * 86_400,
        ),
        protocols: Protocols::BOTH,
        relay_attributes: Default::default(),
        sink,
    }
}

/// The gateway's routes: the WebSocket endpoint and the voice webhook, the local stats, the
/// Management API.
fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/{stage}",
            get(connection::upgrade).post(webhook_route::post),
        )
        .route(webhook_route::RELAY_ENDED_PATH, post(webhook_route::post))
        .route("/_local/stats", get(stats))
        .route(
            "/{stage}/@connections/{id}",
            get(management::get_connection)
                .post(management::post_to_connection)
                .delete(management::delete_connection),
        )
        .with_state(shared)
}

/// Serves `app` on `listener` until the returned sender fires (or is dropped).
fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        // No Nagle delay: frames and close frames go out as soon as they are written.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (tx, task)
}

impl Gateway {
    /// Binds and starts serving.
    pub async fn start(opts: GatewayOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let urls = Urls::of(&opts, addr);
        let stage = opts.stage.clone();
        let functions = Functions::new(opts, &urls).await;
        let shared = Arc::new(Shared {
            authorizer: functions.authorizer,
            router: functions.router,
            webhook: functions.webhook,
            webhook_url: urls.webhook_url.clone(),
            addr,
            stage,
            live: Mutex::new(HashMap::new()),
            records: Records::default(),
            stats: GatewayStats::default(),
            management: ManagementCounters::default(),
        });
        let (shutdown, task) = serve(listener, routes(shared.clone()));
        Ok(Self {
            addr,
            public_url: urls.public_url,
            management_endpoint: urls.management_endpoint,
            webhook_url: urls.webhook_url,
            shared,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to connect to on this machine: `ws://{addr}/{stage}`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/{}", self.addr, self.shared.stage)
    }

    /// The URL Twilio signs (the one in the TwiML).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Where the router sends `DeleteConnection` (the gateway's own Management API unless
    /// overridden).
    pub fn management_endpoint(&self) -> &str {
        &self.management_endpoint
    }

    /// The voice webhook's URL as Twilio posts to it and signs it (`POST /voice` on this port
    /// unless the public URL or `STREAM_GATE_WEBHOOK_URL` says otherwise).
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }

    /// Where to POST the webhook on this machine: `http://{addr}/voice`.
    pub fn local_webhook_url(&self) -> String {
        format!("http://{}{}", self.addr, webhook_route::WEBHOOK_PATH)
    }

    /// Where to POST the ConversationRelay webhook on this machine: `http://{addr}/relay`.
    pub fn local_relay_webhook_url(&self) -> String {
        format!("http://{}{}", self.addr, webhook_route::RELAY_PATH)
    }

    /// How long after `connectedAt` the router drops (rather than closes) a frame with no start.
    pub fn start_grace(&self) -> Duration {
        self.shared.router.config.start_grace
    }

    /// Whether the gateway keeps call state (`memory`, or `dynamodb` with a table).
    pub fn call_state(&self) -> &CallStateMode {
        &self.shared.router.config.call_state
    }

    /// Shared state (records, counters).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Every connection record so far.
    pub fn records(&self) -> Vec<ConnectionRecord> {
        self.shared.records.snapshot()
    }

    /// Waits until every admitted connection has run `$disconnect` (or `timeout` passes).
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.records().iter().all(|r| r.finished || !r.admitted) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs until the server stops.
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }

    /// Closes every connection and stops serving.
    pub async fn shutdown(mut self) {
        let live: Vec<LiveConnection> = self
            .shared
            .live
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default();
        for c in live {
            let _ = c.commands.send(Command::Close);
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}
