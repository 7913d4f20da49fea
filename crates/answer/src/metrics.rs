//! Metrics as CloudWatch Embedded Metric Format: one JSON object per line on standard output, which
//! CloudWatch Logs turns into a metric (namespace `StreamGate`) with no API call and no permission.
//! Each metric is emitted with its `reason` dimension and once without dimensions, so that one
//! alarm covers every reason (alarms cannot aggregate over a dimension).

use std::io::Write as _;

use serde_json::json;

/// The namespace of every stream-gate metric.
pub const NAMESPACE: &str = "StreamGate";

/// The metrics stream-gate emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `DeleteConnection` failed (after its retry): an offender may still be connected.
    CloseFailed,
    /// The call-state store could not answer (a start was closed, or a frame dropped).
    CallStateUnavailable,
    /// A record of a verified call was not delivered to the sink (after its retry): the
    /// application missed a frame.
    DeliveryFailed,
    /// Unknown events ignored on verified calls (reported at most once per connection per minute,
    /// with the number seen since the last report: `unknown_events`).
    UnknownEvent,
    /// The echo example skipped records of a batch (`reason`: why, e.g. `endpoint_not_allowed`,
    /// a record naming another API's `@connections` endpoint).
    EchoRecordSkipped,
}

impl Metric {
    /// The CloudWatch metric name.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::CloseFailed => "CloseFailed",
            Metric::CallStateUnavailable => "CallStateUnavailable",
            Metric::DeliveryFailed => "DeliveryFailed",
            Metric::UnknownEvent => "UnknownEvent",
            Metric::EchoRecordSkipped => "EchoRecordSkipped",
        }
    }
}

/// The EMF document for one count of `metric` with dimension `reason` at `timestamp_ms`.
pub fn emf_line(metric: Metric, reason: &str, timestamp_ms: u64) -> String {
    emf_count_line(metric, reason, 1, timestamp_ms)
}

/// The EMF document for `n` counts of `metric` with dimension `reason` at `timestamp_ms`.
pub fn emf_count_line(metric: Metric, reason: &str, n: u64, timestamp_ms: u64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["reason"], []],
                "Metrics": [{"Name": metric.name(), "Unit": "Count"}],
            }],
        },
        "reason": reason,
        metric.name(): n,
    })
    .to_string()
}

/// Emits one count of `metric` (reason: a short code, never a secret or attacker-chosen text).
pub fn count(metric: Metric, reason: &str) {
    count_n(metric, reason, 1);
}

/// Emits `n` counts of `metric` in one line (reason as for [`count`]).
pub fn count_n(metric: Metric, reason: &str, n: u64) {
    let line = emf_count_line(metric, reason, n, crate::clock::unix_now_ms());
    // One write of one line: Lambda captures stdout line by line.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_is_what_cloudwatch_reads() {
        let v: serde_json::Value =
            serde_json::from_str(&emf_line(Metric::CloseFailed, "AccessDeniedException", 7))
                .expect("json");
        assert_eq!(v["_aws"]["Timestamp"], 7);
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "StreamGate");
        assert_eq!(m["Dimensions"], json!([["reason"], []]));
        assert_eq!(
            m["Metrics"],
            json!([{"Name": "CloseFailed", "Unit": "Count"}])
        );
        assert_eq!(v["reason"], "AccessDeniedException");
        assert_eq!(v["CloseFailed"], 1);
    }

    #[test]
    fn a_count_line_carries_its_value() {
        let v: serde_json::Value = serde_json::from_str(&emf_count_line(
            Metric::UnknownEvent,
            "unknown_event",
            52,
            7,
        ))
        .expect("json");
        assert_eq!(v["UnknownEvent"], 52);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "UnknownEvent", "Unit": "Count"}])
        );
    }

    #[test]
    fn delivery_failed_is_its_own_metric() {
        let v: serde_json::Value =
            serde_json::from_str(&emf_line(Metric::DeliveryFailed, "timeout", 7)).expect("json");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "DeliveryFailed", "Unit": "Count"}])
        );
        assert_eq!(v["DeliveryFailed"], 1);
        assert_eq!(v["reason"], "timeout");
    }

    #[test]
    fn a_count_of_several_is_one_line() {
        let v: serde_json::Value = serde_json::from_str(&emf_count_line(
            Metric::EchoRecordSkipped,
            "endpoint_not_allowed",
            3,
            7,
        ))
        .expect("json");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "EchoRecordSkipped", "Unit": "Count"}])
        );
        assert_eq!(v["EchoRecordSkipped"], 3);
        assert_eq!(v["reason"], "endpoint_not_allowed");
    }
}
