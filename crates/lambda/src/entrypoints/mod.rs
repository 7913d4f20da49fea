//! Thin translations from `aws_lambda_events` types to the domain and back, one per binary.

pub mod authorizer;
pub mod router;
pub mod router_event;
pub mod voice_webhook;
