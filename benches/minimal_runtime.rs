//! The floor of a Lambda invocation, for BENCHMARKS.md only (never the product's runtime): a
//! single-threaded Runtime API loop on one blocking keep-alive HTTP/1.1 connection, one `write`
//! per request, no JSON parsing, answering every event with `{"statusCode":200}`.
//! `lambda_harness --cpu` measures it exactly as it measures the router.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Reads one response; returns its `lambda-runtime-aws-request-id`, if any (the body is discarded).
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let (mut id, mut length, mut line) = (None, 0usize, String::new());
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "lambda-runtime-aws-request-id" => id = Some(v.trim().to_owned()),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    std::io::copy(&mut r.by_ref().take(length as u64), &mut std::io::sink())?;
    Ok(id)
}

fn main() -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    let stream = TcpStream::connect(&api)?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let next = format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n");
    let body = r#"{"statusCode":200}"#;
    loop {
        writer.write_all(next.as_bytes())?;
        let Some(id) = read_response(&mut reader)? else {
            return Err(std::io::Error::other("no request id"));
        };
        let post = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(post.as_bytes())?;
        read_response(&mut reader)?;
    }
}
