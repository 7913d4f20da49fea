//! `stream-gate sim`: a Twilio Media Streams client (and a set of hostile ones) over real sockets.

pub mod attacks;
pub mod audio;
pub mod client;
pub mod console;
pub mod identity;
pub mod launch;
pub mod play;
pub mod runner;
pub mod webhook_post;

pub use attacks::{Attack, GateState, Plan, ATTACKS};
pub use client::{
    judge_answer, run, Answer, Answers, EchoReport, EchoWait, Handshake, Outgoing, Script,
    SimError, SimReport,
};
pub use identity::Identity;
pub use play::{play, Observed, ReplayReport, ReplayVerdict};
