//! The Secrets Manager credentials source and its TTL cache against a real Secrets Manager API
//! emulator (moto server on loopback) through the real AWS SDK.

use stream_gate_testkit as support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_secretsmanager::config::{
    ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_secretsmanager::Client;
use stream_gate_lambda::adapters::{CredentialCache, DocumentSource, SecretsManagerSource};
use support::moto::moto;
use tokio::time::Instant;

const DOC_A: &str = r#"{"twilioAccounts":[{"accountSid":"AC0123456789abcdef0123456789abcdef","authTokens":["sm-test-token-a"]}]}"#;
const DOC_AB: &str = r#"{"twilioAccounts":[{"accountSid":"AC0123456789abcdef0123456789abcdef","authTokens":["sm-test-token-a"]},{"accountSid":"ACffffffffffffffffffffffffffffffff","authTokens":["sm-test-token-b"]}]}"#;
const TTL: Duration = Duration::from_secs(300);

/// Counts GetSecretValue requests that actually go out.
#[derive(Debug, Default)]
struct CountGets(Arc<AtomicUsize>);

impl Intercept for CountGets {
    fn name(&self) -> &'static str {
        "CountGets"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if ctx.request().headers().get("x-amz-target") == Some("secretsmanager.GetSecretValue") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

fn client(endpoint: &str, counter: Arc<AtomicUsize>) -> Client {
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .retry_config(
            aws_sdk_secretsmanager::config::retry::RetryConfig::standard().with_max_attempts(1),
        )
        .interceptor(CountGets(counter))
        .build();
    Client::from_conf(conf)
}

async fn create(c: &Client, name: &str, doc: &str) {
    c.create_secret()
        .name(name)
        .secret_string(doc)
        .send()
        .await
        .expect("create secret");
}

fn accounts(c: &Option<Arc<stream_gate_domain::Credentials>>) -> Option<usize> {
    c.as_ref().map(|c| c.account_sids().count())
}

#[tokio::test]
async fn fetches_once_per_ttl_and_picks_up_rotation_after_it() {
    let m = moto().await;
    let gets = Arc::new(AtomicUsize::new(0));
    let c = client(&m.endpoint, gets.clone());
    create(&c, "sg/rotation", DOC_A).await;
    let cache = CredentialCache::new(
        Box::new(SecretsManagerSource::new(c.clone(), "sg/rotation")),
        TTL,
        TTL * 12,
    );
    let t0 = Instant::now();
    assert_eq!(accounts(&cache.get_at(t0).await), Some(1));
    for s in 1..200 {
        assert_eq!(
            accounts(&cache.get_at(t0 + Duration::from_secs(s)).await),
            Some(1)
        );
    }
    assert_eq!(
        gets.load(Ordering::SeqCst),
        1,
        "one GetSecretValue for 200 decisions within the TTL"
    );

    c.put_secret_value()
        .secret_id("sg/rotation")
        .secret_string(DOC_AB)
        .send()
        .await
        .expect("rotate");
    assert_eq!(
        accounts(&cache.get_at(t0 + Duration::from_secs(299)).await),
        Some(1),
        "not before the TTL"
    );
    assert_eq!(
        accounts(&cache.get_at(t0 + TTL).await),
        Some(2),
        "rotated document after the TTL"
    );
    assert_eq!(gets.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn outage_keeps_the_last_good_document_and_denies_without_one() {
    let m = moto().await;
    let gets = Arc::new(AtomicUsize::new(0));
    let c = client(&m.endpoint, gets.clone());
    create(&c, "sg/outage", DOC_A).await;
    let cache = CredentialCache::new(
        Box::new(SecretsManagerSource::new(c.clone(), "sg/outage")),
        TTL,
        TTL * 12,
    );
    let t0 = Instant::now();
    assert!(cache.get_at(t0).await.is_some());
    c.delete_secret()
        .secret_id("sg/outage")
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete");
    assert_eq!(
        accounts(&cache.get_at(t0 + TTL).await),
        Some(1),
        "last good document kept"
    );
    assert_eq!(gets.load(Ordering::SeqCst), 2, "the refresh was attempted");

    // A fresh instance with no good document: deny.
    let fresh = CredentialCache::new(
        Box::new(SecretsManagerSource::new(c.clone(), "sg/outage")),
        TTL,
        TTL,
    );
    assert!(fresh.get().await.is_none());
    // Nothing listening at all (the service is unreachable): deny, with a transport error code.
    let dead = client("http://127.0.0.1:9", Arc::default());
    let err = SecretsManagerSource::new(dead, "sg/outage")
        .fetch()
        .await
        .expect_err("unreachable");
    assert_eq!(err.code, "dispatch_failure");
}

#[tokio::test]
async fn a_rotation_that_breaks_the_document_keeps_the_last_good_one() {
    let m = moto().await;
    let c = client(&m.endpoint, Arc::default());
    create(&c, "sg/broken", DOC_AB).await;
    let cache = CredentialCache::new(
        Box::new(SecretsManagerSource::new(c.clone(), "sg/broken")),
        TTL,
        TTL * 12,
    );
    let t0 = Instant::now();
    assert_eq!(accounts(&cache.get_at(t0).await), Some(2));
    c.put_secret_value()
        .secret_id("sg/broken")
        .secret_string(r#"{"twilioAccounts":[{"accountSid":"AC1","authTokens":["x"]}]}"#)
        .send()
        .await
        .expect("put");
    assert_eq!(accounts(&cache.get_at(t0 + TTL).await), Some(2));
}

#[tokio::test]
async fn errors_carry_the_service_code_and_never_the_document() {
    let m = moto().await;
    let c = client(&m.endpoint, Arc::default());
    let err = SecretsManagerSource::new(c.clone(), "sg/does-not-exist")
        .fetch()
        .await
        .expect_err("missing");
    assert_eq!(err.code, "ResourceNotFoundException");
    create(&c, "sg/ok", DOC_A).await;
    let doc = SecretsManagerSource::new(c, "sg/ok")
        .fetch()
        .await
        .expect("fetch");
    assert_eq!(doc.expose(), DOC_A);
    assert_eq!(format!("{doc:?}"), "Secret(***)");
}
