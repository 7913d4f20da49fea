//! The `stream-gate` command line (clap), one module per subcommand on top of
//! `stream-gate-devtools` and `stream-gate-lambda`: signature and token tools, and (see the submodules) the local
//! gateway, the Twilio call simulator and the demo.

pub mod credentials;
pub mod demo;
pub mod echo;
pub mod load;
pub mod local;
pub mod sim;
pub mod tools;
pub mod verify;

/// The command line's one tokio runtime builder (multi-threaded: the local gateway serves many
/// connections while the simulator drives its own).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {}", e.kind()))
}
