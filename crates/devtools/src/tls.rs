//! TLS for the tools that reach a deployment (`verify`'s `wss://` handshakes and its `https://`
//! webhook request): rustls with the aws-lc-rs provider (the one the AWS SDK already uses) and the
//! system's root certificates (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured). The provider is passed
//! explicitly, so nothing process-wide is installed and no other TLS user is affected.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;

/// The client configuration (built once per process), speaking HTTP/1.1 (WebSocket upgrades and
/// the webhook request both are).
pub fn client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}

fn build() -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) =
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if added == 0 {
        return Err("no trusted root certificates found on this system (set SSL_CERT_FILE)".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
