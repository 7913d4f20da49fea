//! Lambda: the WebSocket router for `$connect`, `$default` and `$disconnect`.

use lambda_runtime::Error;
use stream_gate_lambda::entrypoints::router;
use stream_gate_lambda::logging::init_logging;
use stream_gate_lambda::state::RouterState;

// Every media frame is an invocation: the router runs the crate's lean Runtime API loop (blocking
// HTTP on one socket, the event read straight into `RouterEvent`) and one current-thread Tokio
// runtime for the AWS SDK calls a frame may make (BENCHMARKS.md "Round three").
fn main() -> Result<(), Error> {
    init_logging();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let state = rt.block_on(RouterState::from_env())?;
    router::serve(&rt, &state)?;
    Ok(())
}
