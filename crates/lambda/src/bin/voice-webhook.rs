//! Lambda (HTTP API `POST /voice` or a Function URL): Twilio's voice webhook, answering TwiML that
//! connects the call to the gate with a per-call token.

use lambda_http::{service_fn, Error, Request};
use stream_gate_lambda::entrypoints::voice_webhook;
use stream_gate_lambda::logging::init_logging;
use stream_gate_lambda::state::WebhookState;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    let state = WebhookState::from_env().await?;
    let state = &state;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(voice_webhook::handle(state, req).await)
    }))
    .await
}
