//! A router Lambda with a sink of your own, built from stream-gate-lambda's public API only.
//!
//! The sink here forwards a call's events (`start`, `mark`, `dtmf`, `stop`, `disconnect`) to the
//! sink `STREAM_GATE_SINK` names and drops its audio: for an application that only needs to know
//! when calls start, what keys were pressed and when they end. Any type that implements
//! `DeliverySink` will do (a queue, a database, another process).
//!
//!     cargo build --release --example custom_sink -p stream-gate-lambda
//!
//! Deploy the binary as the router's `bootstrap` instead of the `router` binary.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use futures_util::future::BoxFuture;
use lambda_runtime::{service_fn, Error, LambdaEvent};
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

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    // Unset or blank means `none`, as for the router.
    let target: SinkTarget = match std::env::var("STREAM_GATE_SINK").unwrap_or_default().trim() {
        "" => SinkTarget::default(),
        value => value
            .parse()
            .map_err(|problem: String| format!("STREAM_GATE_SINK: {problem}"))?,
    };
    let sink: Arc<dyn DeliverySink> = Arc::new(CallEventsOnly {
        inner: target.build(LazySdk::from_env()),
    });
    let state = router_state_with(sink).await?;
    let state = &state;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            let deadline = router::deadline_of(event.context.deadline);
            Ok::<ApiGatewayProxyResponse, Error>(
                router::handle_until(state, event.payload, deadline).await.0,
            )
        },
    ))
    .await
}
