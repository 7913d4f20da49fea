//! Development and test tooling shipped with the crate: things users and tests run locally.

pub mod runtime_api;
