//! Runs any [`Plan`]: one socket, two sockets sharing a call token, or the voice webhook replayed.

use std::time::{Duration, Instant};

use super::attacks::{Plan, TokenReuse, WebhookReplay};
use super::client::{self, SimError, SimReport};
use super::webhook_post::{call_webhook_signed, WebhookAnswer};
use super::Identity;

/// What a plan showed.
#[derive(Debug, Clone)]
pub enum Observed {
    /// One socket.
    Socket(SimReport),
    /// `reuse-call-token`: the token's first (rightful) connection, and the second.
    TokenReuse {
        /// The first connection.
        first: SimReport,
        /// The second connection, presenting the first one's token.
        second: SimReport,
    },
    /// `replay-webhook`: the answers to the request and to its replay.
    WebhookReplay(ReplayReport),
}

/// The two answers of `replay-webhook`. Holds the tokens (secrets): never print it.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// The answer to the request (or why there was none).
    pub first: Result<WebhookAnswer, String>,
    /// The answer to the replay (not sent when the request failed).
    pub replay: Option<Result<WebhookAnswer, String>>,
    /// From the request to the replay's answer.
    pub elapsed: Duration,
}

/// What two answers say about the webhook's idempotency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// Both answered TwiML with one and the same call token.
    SameToken,
    /// Both answered TwiML with a token, and the tokens differ.
    NewToken,
    /// An answer was not TwiML with a token: the status (0 when there was no answer) and what it
    /// was.
    NoToken(u16, String),
}

impl ReplayReport {
    /// Compares the two answers. The tokens themselves never leave this function.
    pub fn verdict(&self) -> ReplayVerdict {
        fn token(a: &Result<WebhookAnswer, String>) -> Result<&str, (u16, String)> {
            match a {
                Ok(a) => match &a.token {
                    Some(t) => Ok(t.expose()),
                    None if a.stream_url.is_some() => Err((
                        a.status,
                        format!("HTTP {}, TwiML without a token", a.status),
                    )),
                    None => Err((a.status, format!("HTTP {}, no TwiML", a.status))),
                },
                Err(e) => Err((0, e.clone())),
            }
        }
        let first = match token(&self.first) {
            Ok(t) => t,
            Err((status, what)) => return ReplayVerdict::NoToken(status, what),
        };
        let replay = match self.replay.as_ref().map(token) {
            Some(Ok(t)) => t,
            Some(Err((status, what))) => {
                return ReplayVerdict::NoToken(status, format!("replay: {what}"))
            }
            None => return ReplayVerdict::NoToken(0, "replay not sent".into()),
        };
        // Both values are the caller's own answers: no timing to protect.
        if first == replay {
            ReplayVerdict::SameToken
        } else {
            ReplayVerdict::NewToken
        }
    }
}

/// Runs `plan` as `me`.
pub async fn play(plan: Plan<'_>, me: &Identity) -> Result<Observed, SimError> {
    match plan {
        Plan::Socket(handshake, script) => {
            Ok(Observed::Socket(client::run(&handshake, script).await?))
        }
        Plan::TokenReuse(plan) => token_reuse(plan).await,
        Plan::WebhookReplay(plan) => Ok(Observed::WebhookReplay(replay(plan, me).await)),
    }
}

async fn token_reuse(plan: TokenReuse<'_>) -> Result<Observed, SimError> {
    let TokenReuse {
        first: (first_handshake, first_script),
        second: (second_handshake, second_script),
        reached,
        release,
        after,
    } = plan;
    let first = client::run(&first_handshake, first_script);
    let second = async {
        // Whether or not the first got as far as its start (a refused first connection drops the
        // signal), the second goes: the table then shows both.
        let _ = reached.await;
        tokio::time::sleep(after).await;
        let report = client::run(&second_handshake, second_script).await;
        let _ = release.send(());
        report
    };
    let (first, second) = tokio::join!(first, second);
    Ok(Observed::TokenReuse {
        first: first?,
        second: second?,
    })
}

async fn replay(plan: WebhookReplay, me: &Identity) -> ReplayReport {
    let started = Instant::now();
    let first = call_webhook_signed(&plan.url, &plan.signed_url, me, &plan.call).await;
    let replay = match &first {
        Ok(_) => {
            tokio::time::sleep(plan.after).await;
            Some(call_webhook_signed(&plan.url, &plan.signed_url, me, &plan.call).await)
        }
        Err(_) => None,
    };
    ReplayReport {
        first,
        replay,
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;

    fn answer(status: u16, token: Option<&str>) -> Result<WebhookAnswer, String> {
        Ok(WebhookAnswer {
            status,
            stream_url: (status == 200).then(|| "wss://h/dev".to_owned()),
            token: token.map(|t| Secret::new(t.to_owned())),
            relay_url: None,
        })
    }

    fn report(
        first: Result<WebhookAnswer, String>,
        replay: Option<Result<WebhookAnswer, String>>,
    ) -> ReplayReport {
        ReplayReport {
            first,
            replay,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn replay_verdicts() {
        let same = report(
            answer(200, Some("v1.1.a")),
            Some(answer(200, Some("v1.1.a"))),
        );
        assert_eq!(same.verdict(), ReplayVerdict::SameToken);
        let new = report(
            answer(200, Some("v1.1.a")),
            Some(answer(200, Some("v1.2.b"))),
        );
        assert_eq!(new.verdict(), ReplayVerdict::NewToken);
        let refused = report(answer(403, None), None);
        assert_eq!(
            refused.verdict(),
            ReplayVerdict::NoToken(403, "HTTP 403, no TwiML".into())
        );
        let replay_refused = report(answer(200, Some("v1.1.a")), Some(answer(503, None)));
        assert_eq!(
            replay_refused.verdict(),
            ReplayVerdict::NoToken(503, "replay: HTTP 503, no TwiML".into())
        );
        let tokenless = report(answer(200, None), Some(answer(200, None)));
        assert_eq!(
            tokenless.verdict(),
            ReplayVerdict::NoToken(200, "HTTP 200, TwiML without a token".into())
        );
        let unreachable = report(Err("cannot reach the voice webhook: refused".into()), None);
        assert_eq!(
            unreachable.verdict(),
            ReplayVerdict::NoToken(0, "cannot reach the voice webhook: refused".into())
        );
    }
}
