//! `file:PATH`: JSON lines, appended (the file is created with mode 0600: records carry the
//! caller's audio) and flushed per record. Deliveries take turns, so lines never interleave.

use std::path::PathBuf;

use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;

use super::{DeliveryError, DeliveryRecord, DeliverySink};

/// Appends each record to a file as one line.
pub struct FileSink {
    path: PathBuf,
    file: Mutex<Option<tokio::fs::File>>,
}

impl FileSink {
    /// A sink appending to `path`; the file is opened (created if missing) on the first delivery.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: Mutex::new(None),
        }
    }
}

fn io_code(e: &std::io::Error) -> DeliveryError {
    DeliveryError::new(format!("file_{:?}", e.kind()))
}

impl DeliverySink for FileSink {
    fn deliver<'a>(
        &'a self,
        record: &'a DeliveryRecord,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let mut line = Vec::with_capacity(record.json().len() + 1);
            line.extend_from_slice(record.json().as_bytes());
            line.push(b'\n');
            // Held across the write: one line at a time.
            let mut slot = self.file.lock().await;
            if slot.is_none() {
                let mut options = tokio::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                options.mode(0o600);
                *slot = Some(options.open(&self.path).await.map_err(|e| io_code(&e))?);
            }
            let Some(file) = slot.as_mut() else {
                return Err(DeliveryError::new("file_not_open"));
            };
            let written = match file.write_all(&line).await {
                Ok(()) => file.flush().await,
                Err(e) => Err(e),
            };
            written.map_err(|e| {
                // Reopen on the next delivery rather than keep a handle in an unknown state.
                *slot = None;
                io_code(&e)
            })
        })
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}
