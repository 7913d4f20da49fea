//! The SAM template grants each function exactly the AWS calls its code makes
//! (`stream_gate_lambda::iam::CALLS`), evaluated with IAM's matching rules by tools/check_iam.py
//! after the SAM transform, for every AuthMode, with a created or an existing secret, with and
//! without a customer-managed key for it, in the `aws` and `aws-cn` partitions, with and without
//! the echo example (whose role the event source mapping's Kinesis reads use too) — conditions
//! included: each DynamoDB call is evaluated with its item's partition key (`dynamodb:LeadingKeys`)
//! and the KMS decrypt with `kms:ViaService`. The checker is also shown to fail on the defects it
//! exists for. (tests/iam_item_keys.rs shows the item keys listed are those the code sends.)

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use stream_gate_testkit::repo_file;

fn check(template_text: &str) -> (bool, String) {
    // One directory per check: the tests run in parallel, and two templates may be as long.
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sg-iam-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::SeqCst)
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

/// `template()` with `from` replaced by `to` exactly once (the test is about that one place).
fn edited(from: &str, to: &str) -> String {
    let t = template();
    assert_eq!(t.matches(from).count(), 1, "{from}");
    t.replacen(from, to, 1)
}

const WEBHOOK_ITEMS: &str = "                Action: [dynamodb:PutItem, dynamodb:GetItem]
                Resource: !GetAtt CallStateTable.Arn
                Condition:
                  ForAllValues:StringLike:
                    dynamodb:LeadingKeys: [\"issued#*\"]
                  \"Null\":
                    dynamodb:LeadingKeys: \"false\"
";

#[test]
fn a_router_grant_on_every_item_kind_is_caught() {
    // The router could then overwrite the webhook's issued# records (a fresh token per replay).
    let (ok, out) = check(&edited("[\"conn#*\"]", "[\"*\"]"));
    assert!(!ok, "{out}");
    assert!(
        out.contains("RouterFunction: grants dynamodb:PutItem")
            && out.contains("with dynamodb:LeadingKeys=issued#AC"),
        "{out}"
    );
}

#[test]
fn a_webhook_grant_without_its_condition_is_caught() {
    // The threat: the internet-facing webhook writing a connection's verified start.
    let bare = "                Action: [dynamodb:PutItem, dynamodb:GetItem]
                Resource: !GetAtt CallStateTable.Arn
";
    let (ok, out) = check(&edited(WEBHOOK_ITEMS, bare));
    assert!(!ok, "{out}");
    assert!(
        out.contains("VoiceWebhookFunction: grants dynamodb:PutItem")
            && out.contains("with dynamodb:LeadingKeys=conn#"),
        "{out}"
    );
}

#[test]
fn a_grant_without_the_null_guard_is_caught() {
    // ForAllValues alone is true for a request that carries no key at all.
    let unguarded = WEBHOOK_ITEMS.replace(
        "                  \"Null\":\n                    dynamodb:LeadingKeys: \"false\"\n",
        "",
    );
    assert_ne!(unguarded, WEBHOOK_ITEMS);
    let (ok, out) = check(&edited(WEBHOOK_ITEMS, &unguarded));
    assert!(!ok, "{out}");
    assert!(
        out.contains("VoiceWebhookFunction: grants dynamodb:GetItem")
            && out.contains("with no condition keys, which no call needs"),
        "{out}"
    );
}

#[test]
fn a_webhook_that_may_write_the_stream_without_conversation_relay_is_caught() {
    // The session_end grant belongs only to stacks that admit ConversationRelay.
    let t = template();
    let grant = "            - !If
              - HasRelayDelivery
              - Effect: Allow
                Action: kinesis:PutRecord";
    assert_eq!(t.matches(grant).count(), 1);
    let (ok, out) = check(&t.replacen(grant, &grant.replace("HasRelayDelivery", "HasKinesis"), 1));
    assert!(!ok, "{out}");
    assert!(
        out.contains("VoiceWebhookFunction: grants kinesis:PutRecord")
            && out.contains("Protocols=media-streams")
            && out.contains("which no call needs"),
        "{out}"
    );
}

#[test]
fn a_webhook_that_may_mark_the_table_without_conversation_relay_is_caught() {
    // The session's end is marked only where ConversationRelay is admitted.
    let (ok, out) = check(&edited(
        "              - HasRelayCallState\n              - Effect: Allow\n                Action: dynamodb:UpdateItem",
        "              - HasCallState\n              - Effect: Allow\n                Action: dynamodb:UpdateItem",
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("VoiceWebhookFunction: grants dynamodb:UpdateItem")
            && out.contains("Protocols=media-streams")
            && out.contains("which no call needs"),
        "{out}"
    );
}

#[test]
fn a_webhook_scoped_to_the_wrong_item_kind_is_caught() {
    let (ok, out) = check(&edited(
        WEBHOOK_ITEMS,
        &WEBHOOK_ITEMS.replace("[\"issued#*\"]", "[\"conn#*\"]"),
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("VoiceWebhookFunction: PutItem") && out.contains("is not granted"),
        "{out}"
    );
}

#[test]
fn a_single_valued_operator_on_the_item_key_is_caught() {
    // LeadingKeys is multivalued: StringLike without ForAllValues is not what IAM evaluates.
    let (ok, out) = check(&edited(
        WEBHOOK_ITEMS,
        &WEBHOOK_ITEMS.replace("ForAllValues:StringLike:", "StringLike:"),
    ));
    assert!(!ok, "{out}");
    assert!(out.contains("unsupported condition"), "{out}");
}

#[test]
fn a_secret_key_decrypt_not_through_secrets_manager_is_caught() {
    let t = template();
    let via = "                Condition:
                  StringEquals:
                    kms:ViaService: !Sub secretsmanager.${AWS::Region}.${AWS::URLSuffix}
";
    assert_eq!(
        t.matches(via).count(),
        3,
        "one per function reading the secret"
    );
    let (ok, out) = check(&t.replacen(via, "", 1));
    assert!(!ok, "{out}");
    assert!(
        out.contains("AuthorizerFunction: grants kms:Decrypt")
            && out.contains("with no condition keys, which no call needs"),
        "{out}"
    );
    let (ok, out) = check(&t.replacen(
        "kms:ViaService: !Sub secretsmanager.",
        "kms:ViaService: !Sub kms.",
        1,
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("AuthorizerFunction: Decrypt (by Secrets Manager, for GetSecretValue)")
            && out.contains("is not granted"),
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
