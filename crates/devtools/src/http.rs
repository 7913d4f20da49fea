//! The one HTTP request the tools make besides WebSockets: `verify`'s signed voice webhook POST.
//! A minimal HTTP/1.1 client (one request per connection, `Connection: close`) over plain TCP or
//! [`crate::tls`], so that no HTTP client library's TLS features leak into the rest of the
//! workspace.

use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use url::{Host, Url};

/// Headers read at most.
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
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(format!("header {k:?} is not a header"));
        }
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);

    let tcp = TcpStream::connect(format!("{host_text}:{port}"))
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let limit = MAX_HEAD_BYTES + max_body;
    let raw = match parsed.scheme() {
        "http" => send(tcp, request.as_bytes(), limit).await?,
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
            send(tls, request.as_bytes(), limit).await?
        }
        other => return Err(format!("unsupported scheme {other}")),
    };
    parse(&raw, max_body)
}

/// Writes the request and reads the answer until the server closes (or `limit` bytes).
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    limit: usize,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let _ = stream.flush().await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() >= limit {
                    out.truncate(limit);
                    break;
                }
            }
            // A server that closes without TLS close_notify: what arrived is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => break,
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    Ok(out)
}

/// Status line, headers, and the body (de-chunked when sent chunked).
fn parse(raw: &[u8], max_body: usize) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the answer is not HTTP")?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let rest = &raw[end + 4..];
    let mut body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    body.truncate(max_body);
    Ok(Response { status, body })
}

/// Joins the chunks of a chunked body (stops at the last chunk or at anything malformed).
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        let start = eol + 2;
        let Some(chunk) = rest.get(start..start.saturating_add(size)) else {
            out.extend_from_slice(rest.get(start..).unwrap_or_default());
            break;
        };
        if size == 0 {
            break;
        }
        out.extend_from_slice(chunk);
        rest = rest.get(start + size + 2..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_plain_and_chunked() {
        let plain = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno";
        assert_eq!(
            parse(plain, 100),
            Ok(Response {
                status: 403,
                body: b"no".to_vec()
            })
        );
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n4\r\n<Res\r\n6;x=y\r\nponse>\r\n0\r\n\r\n";
        assert_eq!(
            parse(chunked, 100).map(|r| r.body),
            Ok(b"<Response>".to_vec())
        );
        assert_eq!(parse(chunked, 3).map(|r| r.body), Ok(b"<Re".to_vec()));
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", 10).is_err());
        assert!(parse(b"HTTP/1.1 200", 10).is_err());
        // Truncated or malformed chunks never panic.
        assert_eq!(dechunk(b"ff\r\nabc"), b"abc".to_vec());
        assert_eq!(dechunk(b"zz\r\nabc"), Vec::<u8>::new());
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
            request.starts_with(&format!(
                "POST /voice?x=1 HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 7\r\n"
            )),
            "{request}"
        );
        assert!(request.contains("Content-Type: application/x-www-form-urlencoded\r\n"));
        assert!(post("ftp://h/x", &[], "", Duration::from_secs(1), 1)
            .await
            .is_err());
    }
}
