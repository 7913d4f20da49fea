//! Lambda (HTTP API `POST /voice` or a Function URL): Twilio's voice webhook, answering TwiML that
//! connects the call to the gate with a per-call token.

use lambda_http::{service_fn, Error, Request};
use stream_gate_lambda::entrypoints::voice_webhook;
use stream_gate_lambda::logging::init_logging;
use stream_gate_lambda::runtime_api::exit_init_failed;
use stream_gate_lambda::state::WebhookState;

// One thread: a Lambda instance handles one invocation at a time, and a multi-threaded runtime
// only adds thread hand-offs (futex and eventfd wake-ups) to every invocation (BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_logging();
    // A webhook that cannot start reports why to `/runtime/init/error` (the variable and the
    // problem, never a value) and exits before lambda_http asks for an event.
    let state = match WebhookState::from_env().await {
        Ok(state) => state,
        Err(e) => exit_init_failed("Runtime.ConfigError", &e.to_string()),
    };
    let state = &state;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(voice_webhook::handle(state, req).await)
    }))
    .await
}
