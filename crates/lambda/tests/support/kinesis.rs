//! Kinesis on a loopback emulator (moto) through the real SDK: the configuration, a stream, and
//! every record on it.

use aws_config::BehaviorVersion;
use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::types::ShardIteratorType;

/// SDK configuration for a loopback emulator: fixed region and test credentials.
pub async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// A Kinesis client of the emulator, with `stream` created (`shards` shards).
pub async fn kinesis_with_stream(
    sdk: &aws_config::SdkConfig,
    stream: &str,
    shards: i32,
) -> aws_sdk_kinesis::Client {
    let admin = aws_sdk_kinesis::Client::new(sdk);
    admin
        .create_stream()
        .stream_name(stream)
        .shard_count(shards)
        .send()
        .await
        .expect("create stream");
    admin
}

/// Every record on `stream`, shard by shard: (shard id, partition key, data).
pub async fn read_stream(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Vec<(String, String, String)> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("list shards");
    let mut out = Vec::new();
    for shard in shards.shards() {
        let iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator
            .expect("an iterator");
        let records = client
            .get_records()
            .shard_iterator(iterator)
            .limit(1000)
            .send()
            .await
            .expect("get records");
        for r in records.records() {
            let data = String::from_utf8(r.data().as_ref().to_vec()).expect("utf-8");
            out.push((
                shard.shard_id().to_owned(),
                r.partition_key().map(str::to_owned).unwrap_or_default(),
                data,
            ));
        }
    }
    out
}
