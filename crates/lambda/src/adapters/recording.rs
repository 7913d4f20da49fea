//! The recording doubles (`dev-adapters`): a sink and a closer that keep what they were given, for
//! the tests and the local gateway's own checks. Never in the Lambda binaries.

use std::fmt;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::connection_closer::{CloseError, CloseOutcome, ConnectionCloser};
use super::delivery::{DeliveryError, DeliveryRecord, DeliverySink};

/// Keeps every record in memory (tests, the local gateway); can be told to fail.
#[derive(Default)]
pub struct RecordingSink {
    records: Mutex<Vec<DeliveryRecord>>,
    fail_next: Mutex<usize>,
}

impl fmt::Debug for RecordingSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingSink")
            .field("records", &self.records().len())
            .finish()
    }
}

impl RecordingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records delivered so far, in order of delivery.
    pub fn records(&self) -> Vec<DeliveryRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes the next `n` deliveries fail with `recording_sink_failure` (recording nothing).
    pub fn fail_next(&self, n: usize) {
        *self.fail_next.lock().unwrap_or_else(|p| p.into_inner()) = n;
    }
}

impl DeliverySink for RecordingSink {
    fn deliver<'a>(
        &'a self,
        record: &'a DeliveryRecord,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        let failing = {
            let mut n = self.fail_next.lock().unwrap_or_else(|p| p.into_inner());
            let failing = *n > 0;
            *n = n.saturating_sub(1);
            failing
        };
        if !failing {
            self.records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(record.clone());
        }
        Box::pin(async move {
            if failing {
                Err(DeliveryError::new("recording_sink_failure"))
            } else {
                Ok(())
            }
        })
    }

    fn kind(&self) -> &'static str {
        "recording"
    }
}

/// An in-memory closer that records what it was asked to close (unit tests of the router).
#[derive(Default)]
pub struct RecordingCloser {
    closed: Mutex<Vec<(String, String)>>,
}

impl RecordingCloser {
    /// The (endpoint, connection id) pairs closed so far.
    pub fn closed(&self) -> Vec<(String, String)> {
        self.closed.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl ConnectionCloser for RecordingCloser {
    fn close<'a>(
        &'a self,
        endpoint: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<CloseOutcome, CloseError>> {
        if let Ok(mut c) = self.closed.lock() {
            c.push((endpoint.to_owned(), connection_id.to_owned()));
        }
        Box::pin(async { Ok(CloseOutcome::Closed) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::delivery::tests::record;

    #[tokio::test]
    async fn recording_sink_records_and_fails_on_demand() {
        let sink = RecordingSink::new();
        sink.fail_next(1);
        assert!(sink.deliver(&record(1)).await.is_err());
        assert!(sink.deliver(&record(2)).await.is_ok());
        let kept = sink.records();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].json().contains(r#""sequenceNumber":"2""#));
    }

    #[tokio::test]
    async fn recording_closer_records_what_it_closed() {
        let closer = RecordingCloser::default();
        assert_eq!(
            closer.close("https://h/prod", "c1").await,
            Ok(CloseOutcome::Closed)
        );
        assert_eq!(
            closer.closed(),
            vec![("https://h/prod".to_owned(), "c1".to_owned())]
        );
    }
}
