//! The SAM template grants each function exactly the AWS calls its code makes
//! (`stream_gate_lambda::iam::CALLS`), evaluated with IAM's matching rules by tools/check_iam.py
//! after the SAM transform, for every AuthMode, with a created or an existing secret, in the `aws`
//! and `aws-cn` partitions, with and without the echo example (whose role the event source
//! mapping's Kinesis reads use too). The checker is also shown to fail on the defects it exists for.

use std::io::Write as _;
use std::process::{Command, Stdio};

use stream_gate_testkit::repo_file;

fn check(template_text: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "sg-iam-{}-{}",
        std::process::id(),
        template_text.len()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("template.yaml");
    std::fs::write(&path, template_text).expect("write template");
    let python = repo_file(".venv/bin/python");
    assert!(
        python.is_file(),
        "run scripts/setup (needs aws-sam-cli's samtranslator in .venv)"
    );
    let mut child = Command::new(python)
        .arg(repo_file("tools/check_iam.py"))
        .arg(&path)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run check_iam.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream_gate_lambda::iam::calls_json().to_string().as_bytes())
        .expect("write calls");
    let out = child.wait_with_output().expect("check_iam output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn template() -> String {
    std::fs::read_to_string(repo_file("template.yaml")).expect("template.yaml")
}

#[test]
fn every_call_is_granted_and_nothing_more() {
    let (ok, out) = check(&template());
    assert!(ok, "{out}");
    assert!(out.contains("check_iam: ok"), "{out}");
}

#[test]
fn a_close_authorised_on_post_is_caught() {
    // The defect this test exists for: ManageConnections granted on POST only, so every
    // DeleteConnection would be AccessDenied in a real account.
    let broken = template().replace("/DELETE/@connections/*", "/POST/@connections/*");
    assert_ne!(
        broken,
        template(),
        "the template grants DELETE on @connections"
    );
    let (ok, out) = check(&broken);
    assert!(!ok, "{out}");
    assert!(
        out.contains("DeleteConnection") && out.contains("is not granted"),
        "{out}"
    );
    assert!(out.contains("which no call needs"), "{out}");
}

#[test]
fn a_secret_grant_wider_than_the_document_is_caught() {
    let wide = template().replacen(
        "Resource: !If [CreateSecret, !Ref CredentialsSecret, !Ref ExistingSecretArn]",
        "Resource: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:*",
        1,
    );
    assert_ne!(wide, template());
    let (ok, out) = check(&wide);
    assert!(!ok, "{out}");
    assert!(
        out.contains("which also allows secretsmanager:GetSecretValue"),
        "{out}"
    );
}

#[test]
fn a_grant_no_call_needs_is_caught() {
    let broad = template().replace("/DELETE/@connections/*", "/*/@connections/*");
    assert_ne!(broad, template());
    let (ok, out) = check(&broad);
    assert!(!ok, "{out}");
    assert!(out.contains("which no call needs"), "{out}");
}

#[test]
fn an_echo_answering_on_another_verb_is_caught() {
    // PostToConnection is a POST: the echo granted DELETE could not answer, and could hang up.
    let broken = template().replace("/POST/@connections/*", "/DELETE/@connections/*");
    assert_ne!(
        broken,
        template(),
        "the template grants the echo POST on @connections"
    );
    let (ok, out) = check(&broken);
    assert!(!ok, "{out}");
    assert!(
        out.contains("EchoFunction: PostToConnection") && out.contains("is not granted"),
        "{out}"
    );
}

#[test]
fn a_consumer_read_granted_on_the_stream_is_caught() {
    // SubscribeToShard is authorised on the consumer's ARN: granted on the stream it would fail,
    // and would be a grant no call needs.
    let broken = template().replace(
        "Action: [kinesis:SubscribeToShard, kinesis:DescribeStreamConsumer]\n              Resource: !GetAtt EchoConsumer.ConsumerARN",
        "Action: [kinesis:SubscribeToShard, kinesis:DescribeStreamConsumer]\n              Resource: !GetAtt DeliveryStream.Arn",
    );
    assert_ne!(broken, template());
    let (ok, out) = check(&broken);
    assert!(!ok, "{out}");
    assert!(
        out.contains("EchoFunction: SubscribeToShard") && out.contains("which no call needs"),
        "{out}"
    );
}

#[test]
fn an_echo_role_reading_every_consumer_is_caught() {
    let broad = template().replace(
        "Resource: !GetAtt EchoConsumer.ConsumerARN\n",
        "Resource: !Sub \"${DeliveryStream.Arn}/consumer/*\"\n",
    );
    assert_ne!(broad, template());
    let (ok, out) = check(&broad);
    assert!(!ok, "{out}");
    assert!(
        out.contains("which also allows kinesis:SubscribeToShard"),
        "{out}"
    );
}

#[test]
fn an_echo_that_may_write_the_delivery_stream_is_caught() {
    // Only the router writes records: a consumer that could put one could name any connection of
    // the stage (SECURITY.md, "Records are not authenticated").
    let writer = template().replace(
        "Resource: !GetAtt EchoConsumer.ConsumerARN\n",
        "Resource: !GetAtt EchoConsumer.ConsumerARN\n            - Effect: Allow\n              Action: kinesis:PutRecord\n              Resource: !GetAtt DeliveryStream.Arn\n",
    );
    assert_ne!(writer, template());
    let (ok, out) = check(&writer);
    assert!(!ok, "{out}");
    assert!(
        out.contains("EchoFunction: grants kinesis:PutRecord")
            && out.contains("which no call needs"),
        "{out}"
    );
}
