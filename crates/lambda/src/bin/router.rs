//! Lambda: the WebSocket router for `$connect`, `$default` and `$disconnect`.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use stream_gate_lambda::entrypoints::router;
use stream_gate_lambda::logging::init_logging;
use stream_gate_lambda::state::RouterState;

// One thread: a Lambda instance handles one invocation at a time, and a multi-threaded runtime
// only adds thread hand-offs (futex and eventfd wake-ups) to every invocation (BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_logging();
    let state = RouterState::from_env().await?;
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
