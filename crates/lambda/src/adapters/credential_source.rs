//! Where the credentials document comes from: a file (local runs, tests), AWS Secrets Manager,
//! or a value held in memory (the local gateway's generated document).

use std::path::PathBuf;

use futures_util::future::BoxFuture;

use super::sdk::{LazyClient, LazySdk};
use super::sdk_error::sdk_error_code;
use crate::domain::Secret;

/// Why a document could not be fetched. Carries a short code for logs, never document content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credentials source failed: {code}")]
pub struct SourceError {
    /// e.g. `file_unreadable`, `ThrottlingException`, `AccessDeniedException`, `timeout`.
    pub code: String,
}

/// Fetches the raw credentials document.
pub trait DocumentSource: Send + Sync {
    /// One fetch. The caller caches.
    fn fetch(&self) -> BoxFuture<'_, Result<Secret, SourceError>>;
}

/// Reads the document from a file on every fetch.
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    /// A source reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl DocumentSource for FileSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Secret, SourceError>> {
        Box::pin(async move {
            tokio::fs::read_to_string(&self.path)
                .await
                .map(Secret::new)
                .map_err(|e| SourceError {
                    code: format!("file_unreadable:{:?}", e.kind()),
                })
        })
    }
}

/// A document held in memory (`dev-adapters`: tests, the local gateway).
#[cfg(feature = "dev-adapters")]
pub struct StaticSource(Secret);

#[cfg(feature = "dev-adapters")]
impl StaticSource {
    /// A source that always returns `document`.
    pub fn new(document: Secret) -> Self {
        Self(document)
    }
}

#[cfg(feature = "dev-adapters")]
impl DocumentSource for StaticSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Secret, SourceError>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// `GetSecretValue` on one secret through the AWS SDK.
pub struct SecretsManagerSource {
    client: LazyClient<aws_sdk_secretsmanager::Client>,
    secret_id: String,
}

impl SecretsManagerSource {
    /// A source for `secret_id` (name or ARN) using `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client: LazyClient::ready(client),
            secret_id: secret_id.into(),
        }
    }

    /// A source for `secret_id` whose client is made from `sdk` on the first fetch.
    pub fn lazy(sdk: LazySdk, secret_id: impl Into<String>) -> Self {
        Self {
            client: LazyClient::new(sdk, aws_sdk_secretsmanager::Client::new),
            secret_id: secret_id.into(),
        }
    }
}

impl DocumentSource for SecretsManagerSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Secret, SourceError>> {
        Box::pin(async move {
            let out = self
                .client
                .get()
                .await
                .get_secret_value()
                .secret_id(&self.secret_id)
                .send()
                .await
                .map_err(|e| SourceError {
                    code: sdk_error_code(&e),
                })?;
            out.secret_string.map(Secret::new).ok_or(SourceError {
                code: "no_secret_string".into(),
            })
        })
    }
}
