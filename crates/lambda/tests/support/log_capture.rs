//! The log lines an entrypoint writes, as JSON objects, for assertions on logs (in-process tests
//! of the handlers).

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex, Once};

use serde_json::Value;

type Buffer = Arc<Mutex<Vec<u8>>>;

thread_local! {
    /// The buffer of the capture running on this thread, if any.
    static ACTIVE: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// Writes into this thread's active buffer; elsewhere (other tests' threads) discards.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        ACTIVE.with(|active| {
            if let Some(buffer) = active.borrow().as_ref() {
                buffer
                    .lock()
                    .map(|mut b| b.extend_from_slice(bytes))
                    .unwrap_or_default();
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One global subscriber for the whole test binary, installed once: the binaries' JSON format
/// (one flat object per event), every level of stream-gate's own code. Not a per-test
/// `set_default`: tracing caches each call site's interest, and a call site first reached on
/// another test's thread, with no subscriber there, could be cached as "never" and miss here.
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "off,stream_gate_lambda=trace,stream_gate_domain=trace",
            ))
            .with_writer(|| ThreadWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
    });
}

/// Clears this thread's buffer when the capture ends, even by a panic.
struct Active;

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.with(|active| active.borrow_mut().take());
    }
}

/// Runs `f` (on this thread: `#[tokio::test]`'s runtime is single-threaded) and returns its
/// output with the log lines it wrote.
pub async fn logs_of<T>(f: impl Future<Output = T>) -> (T, Vec<Value>) {
    install();
    let buffer = Buffer::default();
    ACTIVE.with(|active| *active.borrow_mut() = Some(buffer.clone()));
    let guard = Active;
    let out = f.await;
    drop(guard);
    let bytes = std::mem::take(&mut *buffer.lock().expect("log buffer"));
    let lines = String::from_utf8(bytes)
        .expect("UTF-8 logs")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    (out, lines)
}
