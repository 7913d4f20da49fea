//! A router Lambda with a sink of your own, built from stream-gate-lambda's public API only.
//!
//! The sink here forwards a call's events (`start`, `mark`, `dtmf`, `stop`, `disconnect`) to the
//! sink `STREAM_GATE_SINK` names and drops its audio: for an application that only needs to know
//! when calls start, what keys were pressed and when they end. Any type that implements
//! `DeliverySink` will do (a queue, a database, another process).
//!
//!     cargo build --release --example custom_sink -p stream-gate-lambda
//!
//! Deploy the binary as the router's `bootstrap` instead of the `router` binary, with the router's
//! environment (README, "Configuration"). `STREAM_GATE_CALL_STATE` is required, as for the `router`
//! binary: `dynamodb` with the template's table (the default the template sets), `memory` for one
//! process, or `off` said explicitly; without it the binary refuses to start.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use lambda_runtime::Error;
use stream_gate_lambda::adapters::delivery::RecordType;
use stream_gate_lambda::adapters::{
    DeliveryError, DeliveryRecord, DeliverySink, LazySdk, SinkTarget,
};
use stream_gate_lambda::entrypoints::router;
use stream_gate_lambda::logging::init_logging;
use stream_gate_lambda::state::RouterState;

/// Passes everything but `media` records on to `inner`.
struct CallEventsOnly {
    inner: Arc<dyn DeliverySink>,
}

impl DeliverySink for CallEventsOnly {
    fn deliver<'a>(
        &'a self,
        record: &'a DeliveryRecord,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        if record.kind() == RecordType::Media {
            // Dropped on purpose: counts as delivered.
            return Box::pin(async { Ok(()) });
        }
        self.inner.deliver(record)
    }

    fn kind(&self) -> &'static str {
        "call-events-only"
    }
}

/// The router's state (everything `STREAM_GATE_*` configures) delivering to `sink`.
async fn router_state_with(sink: Arc<dyn DeliverySink>) -> Result<RouterState, Error> {
    Ok(RouterState::from_env_with_sink(sink).await?)
}

// The same loop as the `router` binary: the crate's Runtime API loop on one current-thread runtime.
fn main() -> Result<(), Error> {
    init_logging();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Unset or blank means `none`, as for the router.
    let target: SinkTarget = match std::env::var("STREAM_GATE_SINK").unwrap_or_default().trim() {
        "" => SinkTarget::default(),
        value => value
            .parse()
            .map_err(|problem: String| format!("STREAM_GATE_SINK: {problem}"))?,
    };
    let state = rt.block_on(async {
        let sink: Arc<dyn DeliverySink> = Arc::new(CallEventsOnly {
            inner: target.build(LazySdk::from_env()),
        });
        router_state_with(sink).await
    })?;
    router::serve(&rt, &state)?;
    Ok(())
}
