//! Lambda (HTTP API `POST /voice` or a Function URL): Twilio's voice webhook, answering TwiML that
//! connects the call to the gate with a per-call token.

use lambda_http::{service_fn, Error, Request};
use stream_gate::entrypoints::voice_webhook::{self, WebhookConfig};
use stream_gate::entrypoints::{state::init_logging, GateState};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    // Refuse to start without the stream URL: a webhook that cannot say where to connect is useless.
    let config = WebhookConfig::from_lookup(|k| std::env::var(k).ok())?;
    let state = GateState::from_env().await?;
    let (state, config) = (&state, &config);
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(voice_webhook::handle(state, config, req).await)
    }))
    .await
}
