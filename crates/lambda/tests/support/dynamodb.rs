//! A DynamoDB client on a loopback endpoint (moto, a fault proxy) and the call-state table as the
//! SAM template creates it.

use std::time::Duration;

use aws_sdk_dynamodb::config::{Credentials, Intercept, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

/// A client of `endpoint` with test credentials, no retries (the tests count requests), each
/// operation cut at `timeout`, and `interceptor` watching every request.
pub fn dynamodb_client(
    endpoint: &str,
    timeout: Duration,
    interceptor: impl Intercept + 'static,
) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                .operation_timeout(timeout)
                .build(),
        )
        .interceptor(interceptor)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// The table as the SAM template creates it: `pk` (S) hash key, on-demand.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    let attribute = AttributeDefinition::builder()
        .attribute_name("pk")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute");
    let key = KeySchemaElement::builder()
        .attribute_name("pk")
        .key_type(KeyType::Hash)
        .build()
        .expect("key");
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute)
        .key_schema(key)
        .send()
        .await
        .expect("create table");
}
