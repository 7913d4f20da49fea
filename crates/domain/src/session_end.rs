//! The end of a ConversationRelay session: what Twilio posts to the `<Connect action>` URL
//! (`…/relay/ended`) once the session is over, as the voice webhook verified it
//! (docs/conversation-relay.md, "The session's end").
//!
//! Twilio sends the call's usual parameters and the session's own: `SessionId`, `SessionStatus`
//! (`ended`, `completed` or `failed`), `SessionDuration` (seconds), `HandoffData` (the
//! application's `end.handoffData`, as it sent it) and, when the session failed, `ErrorCode` and
//! `ErrorMessage`. The record keeps exactly those six, as posted (the signature covered them).

use super::sid::{AccountSid, CallSid, SessionSid};
use super::webhook_decision::WebhookForm;

/// The session's fields a `session_end` record carries under `twilio`, by Twilio's names.
pub const SESSION_END_FIELDS: [&str; 6] = [
    "SessionId",
    "SessionStatus",
    "SessionDuration",
    "HandoffData",
    "ErrorCode",
    "ErrorMessage",
];

/// A signed `…/relay/ended` callback: the account and call the signature proved, the session when
/// `SessionId` is a well-formed `VX` SID, and the session fields posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    account: AccountSid,
    call: CallSid,
    session: Option<SessionSid>,
    fields: Vec<(&'static str, String)>,
}

impl SessionEnd {
    /// The callback of `form`, whose signature proved `account` and `call` (the voice webhook's
    /// `verify_webhook`). The form is at most 64 KiB, so the fields are too.
    pub fn of_verified(form: &WebhookForm, account: AccountSid, call: CallSid) -> Self {
        let fields = SESSION_END_FIELDS
            .iter()
            .filter_map(|name| form.field(name).map(|v| (*name, v.to_owned())))
            .collect();
        Self {
            account,
            call,
            session: form
                .field("SessionId")
                .and_then(|s| SessionSid::parse(s).ok()),
            fields,
        }
    }

    /// The account.
    pub fn account(&self) -> &AccountSid {
        &self.account
    }

    /// The call.
    pub fn call(&self) -> &CallSid {
        &self.call
    }

    /// The session, when Twilio named a well-formed one.
    pub fn session(&self) -> Option<&SessionSid> {
        self.session.as_ref()
    }

    /// The session's fields as posted, in [`SESSION_END_FIELDS`]' order.
    pub fn fields(&self) -> &[(&'static str, String)] {
        &self.fields
    }

    /// `SessionStatus`, when it is one of Twilio's (`ended`, `completed`, `failed`), for logs.
    pub fn status(&self) -> Option<&str> {
        self.field("SessionStatus")
            .filter(|s| matches!(*s, "ended" | "completed" | "failed"))
    }

    /// A field of digits (`SessionDuration`, `ErrorCode`), when it is 1 to 12 digits, for logs.
    pub fn digits(&self, name: &str) -> Option<&str> {
        self.field(name)
            .filter(|v| (1..=12).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
    const CA: &str = "CAffeeddccbbaa99887766554433221100";

    fn end(body: &str) -> SessionEnd {
        let form = WebhookForm::parse(body.as_bytes()).expect("form");
        SessionEnd::of_verified(
            &form,
            AccountSid::parse(AC).expect("ac"),
            CallSid::parse(CA).expect("ca"),
        )
    }

    #[test]
    fn keeps_the_session_fields_in_order_and_nothing_else() {
        let e = end(
            "ErrorMessage=Network+failed&AccountSid=AC1&CallSid=CA1&From=%2B1555&HandoffData=%7B%22a%22%3A1%7D\
             &SessionStatus=failed&SessionDuration=25&SessionId=VX00112233445566778899aabbccddeeff&ErrorCode=39001",
        );
        let names: Vec<&str> = e.fields().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, SESSION_END_FIELDS);
        assert_eq!(e.fields()[3].1, r#"{"a":1}"#);
        assert_eq!(e.fields()[5].1, "Network failed");
        assert_eq!(
            e.session().map(SessionSid::as_str),
            Some("VX00112233445566778899aabbccddeeff")
        );
        assert_eq!(e.status(), Some("failed"));
        assert_eq!(e.digits("SessionDuration"), Some("25"));
        assert_eq!(e.digits("ErrorCode"), Some("39001"));
        assert_eq!(e.account().as_str(), AC);
        assert_eq!(e.call().as_str(), CA);
    }

    #[test]
    fn odd_values_stay_in_the_record_and_out_of_the_logs() {
        let e = end("SessionId=VXnope&SessionStatus=weird&SessionDuration=1e3&ErrorCode=");
        assert_eq!(e.session(), None, "a malformed SessionId names no session");
        assert_eq!(e.fields().len(), 4, "but is kept as posted");
        assert_eq!(e.status(), None);
        assert_eq!(e.digits("SessionDuration"), None);
        assert_eq!(e.digits("ErrorCode"), None);
        assert_eq!(
            end("SessionDuration=1234567890123").digits("SessionDuration"),
            None
        );
        assert_eq!(
            end("SessionDuration=123456789012").digits("SessionDuration"),
            Some("123456789012")
        );
        for s in ["ended", "completed"] {
            assert_eq!(end(&format!("SessionStatus={s}")).status(), Some(s));
        }
        let none = end("");
        assert!(none.fields().is_empty());
        assert_eq!(none.session(), None);
    }
}
