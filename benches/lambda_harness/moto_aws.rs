//! AWS resources on a loopback moto server, made with plain JSON calls (moto routes by the service
//! in the credential scope and checks no signature): the credentials secret, so cold starts fetch
//! it as a deployed function does, and the Kinesis stream and DynamoDB table of the router's
//! delivery and call state for the CPU comparison.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::{json, Value};
use stream_gate_testkit::moto::{moto, Moto};

const SECRET_ID: &str = "stream-gate/harness";

/// Starts moto, stores `events/credentials.test.json` as a secret, and returns the server (kept
/// alive by the caller) and the variables that point a function at it.
pub async fn serve(events: &Path) -> Result<(Moto, Vec<(String, String)>), String> {
    let document = std::fs::read_to_string(events.join("credentials.test.json"))
        .map_err(|e| format!("credentials.test.json: {e}"))?;
    let moto = moto().await;
    call(
        &moto,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        json!({"Name": SECRET_ID, "SecretString": document}),
    )?;
    let env = vec![
        ("STREAM_GATE_SECRET_ID".to_owned(), SECRET_ID.to_owned()),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(),
            moto.endpoint.clone(),
        ),
    ];
    Ok((moto, env))
}

/// moto's own time to answer `GetSecretValue` to a plain HTTP client here (median of 5): the part
/// of a Secrets Manager cold start that is the emulator, not the function.
pub fn get_secret_latency(moto: &Moto) -> Result<std::time::Duration, String> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        call(
            moto,
            "secretsmanager",
            "secretsmanager.GetSecretValue",
            json!({"SecretId": SECRET_ID}),
        )?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Starts moto with a Kinesis stream `calls` and a DynamoDB table `calls` (the template's key
/// schema); returns the server and the variables that send the router's records and call state
/// there.
pub async fn delivery_and_state() -> Result<(Moto, Vec<(String, String)>), String> {
    let moto = moto().await;
    call(
        &moto,
        "kinesis",
        "Kinesis_20131202.CreateStream",
        json!({"StreamName": "calls", "ShardCount": 1}),
    )?;
    call(
        &moto,
        "dynamodb",
        "DynamoDB_20120810.CreateTable",
        json!({
            "TableName": "calls",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    )?;
    let env = [
        ("AWS_ENDPOINT_URL_KINESIS", moto.endpoint.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Ok((moto, env))
}

/// One JSON-protocol call to moto; fails unless it answers 200.
fn call(moto: &Moto, service: &str, target: &str, body: Value) -> Result<(), String> {
    let hostport = moto
        .endpoint
        .strip_prefix("http://")
        .ok_or("moto endpoint is not http://")?;
    let body = body.to_string();
    let content_type = if service == "dynamodb" {
        "application/x-amz-json-1.0"
    } else {
        "application/x-amz-json-1.1"
    };
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: {content_type}\r\n\
         X-Amz-Target: {target}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST/20261129/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut conn = TcpStream::connect(hostport).map_err(|e| format!("moto: {e}"))?;
    conn.write_all(request.as_bytes())
        .map_err(|e| format!("moto: {e}"))?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)
        .map_err(|e| format!("moto: {e}"))?;
    if !answer.starts_with("HTTP/1.1 200") {
        let status = answer.lines().next().unwrap_or_default();
        return Err(format!("moto {target} answered {status}"));
    }
    Ok(())
}
