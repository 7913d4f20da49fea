//! Every AWS API call each binary can make, with the IAM action and the resource ARN that call is
//! authorised against — and the calls Lambda's event source mapping makes with a function's role
//! on its behalf (the echo example's Kinesis reads). `crates/lambda/tests/iam_policy.rs` evaluates the SAM template's policy
//! statements for each function against this list (tools/check_iam.py): a call not granted fails,
//! and so does a grant no call needs. Add a line here with every new SDK call.
//!
//! Placeholders: `{partition}`, `{region}`, `{account}`, `{api_id}`, `{stage}`, `{connection_id}`,
//! `{secret_arn}`, `{table}`, `{stream_name}`, `{consumer_name}`, `{consumer_created}`. A call made only under a template parameter's
//! value says so in `when` (the DynamoDB calls happen only with `CallState=dynamodb`).

use serde_json::{json, Value};

/// One AWS API call and what IAM checks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsCall {
    /// The API operation (e.g. `DeleteConnection`).
    pub operation: &'static str,
    /// The IAM action it needs.
    pub action: &'static str,
    /// The resource ARN IAM evaluates (for execute-api, the HTTP verb is part of it).
    pub resource: &'static str,
    /// `Some((parameter, value))`: made only when the template parameter has that value.
    pub when: Option<(&'static str, &'static str)>,
}

/// `GetSecretValue` of the credentials document (every binary, `SecretsManagerSource`).
pub const GET_SECRET_VALUE: AwsCall = AwsCall {
    operation: "GetSecretValue",
    action: "secretsmanager:GetSecretValue",
    resource: "{secret_arn}",
    when: None,
};

/// `DeleteConnection` on `@connections` (the router's `ManagementApiCloser`): IAM authorises it on
/// `DELETE`, not `POST` (API Gateway's "Use @connections commands in your backend service").
pub const DELETE_CONNECTION: AwsCall = AwsCall {
    operation: "DeleteConnection",
    action: "execute-api:ManageConnections",
    resource:
        "arn:{partition}:execute-api:{region}:{account}:{api_id}/{stage}/DELETE/@connections/{connection_id}",
    when: None,
};

const TABLE: &str = "arn:{partition}:dynamodb:{region}:{account}:table/{table}";
const WITH_CALL_STATE: Option<(&str, &str)> = Some(("CallState", "dynamodb"));

/// A start (`DynamoDbStore::record_start`): `TransactWriteItems` of two conditional puts, which
/// IAM authorises as `PutItem` on the table ("Using IAM with DynamoDB transactions").
pub const RECORD_START: AwsCall = AwsCall {
    operation: "TransactWriteItems",
    action: "dynamodb:PutItem",
    resource: TABLE,
    when: WITH_CALL_STATE,
};

/// A connection's start read by another instance (`started`), or an issued token re-read.
pub const GET_ITEM: AwsCall = AwsCall {
    operation: "GetItem",
    action: "dynamodb:GetItem",
    resource: TABLE,
    when: WITH_CALL_STATE,
};

/// `$disconnect` (`forget`).
pub const DELETE_ITEM: AwsCall = AwsCall {
    operation: "DeleteItem",
    action: "dynamodb:DeleteItem",
    resource: TABLE,
    when: WITH_CALL_STATE,
};

/// The webhook's one token per CallSid (`issue_call_token`): a conditional `PutItem`.
pub const ISSUE_CALL_TOKEN: AwsCall = AwsCall {
    operation: "PutItem",
    action: "dynamodb:PutItem",
    resource: TABLE,
    when: WITH_CALL_STATE,
};

/// `PutRecord` of a delivery record (the router's `KinesisSink`, `STREAM_GATE_SINK=kinesis:...`).
/// Authorised on the stream's ARN whether the sink names the stream or its ARN; a stream encrypted
/// with a customer-managed KMS key also needs `kms:GenerateDataKey` on that key.
pub const PUT_RECORD: AwsCall = AwsCall {
    operation: "PutRecord",
    action: "kinesis:PutRecord",
    resource: DELIVERY_STREAM,
    when: Some(("Delivery", "kinesis")),
};

const DELIVERY_STREAM: &str = "arn:{partition}:kinesis:{region}:{account}:stream/{stream_name}";
const ECHO_CONSUMER: &str = "arn:{partition}:kinesis:{region}:{account}:stream/{stream_name}/consumer/{consumer_name}:{consumer_created}";

const fn mapping_read(
    operation: &'static str,
    action: &'static str,
    resource: &'static str,
) -> AwsCall {
    AwsCall {
        operation,
        action,
        resource,
        when: None,
    }
}

/// What the echo's event source mapping (an enhanced fan-out consumer of the delivery stream) calls
/// with the echo function's role — Lambda's service, not the echo's code. The list of the Lambda
/// Developer Guide ("Process Amazon Kinesis Data Streams records with Lambda": DescribeStream,
/// DescribeStreamSummary, GetRecords, GetShardIterator, ListShards, SubscribeToShard), plus
/// DescribeStreamConsumer on the consumer. `SubscribeToShard` and `DescribeStreamConsumer` are
/// authorised on the consumer's ARN, the others on the stream's (Service Authorization Reference,
/// Kinesis Data Streams: resource types `consumer` and `stream`).
pub const ECHO_MAPPING_READS: [AwsCall; 7] = [
    mapping_read("DescribeStream", "kinesis:DescribeStream", DELIVERY_STREAM),
    mapping_read(
        "DescribeStreamSummary",
        "kinesis:DescribeStreamSummary",
        DELIVERY_STREAM,
    ),
    mapping_read("GetRecords", "kinesis:GetRecords", DELIVERY_STREAM),
    mapping_read(
        "GetShardIterator",
        "kinesis:GetShardIterator",
        DELIVERY_STREAM,
    ),
    mapping_read("ListShards", "kinesis:ListShards", DELIVERY_STREAM),
    mapping_read(
        "SubscribeToShard",
        "kinesis:SubscribeToShard",
        ECHO_CONSUMER,
    ),
    mapping_read(
        "DescribeStreamConsumer",
        "kinesis:DescribeStreamConsumer",
        ECHO_CONSUMER,
    ),
];

/// `PostToConnection` on `@connections` (`ConnectionPoster`: the application answering the caller
/// with Twilio's outbound messages): authorised on `POST`.
pub const POST_TO_CONNECTION: AwsCall = AwsCall {
    operation: "PostToConnection",
    action: "execute-api:ManageConnections",
    resource:
        "arn:{partition}:execute-api:{region}:{account}:{api_id}/{stage}/POST/@connections/{connection_id}",
    when: None,
};

/// The calls of each function of template.yaml, by its logical id. A function deployed only under
/// a condition (`EchoFunction`: `EchoExample=enabled` with `Delivery=kinesis`) is checked in the
/// scenarios that deploy it.
pub const CALLS: &[(&str, &[AwsCall])] = &[
    ("AuthorizerFunction", &[GET_SECRET_VALUE]),
    (
        "RouterFunction",
        &[
            GET_SECRET_VALUE,
            DELETE_CONNECTION,
            RECORD_START,
            GET_ITEM,
            DELETE_ITEM,
            PUT_RECORD,
        ],
    ),
    (
        "VoiceWebhookFunction",
        &[GET_SECRET_VALUE, ISSUE_CALL_TOKEN, GET_ITEM],
    ),
    // The example application (crates/echo): answers the caller, and its mapping reads the stream.
    (
        "EchoFunction",
        &[
            POST_TO_CONNECTION,
            ECHO_MAPPING_READS[0],
            ECHO_MAPPING_READS[1],
            ECHO_MAPPING_READS[2],
            ECHO_MAPPING_READS[3],
            ECHO_MAPPING_READS[4],
            ECHO_MAPPING_READS[5],
            ECHO_MAPPING_READS[6],
        ],
    ),
];

/// [`CALLS`] as JSON, the input of tools/check_iam.py.
pub fn calls_json() -> Value {
    Value::Object(
        CALLS
            .iter()
            .map(|(function, calls)| {
                let calls: Vec<Value> = calls
                    .iter()
                    .map(|c| {
                        json!({
                            "operation": c.operation, "action": c.action, "resource": c.resource,
                            "when": c.when.map(|(p, v)| json!({p: v})),
                        })
                    })
                    .collect();
                ((*function).to_owned(), Value::from(calls))
            })
            .collect(),
    )
}
