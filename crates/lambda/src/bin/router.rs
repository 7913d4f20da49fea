//! Lambda: the WebSocket router for `$connect`, `$default` and `$disconnect`.

use stream_gate_lambda::entrypoints::router;
use stream_gate_lambda::logging::init_logging;
use stream_gate_lambda::runtime_api::exit_init_failed;
use stream_gate_lambda::state::RouterState;

// Every media frame is an invocation: the router runs the crate's lean Runtime API loop (blocking
// HTTP on one socket, the event read straight into `RouterEvent`) and one current-thread Tokio
// runtime for the AWS SDK calls a frame may make (BENCHMARKS.md "Round three").
fn main() -> Result<(), stream_gate_lambda::runtime_api::LoopError> {
    init_logging();
    // A router that cannot start serves nothing: it reports why to `/runtime/init/error` (the
    // variable and the problem, never a value) and exits non-zero.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => exit_init_failed("Runtime.InitError", &format!("tokio runtime: {e}")),
    };
    let state = match rt.block_on(RouterState::from_env()) {
        Ok(state) => state,
        Err(e) => exit_init_failed("Runtime.ConfigError", &e.to_string()),
    };
    router::serve(&rt, &state)
}
