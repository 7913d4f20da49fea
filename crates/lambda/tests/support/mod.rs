//! Support shared by the Lambda crate's test files (`mod support;` in each file that needs it).
// Each test file is its own crate and uses only a part of this module.
#![allow(dead_code)]

pub mod dynamodb;
pub mod kinesis;
pub mod log_capture;
pub mod slow_fakes;
pub mod states;
