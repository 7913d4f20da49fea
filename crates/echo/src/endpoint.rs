//! Where the echo may answer: its own API's `@connections` endpoint, configured, never a record's
//! `managementEndpoint` taken on trust.
//!
//! A record names the endpoint of the connection it came from, but anyone who can put a record on
//! the stream can write any URL there. The echo's role holds `execute-api:ManageConnections`, and
//! the SDK signs every post with it: posting wherever a record says would let such a writer make
//! the echo post to a host of their choosing, or play audio into another call. So the `echo`
//! Lambda is configured with the one endpoint it answers ([`AllowedEndpoint`], from
//! [`VARIABLE`]), refuses to start without it, and skips every record that names another
//! (`endpoint_not_allowed`).
//!
//! The rule for plain HTTP is shared with `stream-gate echo` (the local tool, which answers only
//! the local gateway): `http://` only on loopback ([`is_loopback_endpoint`]).

use std::net::IpAddr;

use stream_gate_answer::ConfigError;
use url::{Host, Url};

/// The environment variable that names the endpoint the `echo` Lambda answers through.
pub const VARIABLE: &str = "STREAM_GATE_MANAGEMENT_ENDPOINT";

/// Whether `host` is the loopback interface: `localhost`, `127.0.0.0/8` or `[::1]`.
pub fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Whether `endpoint` is an `http(s)://` URL on loopback, without user info: all that
/// `stream-gate echo` answers (it signs with the local gateway's dummy credentials).
pub fn is_loopback_endpoint(endpoint: &str) -> bool {
    Url::parse(endpoint).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none()
            && url.host().is_some_and(|h| is_loopback_host(&h))
    })
}

/// `value` without one trailing `/`: the only difference the endpoint comparison forgives.
fn without_trailing_slash(value: &str) -> &str {
    value.strip_suffix('/').unwrap_or(value)
}

/// The one `@connections` endpoint the `echo` Lambda answers through, e.g.
/// `https://abc123.execute-api.us-east-1.amazonaws.com/prod`: what the gate writes into every
/// record of that API's stage. Holds it without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedEndpoint(String);

impl AllowedEndpoint {
    /// Reads [`VARIABLE`] from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads [`VARIABLE`] through `get`. Unset or blank is an error: there is no default to fall
    /// back on (a record's own value is exactly what must not be trusted).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match get(VARIABLE).filter(|v| !v.trim().is_empty()) {
            Some(v) => Self::parse(&v),
            None => Err(problem(
                "required: the @connections endpoint this echo answers through, \
                 https://{api-id}.execute-api.{region}.{dns-suffix}/{stage}",
            )),
        }
    }

    /// Checks a configured endpoint: `https://` (or `http://` on loopback, for local runs and
    /// tests), a host and a stage, no user info, query or fragment, written exactly as the gate
    /// writes it (so that a record of this API compares equal). The error never quotes the value.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let url = Url::parse(value).map_err(|_| problem("not a URL"))?;
        let host = url.host().ok_or_else(|| problem("has no host"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&host) => {}
            _ => return Err(problem("must be https:// (http:// only on loopback)")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(problem("must not carry user info"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(problem("must not have a query or a fragment"));
        }
        let path = without_trailing_slash(url.path());
        if path.is_empty() || path.ends_with('/') || path.contains("//") {
            return Err(problem("must end with the stage: https://{host}/{stage}"));
        }
        // Records are compared as text: a value the URL parser would rewrite (upper-case host,
        // default port, dot segments, escapes, spaces) would never match the gate's records.
        let canonical = without_trailing_slash(url.as_str());
        if canonical != without_trailing_slash(value) {
            return Err(problem(
                "not written as the gate writes it (lower-case host, no default port, no dot segments)",
            ));
        }
        Ok(Self(canonical.to_owned()))
    }

    /// The endpoint, without a trailing `/`: where every reply is posted.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a record's `managementEndpoint` is this endpoint: equal as text once one trailing
    /// `/` is dropped from each. Nothing else is forgiven: no case folding, no prefix match.
    pub fn allows(&self, record_endpoint: &str) -> bool {
        without_trailing_slash(record_endpoint) == self.0
    }
}

fn problem(text: &str) -> ConfigError {
    ConfigError {
        variable: VARIABLE,
        problem: text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/prod";

    fn ours() -> AllowedEndpoint {
        AllowedEndpoint::parse(OURS).expect("configured")
    }

    #[test]
    fn allows_only_its_own_endpoint_with_or_without_a_trailing_slash() {
        let allowed = ours();
        assert!(allowed.allows(OURS));
        assert!(allowed.allows(&format!("{OURS}/")));
        for other in [
            // Another API, another region, another partition.
            "https://xyz789.execute-api.us-east-1.amazonaws.com/prod",
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
            "https://abc123.execute-api.us-east-1.amazonaws.com.cn/prod",
            // Plain HTTP to the same host.
            "http://abc123.execute-api.us-east-1.amazonaws.com/prod",
            // A lookalike host, and ours as user info of another.
            "https://abc123.execute-api.us-east-1.amazonaws.com.evil.example/prod",
            "https://abc123.execute-api.us-east-1.amazonaws.com@evil.example/prod",
            // Another stage, a longer stage, a path below ours, the stage's case.
            "https://abc123.execute-api.us-east-1.amazonaws.com/dev",
            "https://abc123.execute-api.us-east-1.amazonaws.com/production",
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/x",
            "https://abc123.execute-api.us-east-1.amazonaws.com/PROD",
            "https://ABC123.execute-api.us-east-1.amazonaws.com/prod",
            // Two slashes, a port, a query, a prefix of ours, nothing.
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod//",
            "https://abc123.execute-api.us-east-1.amazonaws.com:443/prod",
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod?x=1",
            "https://abc123.execute-api.us-east-1.amazonaws.com/pro",
            "https://abc123.execute-api.us-east-1.amazonaws.com",
            "",
            "/",
        ] {
            assert!(!allowed.allows(other), "{other}");
        }
        assert_eq!(allowed.as_str(), OURS);
    }

    #[test]
    fn a_configured_trailing_slash_is_dropped() {
        let allowed = AllowedEndpoint::parse(&format!("{OURS}/")).expect("configured");
        assert_eq!(allowed.as_str(), OURS);
        assert!(allowed.allows(OURS) && allowed.allows(&format!("{OURS}/")));
    }

    #[test]
    fn accepts_https_anywhere_and_http_only_on_loopback() {
        for ok in [
            OURS,
            "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod",
            "https://ws.example.com/v1",
            "http://127.0.0.1:9/prod",
            "http://127.0.0.2:9000/prod",
            "http://[::1]:9/prod",
            "http://localhost:9/prod",
        ] {
            assert_eq!(
                AllowedEndpoint::parse(ok).map(|a| a.as_str().to_owned()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_answer_through_and_names_the_variable() {
        for (bad, why) in [
            (
                "abc123.execute-api.us-east-1.amazonaws.com/prod",
                "not a URL",
            ),
            (
                "http://abc123.execute-api.us-east-1.amazonaws.com/prod",
                "https://",
            ),
            ("http://10.0.0.1/prod", "https://"),
            ("http://169.254.169.254/prod", "https://"),
            ("ftp://127.0.0.1/prod", "https://"),
            ("file:///prod", "no host"),
            ("https://user@abc123.example.com/prod", "user info"),
            ("https://u:p@abc123.example.com/prod", "user info"),
            ("https://abc123.example.com/prod?stage=dev", "query"),
            ("https://abc123.example.com/prod#x", "fragment"),
            ("https://abc123.example.com", "stage"),
            ("https://abc123.example.com/", "stage"),
            ("https://abc123.example.com/prod//", "stage"),
            ("https://abc123.example.com//prod", "stage"),
            ("https://ABC123.example.com/prod", "written as the gate"),
            ("https://abc123.example.com:443/prod", "written as the gate"),
            (
                "https://abc123.example.com/a/../prod",
                "written as the gate",
            ),
            (" https://abc123.example.com/prod", "written as the gate"),
            ("https://abc123.example.com/pr od", "written as the gate"),
        ] {
            let e = AllowedEndpoint::parse(bad).expect_err(bad);
            assert_eq!(e.variable, VARIABLE);
            assert!(e.problem.contains(why), "{bad}: {}", e.problem);
            assert!(!e.to_string().contains("abc123"), "never the value: {e}");
        }
    }

    #[test]
    fn unset_or_blank_refuses_to_start() {
        for value in [None, Some(""), Some("  ")] {
            let e = AllowedEndpoint::from_lookup(|_| value.map(str::to_owned)).expect_err("none");
            assert_eq!(e.variable, VARIABLE);
            assert!(e
                .to_string()
                .starts_with("STREAM_GATE_MANAGEMENT_ENDPOINT: required"));
        }
        let got = AllowedEndpoint::from_lookup(|k| (k == VARIABLE).then(|| OURS.to_owned()));
        assert_eq!(got, Ok(ours()));
    }

    #[test]
    fn loopback_is_localhost_127_slash_8_and_ipv6_one() {
        for ok in [
            "http://127.0.0.1:8080/dev",
            "http://localhost:1/dev",
            "http://LOCALHOST:1/dev",
            "http://[::1]:9/dev",
            "https://127.0.0.2/x",
        ] {
            assert!(is_loopback_endpoint(ok), "{ok}");
        }
        for bad in [
            "https://abc.execute-api.us-east-1.amazonaws.com/prod",
            "http://10.0.0.1/dev",
            "http://[::2]/dev",
            "http://user@127.0.0.1/dev",
            "http://:p@127.0.0.1/dev",
            "http://127.0.0.1.evil.example/dev",
            "http://localhost.evil.example/dev",
            "ws://127.0.0.1/dev",
            "file:///etc/passwd",
            "",
            "127.0.0.1:8080",
        ] {
            assert!(!is_loopback_endpoint(bad), "{bad}");
        }
    }
}
