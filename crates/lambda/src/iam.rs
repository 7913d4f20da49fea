//! Every AWS API call each binary can make, with the IAM action and the resource ARN that call is
//! authorised against — and the calls Lambda's event source mapping makes with a function's role
//! on its behalf (the echo example's Kinesis reads), and those Secrets Manager makes to KMS with
//! the caller's credentials. `crates/lambda/tests/iam_policy.rs` evaluates the SAM template's
//! policy statements for each function against this list (tools/check_iam.py): a call not granted
//! fails, and so does a grant no call needs, including a grant of an item kind (a DynamoDB
//! partition-key prefix) the function does not read or write. Add a line here with every new SDK
//! call; `iam_policy.rs` also checks every DynamoDB request the real handlers send against it.
//!
//! Placeholders: `{partition}`, `{region}`, `{account}`, `{url_suffix}`, `{api_id}`, `{stage}`,
//! `{connection_id}`, `{secret_arn}`, `{secret_kms_key}`, `{table}`, `{stream_name}`,
//! `{consumer_name}`, `{consumer_created}`, and in item keys `{account_sid}`, `{call_sid}`,
//! `{expires_at}`. A call made only under a template parameter's value says so in `when` (the
//! DynamoDB calls happen only with `CallState=dynamodb`).

use serde_json::{json, Value};

/// When a call is made, in terms of the template's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Whatever the parameters.
    Always,
    /// Only when the parameter has this value.
    Equals(&'static str, &'static str),
    /// Only when the parameter is not empty.
    Set(&'static str),
    /// Only when the first parameter has its value and the second does not have its own.
    EqualsAndNot((&'static str, &'static str), (&'static str, &'static str)),
}

/// One AWS API call and what IAM checks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsCall {
    /// The API operation (e.g. `DeleteConnection`).
    pub operation: &'static str,
    /// The IAM action it needs.
    pub action: &'static str,
    /// The resource ARN IAM evaluates (for execute-api, the HTTP verb is part of it).
    pub resource: &'static str,
    /// The request context IAM's conditions see, as (condition key, value) pairs: the item's
    /// partition key (`dynamodb:LeadingKeys`), the service a KMS call comes through
    /// (`kms:ViaService`). Empty for calls the template grants without a condition.
    pub context: &'static [(&'static str, &'static str)],
    /// The template parameters under which the call is made.
    pub when: When,
}

const fn call(operation: &'static str, action: &'static str, resource: &'static str) -> AwsCall {
    AwsCall {
        operation,
        action,
        resource,
        context: &[],
        when: When::Always,
    }
}

/// `GetSecretValue` of the credentials document (every binary, `SecretsManagerSource`).
pub const GET_SECRET_VALUE: AwsCall = call(
    "GetSecretValue",
    "secretsmanager:GetSecretValue",
    "{secret_arn}",
);

/// The `kms:Decrypt` Secrets Manager makes with the caller's credentials when the secret is
/// encrypted with a customer-managed key (`SecretKmsKeyArn`; "Secret encryption and decryption in
/// AWS Secrets Manager"): authorised only through Secrets Manager (`kms:ViaService`), so the role
/// cannot decrypt anything else with that key by calling KMS itself. With the AWS-managed key
/// `aws/secretsmanager` (the default) its key policy already allows this and no grant is needed.
pub const SECRET_KEY_DECRYPT: AwsCall = AwsCall {
    operation: "Decrypt (by Secrets Manager, for GetSecretValue)",
    action: "kms:Decrypt",
    resource: "{secret_kms_key}",
    context: &[("kms:ViaService", "secretsmanager.{region}.{url_suffix}")],
    when: When::Set("SecretKmsKeyArn"),
};

/// `DeleteConnection` on `@connections` (the router's `ManagementApiCloser`): IAM authorises it on
/// `DELETE`, not `POST` (API Gateway's "Use @connections commands in your backend service").
pub const DELETE_CONNECTION: AwsCall = call(
    "DeleteConnection",
    "execute-api:ManageConnections",
    "arn:{partition}:execute-api:{region}:{account}:{api_id}/{stage}/DELETE/@connections/{connection_id}",
);

const TABLE: &str = "arn:{partition}:dynamodb:{region}:{account}:table/{table}";

/// The item kinds of the call-state table (`adapters::call_state_dynamodb`), by partition key:
/// a connection's verified start, the claim of a call token, the token issued for a CallSid.
const CONNECTION_ITEM: &[(&str, &str)] = &[("dynamodb:LeadingKeys", "conn#{connection_id}")];
const CLAIM_ITEM: &[(&str, &str)] = &[(
    "dynamodb:LeadingKeys",
    "claim#{account_sid}#{call_sid}#{expires_at}",
)];
const ISSUED_ITEM: &[(&str, &str)] = &[("dynamodb:LeadingKeys", "issued#{account_sid}#{call_sid}")];

const fn item_call(
    operation: &'static str,
    action: &'static str,
    context: &'static [(&'static str, &'static str)],
) -> AwsCall {
    AwsCall {
        operation,
        action,
        resource: TABLE,
        context,
        when: When::Equals("CallState", "dynamodb"),
    }
}

/// A start (`DynamoDbStore::record_start`): one `TransactWriteItems` of two conditional puts. IAM
/// authorises each put as `PutItem` with its own key ("Using IAM with DynamoDB transactions"):
/// this one the connection's item...
pub const RECORD_START: AwsCall =
    item_call("TransactWriteItems", "dynamodb:PutItem", CONNECTION_ITEM);

/// ... and this one the claim of the start's call token.
pub const RECORD_START_CLAIM: AwsCall =
    item_call("TransactWriteItems", "dynamodb:PutItem", CLAIM_ITEM);

/// A connection's start read by another router instance (`started`), or after a cancelled
/// transaction without reasons.
pub const GET_CONNECTION: AwsCall = item_call("GetItem", "dynamodb:GetItem", CONNECTION_ITEM);

/// `$disconnect` (`forget`).
pub const DELETE_ITEM: AwsCall = item_call("DeleteItem", "dynamodb:DeleteItem", CONNECTION_ITEM);

/// The webhook's one token per CallSid (`issue_call_token`): a conditional `PutItem`...
pub const ISSUE_CALL_TOKEN: AwsCall = item_call("PutItem", "dynamodb:PutItem", ISSUED_ITEM);

/// ... and the `GetItem` of the token already issued when the call was seen (or, after a refused
/// `end_session`, to tell a repeated end from a call never answered).
pub const GET_ISSUED: AwsCall = item_call("GetItem", "dynamodb:GetItem", ISSUED_ITEM);

/// A ConversationRelay session's end (`end_session`): a conditional `UpdateItem` marking the call's
/// issued record, so that one `session_end` is delivered per call; only where the stack admits
/// ConversationRelay (elsewhere `…/relay/ended` answers 404 before any store call).
pub const END_SESSION: AwsCall = AwsCall {
    when: When::EqualsAndNot(("CallState", "dynamodb"), ("Protocols", "media-streams")),
    ..item_call("UpdateItem", "dynamodb:UpdateItem", ISSUED_ITEM)
};

/// `PutRecord` of a delivery record (the router's `KinesisSink`, `STREAM_GATE_SINK=kinesis:...`).
/// Authorised on the stream's ARN whether the sink names the stream or its ARN; a stream encrypted
/// with a customer-managed KMS key also needs `kms:GenerateDataKey` on that key.
pub const PUT_RECORD: AwsCall = AwsCall {
    when: When::Equals("Delivery", "kinesis"),
    ..call("PutRecord", "kinesis:PutRecord", DELIVERY_STREAM)
};

/// The voice webhook's `PutRecord` of a ConversationRelay session's `session_end` record: only where
/// the stack delivers and admits ConversationRelay (`Protocols` other than `media-streams` alone).
pub const PUT_SESSION_END: AwsCall = AwsCall {
    when: When::EqualsAndNot(("Delivery", "kinesis"), ("Protocols", "media-streams")),
    ..call("PutRecord", "kinesis:PutRecord", DELIVERY_STREAM)
};

const DELIVERY_STREAM: &str = "arn:{partition}:kinesis:{region}:{account}:stream/{stream_name}";
const ECHO_CONSUMER: &str = "arn:{partition}:kinesis:{region}:{account}:stream/{stream_name}/consumer/{consumer_name}:{consumer_created}";

/// What the echo's event source mapping (an enhanced fan-out consumer of the delivery stream) calls
/// with the echo function's role — Lambda's service, not the echo's code. The list of the Lambda
/// Developer Guide ("Process Amazon Kinesis Data Streams records with Lambda": DescribeStream,
/// DescribeStreamSummary, GetRecords, GetShardIterator, ListShards, SubscribeToShard), plus
/// DescribeStreamConsumer on the consumer. `SubscribeToShard` and `DescribeStreamConsumer` are
/// authorised on the consumer's ARN, the others on the stream's (Service Authorization Reference,
/// Kinesis Data Streams: resource types `consumer` and `stream`).
pub const ECHO_MAPPING_READS: [AwsCall; 7] = [
    call("DescribeStream", "kinesis:DescribeStream", DELIVERY_STREAM),
    call(
        "DescribeStreamSummary",
        "kinesis:DescribeStreamSummary",
        DELIVERY_STREAM,
    ),
    call("GetRecords", "kinesis:GetRecords", DELIVERY_STREAM),
    call(
        "GetShardIterator",
        "kinesis:GetShardIterator",
        DELIVERY_STREAM,
    ),
    call("ListShards", "kinesis:ListShards", DELIVERY_STREAM),
    call(
        "SubscribeToShard",
        "kinesis:SubscribeToShard",
        ECHO_CONSUMER,
    ),
    call(
        "DescribeStreamConsumer",
        "kinesis:DescribeStreamConsumer",
        ECHO_CONSUMER,
    ),
];

/// `PostToConnection` on `@connections` (`ConnectionPoster`: the application answering the caller
/// with Twilio's outbound messages): authorised on `POST`.
pub const POST_TO_CONNECTION: AwsCall = call(
    "PostToConnection",
    "execute-api:ManageConnections",
    "arn:{partition}:execute-api:{region}:{account}:{api_id}/{stage}/POST/@connections/{connection_id}",
);

/// The calls of each function of template.yaml, by its logical id. A function deployed only under
/// a condition (`EchoFunction`: `EchoExample=enabled` with `Delivery=kinesis`) is checked in the
/// scenarios that deploy it.
pub const CALLS: &[(&str, &[AwsCall])] = &[
    (
        "AuthorizerFunction",
        &[GET_SECRET_VALUE, SECRET_KEY_DECRYPT],
    ),
    (
        "RouterFunction",
        &[
            GET_SECRET_VALUE,
            SECRET_KEY_DECRYPT,
            DELETE_CONNECTION,
            RECORD_START,
            RECORD_START_CLAIM,
            GET_CONNECTION,
            DELETE_ITEM,
            PUT_RECORD,
        ],
    ),
    (
        "VoiceWebhookFunction",
        &[
            GET_SECRET_VALUE,
            SECRET_KEY_DECRYPT,
            ISSUE_CALL_TOKEN,
            GET_ISSUED,
            END_SESSION,
            PUT_SESSION_END,
        ],
    ),
    // The example application (crates/echo): answers the caller, and its mapping reads the stream.
    // It reads no secret.
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

fn when_json(when: When) -> Value {
    match when {
        When::Always => Value::Null,
        When::Equals(parameter, value) => json!({ "equals": { parameter: value } }),
        When::Set(parameter) => json!({ "set": parameter }),
        When::EqualsAndNot((p, v), (q, w)) => json!({ "equals": { p: v }, "not_equals": { q: w } }),
    }
}

fn call_json(c: &AwsCall) -> Value {
    let context: serde_json::Map<String, Value> = c
        .context
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    json!({
        "operation": c.operation, "action": c.action, "resource": c.resource,
        "context": context, "when": when_json(c.when),
    })
}

/// [`CALLS`] as JSON, the input of tools/check_iam.py.
pub fn calls_json() -> Value {
    Value::Object(
        CALLS
            .iter()
            .map(|(function, calls)| {
                let calls: Vec<Value> = calls.iter().map(call_json).collect();
                ((*function).to_owned(), Value::from(calls))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_carries_context_and_when() {
        let v = calls_json();
        let router = v["RouterFunction"].as_array().expect("router calls");
        let start = router
            .iter()
            .find(|c| c["context"]["dynamodb:LeadingKeys"] == "conn#{connection_id}")
            .expect("the connection's put");
        assert_eq!(start["action"], "dynamodb:PutItem");
        assert_eq!(start["when"], json!({"equals": {"CallState": "dynamodb"}}));
        let decrypt = router
            .iter()
            .find(|c| c["action"] == "kms:Decrypt")
            .expect("decrypt");
        assert_eq!(decrypt["when"], json!({"set": "SecretKmsKeyArn"}));
        assert_eq!(
            decrypt["context"]["kms:ViaService"],
            "secretsmanager.{region}.{url_suffix}"
        );
        let secret = &router[0];
        assert_eq!(secret["when"], Value::Null);
        assert_eq!(secret["context"], json!({}));
    }
}
