//! The `stream-gate` command line: signature and token tools, and (see the submodules) the local
//! gateway, the Twilio call simulator and the demo.

pub mod demo;
pub mod load;
pub mod local;
pub mod sim;
pub mod tools;
