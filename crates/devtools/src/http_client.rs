//! The one HTTP request the tools make besides WebSockets: `verify`'s signed voice webhook POST
//! (and the echo's local webhook). One request per connection, over plain TCP or [`crate::tls`],
//! spoken by hyper's HTTP/1.1 client connection (already in the workspace for the AWS SDK): no
//! hand-written response parser here, and no HTTP client library whose TLS features would leak
//! into the rest of the workspace.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::{Host, Url};

/// The response head read at most (hyper's read buffer).
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body (de-chunked), at most the requested number of bytes.
    pub body: Vec<u8>,
}

/// POSTs `body` to `url` (`http://` or `https://`) with `headers`; reads at most `max_body` bytes
/// of the answer; gives up after `timeout`.
pub async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    timeout: Duration,
    max_body: usize,
) -> Result<Response, String> {
    tokio::time::timeout(timeout, exchange(url, headers, body, max_body))
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

async fn exchange(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    max_body: usize,
) -> Result<Response, String> {
    let parsed = Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    let host = parsed.host().ok_or("URL without a host")?.to_owned();
    let host_text = parsed.host_str().unwrap_or_default().to_owned();
    let port = parsed.port_or_known_default().ok_or("URL without a port")?;
    let authority = match parsed.port() {
        Some(p) => format!("{host_text}:{p}"),
        None => host_text.clone(),
    };
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let mut request = http::Request::post(target)
        .header(http::header::HOST, &authority)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CONNECTION, "close");
    for (k, v) in headers {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(format!("header {k:?} is not a header"));
        }
        request = request.header(*k, *v);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .map_err(|e| format!("invalid request: {e}"))?;

    let tcp = TcpStream::connect(format!("{host_text}:{port}"))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match parsed.scheme() {
        "http" => send(tcp, request, max_body).await,
        "https" => {
            let name = match host {
                Host::Domain(d) => ServerName::try_from(d).map_err(|e| e.to_string())?,
                Host::Ipv4(ip) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
                Host::Ipv6(ip) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
            };
            let connector = tokio_rustls::TlsConnector::from(crate::tls::client_config()?);
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {authority}: {e}"))?;
            send(tls, request, max_body).await
        }
        other => Err(format!("unsupported scheme {other}")),
    }
}

/// Sends the request on a fresh HTTP/1.1 connection and reads the status and at most `max_body`
/// bytes of the (de-chunked) body.
async fn send<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
    stream: S,
    request: http::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<Response, String> {
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .max_buf_size(MAX_HEAD_BYTES.max(8192))
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    // The connection is driven on its own task; dropping the response ends it.
    let driver = tokio::spawn(connection);
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    let status = answer.status().as_u16();
    let mut body = answer.into_body();
    let mut out = Vec::new();
    while out.len() < max_body {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            // A server that closes early (or without TLS close_notify): what arrived is the answer.
            Some(Err(_)) | None => break,
        }
    }
    out.truncate(max_body);
    driver.abort();
    Ok(Response { status, body: out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// What `post` makes of a server that answers `raw` and closes.
    async fn answered(raw: &'static [u8], max_body: usize) -> Result<Response, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"\r\n\r\nq") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(raw).await;
        });
        post(
            &format!("http://{addr}/x"),
            &[],
            "q",
            Duration::from_secs(5),
            max_body,
        )
        .await
    }

    #[tokio::test]
    async fn answers_are_read_plain_and_chunked() {
        let plain = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno";
        let no = Response {
            status: 403,
            body: b"no".to_vec(),
        };
        assert_eq!(answered(plain, 100).await, Ok(no));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n4\r\n<Res\r\n6;x=y\r\nponse>\r\n0\r\n\r\n";
        let body = |r: Result<Response, String>| r.map(|r| r.body);
        assert_eq!(
            body(answered(chunked, 100).await),
            Ok(b"<Response>".to_vec())
        );
        assert_eq!(body(answered(chunked, 3).await), Ok(b"<Re".to_vec()));
        assert!(answered(b"SSH-2.0-OpenSSH\r\n\r\n", 10).await.is_err());
        assert!(answered(b"HTTP/1.1 200", 10).await.is_err());
        // Truncated or malformed chunks never panic and never give more than arrived.
        let truncated = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc";
        let got = body(answered(truncated, 100).await).unwrap_or_default();
        assert!(b"abc".starts_with(&got), "{got:?}");
        let malformed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc";
        assert_eq!(
            body(answered(malformed, 100).await).unwrap_or_default(),
            b""
        );
    }

    #[tokio::test]
    async fn a_request_goes_out_as_http_1_1() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"a=1&b=2") {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                .await
                .expect("write");
            String::from_utf8_lossy(&got).into_owned()
        });
        let r = post(
            &format!("http://{addr}/voice?x=1"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "a=1&b=2",
            Duration::from_secs(5),
            100,
        )
        .await;
        assert_eq!(
            r,
            Ok(Response {
                status: 200,
                body: b"hello".to_vec()
            })
        );
        let request = server.await.expect("server");
        assert!(
            request.starts_with("POST /voice?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        for line in [
            format!("Host: {addr}"),
            "Content-Length: 7".into(),
            "Connection: close".into(),
            "Content-Type: application/x-www-form-urlencoded".into(),
        ] {
            assert!(request.contains(&format!("\r\n{line}\r\n")), "{request}");
        }
        assert!(post("ftp://h/x", &[], "", Duration::from_secs(1), 1)
            .await
            .is_err());
    }
}
