//! Lambda: the example application behind the gate. Consumes the gate's Kinesis stream (an event
//! source mapping on an enhanced fan-out consumer) and plays each caller's inbound audio back to
//! them through `PostToConnection`. The logic is `stream_gate_echo::kinesis_batch::handle`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use stream_gate_answer::logging::init_logging;
use stream_gate_answer::{ConnectionPoster, LazySdk};
use stream_gate_echo::{kinesis_batch, AllowedEndpoint};

// One thread: a Lambda instance handles one invocation at a time, and a multi-threaded runtime
// only adds thread hand-offs (futex and eventfd wake-ups) to every invocation (BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_logging();
    // The one endpoint replies go to (STREAM_GATE_MANAGEMENT_ENDPOINT, the template sets the
    // stage's own): unset or unusable stops the function at init, as a bad setting of the gate's
    // functions does. A record naming any other is skipped.
    let allowed = AllowedEndpoint::from_env().inspect_err(|e| {
        tracing::error!(error = %e, "echo: cannot start");
    })?;
    // The SDK configuration is loaded on the first post, not at init.
    let poster = ConnectionPoster::new(LazySdk::from_env());
    let (poster, allowed) = (&poster, &allowed);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = kinesis_batch::budget_until(event.context.deadline());
        kinesis_batch::handle(poster, &event.payload, allowed, budget).await;
        // Always success, even when records were skipped or posts failed: the event source
        // mapping retries a failed batch, and a replayed batch would play the audio twice.
        Ok::<(), Error>(())
    }))
    .await
}
