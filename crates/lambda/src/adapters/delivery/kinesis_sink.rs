//! `kinesis:<stream name or ARN>`: one `PutRecord` per record, partition key = connectionId (a
//! connection's records land on one shard, in the order they were put).

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use futures_util::future::BoxFuture;

use crate::adapters::sdk::{LazyClient, LazySdk};
use crate::adapters::sdk_error::sdk_error_code;

use super::{DeliveryError, DeliveryRecord, DeliverySink};

/// The stream, as `STREAM_GATE_SINK` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KinesisStream {
    /// A stream name: sent as `StreamName` (the stream of the function's own account and region).
    Name(String),
    /// A stream ARN: sent as `StreamARN`.
    Arn(String),
}

/// Kinesis stream names: 1 to 128 of `[a-zA-Z0-9_.-]`.
fn is_stream_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl KinesisStream {
    /// Parses what follows `kinesis:`: an ARN (`arn:<partition>:kinesis:<region>:<account>:stream/<name>`)
    /// or a stream name.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("kinesis: needs a stream name or ARN".into());
        }
        if s.starts_with("arn:") {
            let parts: Vec<&str> = s.splitn(6, ':').collect();
            let valid = match parts.as_slice() {
                ["arn", partition, "kinesis", region, account, resource] => {
                    !partition.is_empty()
                        && partition
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b == b'-')
                        && !region.is_empty()
                        && region
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && account.len() == 12
                        && account.bytes().all(|b| b.is_ascii_digit())
                        && resource.strip_prefix("stream/").is_some_and(is_stream_name)
                }
                _ => false,
            };
            return if valid {
                Ok(Self::Arn(s.to_owned()))
            } else {
                Err("kinesis: the ARN is not arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>".into())
            };
        }
        if is_stream_name(s) {
            Ok(Self::Name(s.to_owned()))
        } else {
            Err("kinesis: a stream name is 1 to 128 characters of a-z, A-Z, 0-9, _ . -".into())
        }
    }
}

/// Puts each record on a Kinesis data stream.
pub struct KinesisSink {
    stream: KinesisStream,
    client: LazyClient<aws_sdk_kinesis::Client>,
}

impl KinesisSink {
    /// A sink for `stream`, signing with the credentials and region of `sdk` (and its endpoint
    /// override, if any). The client is made on the first delivery.
    pub fn new(sdk: impl Into<LazySdk>, stream: KinesisStream) -> Self {
        Self {
            stream,
            client: LazyClient::new(sdk.into(), Self::make_client),
        }
    }

    fn make_client(sdk: &aws_config::SdkConfig) -> aws_sdk_kinesis::Client {
        // Within the delivery attempt budget (1.6 s); one request per attempt: the caller retries
        // once, and only when the invocation has time left.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_millis(500))
            .operation_attempt_timeout(Duration::from_millis(1000))
            .operation_timeout(Duration::from_millis(1500))
            .build();
        let conf = aws_sdk_kinesis::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_kinesis::Client::from_conf(conf)
    }
}

impl DeliverySink for KinesisSink {
    fn deliver<'a>(
        &'a self,
        record: &'a DeliveryRecord,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let put = self
                .client
                .get()
                .await
                .put_record()
                .partition_key(record.partition_key())
                .data(Blob::new(record.json().as_bytes()));
            let put = match &self.stream {
                KinesisStream::Name(name) => put.stream_name(name),
                KinesisStream::Arn(arn) => put.stream_arn(arn),
            };
            put.send().await.map(|_| ()).map_err(|e| DeliveryError {
                code: sdk_error_code(&e),
            })
        })
    }

    fn kind(&self) -> &'static str {
        "kinesis"
    }
}
