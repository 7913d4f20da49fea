//! Thin translations from `aws_lambda_events` types to the domain and back, one per binary.

pub mod authorizer;
pub mod router;
pub mod state;
pub mod voice_webhook;

pub use state::GateState;

/// Seconds since the Unix epoch (0 if the clock is before 1970, which then fails token expiry).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
