//! `http://<loopback host>:<port>/<path>`: each record POSTed as `application/json`; any 2xx is
//! delivered. Plain HTTP, so loopback only: for a consumer on the same machine as
//! `stream-gate local` (records carry the caller's audio; in AWS use `kinesis:`).

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use ::http::header::{CONTENT_TYPE, USER_AGENT};
use ::http::{Method, Request, Uri};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{DeliveryError, DeliveryRecord, DeliverySink};

/// How long one POST may take, connection and answer included.
pub const HTTP_SINK_TIMEOUT: Duration = Duration::from_millis(1000);

/// The most of a response body read (and dropped), so the connection can be reused.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Whether `host` (as a URI gives it, IPv6 in brackets) is the loopback interface.
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses an `http://` sink URL: a loopback host, an optional port, no credentials.
pub(super) fn parse_loopback_url(s: &str) -> Result<Uri, String> {
    let uri: Uri = s
        .parse()
        .map_err(|_| "http: not a URL (http://127.0.0.1:<port>/<path>)".to_owned())?;
    let authority = uri
        .authority()
        .ok_or_else(|| "http: not a URL (http://127.0.0.1:<port>/<path>)".to_owned())?;
    if authority.as_str().contains('@') {
        return Err("http: credentials in the URL are not supported".into());
    }
    // `http::Uri` keeps a port it cannot read as a number (`:99999`) and reports none.
    let has_port = authority.as_str().len() > authority.host().len();
    if has_port && authority.port_u16().is_none() {
        return Err("http: not a URL (http://127.0.0.1:<port>/<path>)".into());
    }
    if uri.scheme_str() != Some("http") || !is_loopback(authority.host()) {
        return Err(
            "http: sinks must be on loopback (127.0.0.0/8, [::1] or localhost): records carry call audio in the clear"
                .into(),
        );
    }
    Ok(uri)
}

/// POSTs each record to a loopback HTTP endpoint.
pub struct HttpSink {
    uri: Uri,
    timeout: Duration,
    client: OnceLock<Client<HttpConnector, Full<Bytes>>>,
}

impl HttpSink {
    /// A sink POSTing to `uri` (checked by `SinkTarget`'s parse), each POST bounded by
    /// [`HTTP_SINK_TIMEOUT`]. The client is made on the first delivery.
    pub fn new(uri: Uri) -> Self {
        Self {
            uri,
            timeout: HTTP_SINK_TIMEOUT,
            client: OnceLock::new(),
        }
    }

    /// Bounds each POST by `timeout` instead.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn client(&self) -> &Client<HttpConnector, Full<Bytes>> {
        self.client.get_or_init(|| {
            let mut connector = HttpConnector::new();
            connector.set_connect_timeout(Some(self.timeout));
            connector.set_nodelay(true);
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector)
        })
    }

    async fn post(&self, record: &DeliveryRecord) -> Result<(), DeliveryError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, "stream-gate")
            .body(Full::new(Bytes::copy_from_slice(record.json().as_bytes())))
            .map_err(|_| DeliveryError::new("http_request_invalid"))?;
        let response = self.client().request(request).await.map_err(|e| {
            DeliveryError::new(if e.is_connect() {
                "http_connect_failed"
            } else {
                "http_failed"
            })
        })?;
        let status = response.status();
        // Read (a bounded amount of) the answer so that the connection can serve the next record.
        let _ = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::new(format!("http_{}", status.as_u16())))
        }
    }
}

impl DeliverySink for HttpSink {
    fn deliver<'a>(
        &'a self,
        record: &'a DeliveryRecord,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.post(record)).await {
                Ok(result) => result,
                Err(_) => Err(DeliveryError::new("timeout")),
            }
        })
    }

    fn kind(&self) -> &'static str {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1",
            "127.255.0.9",
            "localhost",
            "LOCALHOST",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "0.0.0.0",
            "[::]",
            "example.com",
            "localhost.example.com",
            "::1x",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
