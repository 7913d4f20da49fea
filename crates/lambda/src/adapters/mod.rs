//! Adapters: the I/O the domain needs, each behind a small trait with a real implementation:
//! credentials, closing connections, delivering records, and posting answers to the caller.

pub mod call_state;
pub mod call_state_dynamodb;
pub mod connection_closer;
pub mod connection_poster;
pub mod credential_cache;
pub mod credential_source;
pub mod delivery;
pub mod management_client;
pub mod sdk;
pub mod sdk_error;

pub use call_state::{CallStateStore, MemoryStore, StartClaim, StoreError, VerifiedCache};
pub use call_state_dynamodb::DynamoDbStore;
pub use connection_closer::{
    CloseError, CloseOutcome, ConnectionCloser, ManagementApiCloser, RecordingCloser,
};
pub use connection_poster::{ConnectionPoster, PostError, PostOutcome};
pub use credential_cache::CredentialCache;
pub use credential_source::{
    DocumentSource, FileSource, SecretsManagerSource, SourceError, StaticSource,
};
pub use delivery::{
    deliver_with_retry, DeliveryError, DeliveryRecord, DeliverySink, FileSink, HttpSink,
    KinesisSink, KinesisStream, NoSink, RecordingSink, SinkTarget,
};
pub use sdk::{load_sdk_config, LazyClient, LazySdk};
pub use sdk_error::sdk_error_code;
