//! Adapters: the I/O the domain needs, each behind a small trait with a real implementation:
//! credentials, closing connections, delivering records, and posting answers to the caller.
//!
//! The Lambda binaries have only what runs in AWS (Secrets Manager or a file, the Management API,
//! DynamoDB, Kinesis). The local adapters (the HTTP and file sinks, the memory call-state store,
//! the in-memory credentials and the recording doubles) come with the `dev-adapters` feature,
//! which the dev tools and the tests turn on and `sam build` never does.

pub mod call_state_dynamodb;
#[cfg(feature = "dev-adapters")]
pub mod call_state_memory;
pub mod call_state_store;
pub mod connection_closer;
pub mod credential_cache;
pub mod credential_source;
pub mod delivery;
#[cfg(feature = "dev-adapters")]
pub mod recording;

pub use call_state_dynamodb::DynamoDbStore;
#[cfg(feature = "dev-adapters")]
pub use call_state_memory::MemoryStore;
pub use call_state_store::{CallStateStore, SessionEndMark, StartClaim, StoreError, VerifiedCache};
pub use connection_closer::{CloseError, CloseOutcome, ConnectionCloser, ManagementApiCloser};
pub use credential_cache::CredentialCache;
#[cfg(feature = "dev-adapters")]
pub use credential_source::StaticSource;
pub use credential_source::{DocumentSource, FileSource, SecretsManagerSource, SourceError};
pub use delivery::{
    deliver_with_retry, DeliveryError, DeliveryRecord, DeliverySink, KinesisSink, KinesisStream,
    NoSink, SinkTarget,
};
#[cfg(feature = "dev-adapters")]
pub use delivery::{FileSink, HttpSink};
#[cfg(feature = "dev-adapters")]
pub use recording::{RecordingCloser, RecordingSink};
// Shared with the applications behind the gate (the `echo` Lambda compiles only that crate).
pub use stream_gate_answer::{connection_poster, management_client, sdk, sdk_error};
pub use stream_gate_answer::{
    load_sdk_config, sdk_error_code, ConnectionPoster, LazyClient, LazySdk, PostError, PostOutcome,
};
