//! Lambda: the `$connect` REQUEST authorizer.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use stream_gate_lambda::entrypoints::authorizer;
use stream_gate_lambda::logging::init_logging;
use stream_gate_lambda::runtime_api::exit_init_failed;
use stream_gate_lambda::state::AuthorizerState;

// One thread: a Lambda instance handles one invocation at a time, and a multi-threaded runtime
// only adds thread hand-offs (futex and eventfd wake-ups) to every invocation (BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_logging();
    // An authorizer that cannot start reports why to `/runtime/init/error` (the variable and the
    // problem, never a value) and exits before lambda_runtime asks for an event.
    let state = match AuthorizerState::from_env().await {
        Ok(state) => state,
        Err(e) => exit_init_failed("Runtime.ConfigError", &e.to_string()),
    };
    let state = &state;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            Ok::<ApiGatewayCustomAuthorizerResponse, Error>(
                authorizer::handle(state, event.payload).await,
            )
        },
    ))
    .await
}
