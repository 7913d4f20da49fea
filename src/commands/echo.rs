//! `stream-gate echo`: the example application behind `stream-gate local --sink http://...`.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

use stream_gate_devtools::record_server::{EchoOptions, EchoServer};

/// Options of `stream-gate echo`.
#[derive(Args, Debug)]
pub struct EchoArgs {
    /// Loopback address to listen on (`127.0.0.1:0` picks a free port; the banner prints it).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub listen: SocketAddr,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("stream-gate echo: {message}");
    ExitCode::from(2)
}

/// Runs the echo until Ctrl-C.
pub fn main(args: EchoArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        return fail("the echo listens on loopback only (records carry call audio in the clear)");
    }
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    rt.block_on(async move {
        let server = match EchoServer::start(EchoOptions {
            listen: args.listen,
            on_call_end: Some(Box::new(|summary| println!("echo: {summary}"))),
        })
        .await
        {
            Ok(s) => s,
            Err(e) => return fail(&format!("cannot listen on {}: {}", args.listen, e.kind())),
        };
        println!("stream-gate echo (the caller hears themselves; loopback only)");
        println!("  records:         POST {}", server.sink_url());
        println!(
            "  answers through: each record's managementEndpoint (PostToConnection, loopback only)"
        );
        println!();
        println!("run the local gateway with this sink:");
        println!("  stream-gate local --sink {}", server.sink_url());
        println!();
        stream_gate_lambda::logging::init_logging();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = server.wait() => {}
        }
        ExitCode::SUCCESS
    })
}
