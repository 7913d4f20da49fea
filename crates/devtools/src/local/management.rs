//! The Management API (`@connections`) of the local gateway, on the gateway's own port.
//!
//! Requests must carry a SigV4 `Authorization` header (the SDK signs them); the signature is not
//! verified: this API is local only and listens on loopback only.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::oneshot;

use super::{Command, LiveConnection, Shared};

fn json_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn gone() -> Response {
    (
        StatusCode::GONE,
        [
            ("content-type", "application/json"),
            ("x-amzn-errortype", "GoneException"),
        ],
        json!({ "message": null }).to_string(),
    )
        .into_response()
}

/// Checks stage and signature presence, and finds the connection.
fn lookup(
    shared: &Shared,
    stage: &str,
    headers: &HeaderMap,
    id: &str,
) -> Result<LiveConnection, Box<Response>> {
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 "));
    if !signed {
        shared.management.unsigned.fetch_add(1, Ordering::Relaxed);
        return Err(Box::new(json_error(
            StatusCode::FORBIDDEN,
            "Missing Authentication Token",
        )));
    }
    if stage != shared.stage {
        return Err(Box::new(json_error(StatusCode::NOT_FOUND, "Not Found")));
    }
    shared
        .live
        .lock()
        .ok()
        .and_then(|l| l.get(id).cloned())
        .ok_or_else(|| Box::new(gone()))
}

/// `DELETE /{stage}/@connections/{id}`: closes the socket.
pub async fn delete_connection(
    State(shared): State<Arc<Shared>>,
    Path((stage, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    shared.management.deletes.fetch_add(1, Ordering::Relaxed);
    match lookup(&shared, &stage, &headers, &id) {
        Ok(c) if c.commands.send(Command::Close).is_ok() => StatusCode::NO_CONTENT.into_response(),
        Ok(_) => gone(),
        Err(r) => *r,
    }
}

/// `POST /{stage}/@connections/{id}`: writes the body as one text frame.
pub async fn post_to_connection(
    State(shared): State<Arc<Shared>>,
    Path((stage, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.management.posts.fetch_add(1, Ordering::Relaxed);
    let conn = match lookup(&shared, &stage, &headers, &id) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if body.len() > 128 * 1024 {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "Message too long");
    }
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return json_error(StatusCode::BAD_REQUEST, "text frames only");
    };
    let (tx, rx) = oneshot::channel();
    if conn.commands.send(Command::Send(text, tx)).is_err() {
        return gone();
    }
    match rx.await {
        Ok(true) => StatusCode::OK.into_response(),
        _ => gone(),
    }
}

/// `GET /{stage}/@connections/{id}`: connection information.
pub async fn get_connection(
    State(shared): State<Arc<Shared>>,
    Path((stage, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    shared.management.gets.fetch_add(1, Ordering::Relaxed);
    match lookup(&shared, &stage, &headers, &id) {
        Ok(c) => {
            let at = iso8601(c.connected_at);
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                json!({"connectedAt": at, "lastActiveAt": at,
                       "identity": {"sourceIp": c.source_ip}})
                .to_string(),
            )
                .into_response()
        }
        Err(r) => *r,
    }
}

/// Unix ms as `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil-from-days, no calendar crate needed).
fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_known_instant() {
        assert_eq!(
            super::iso8601(1_795_881_600_123),
            "2026-11-28T16:00:00.123Z"
        );
    }
}
