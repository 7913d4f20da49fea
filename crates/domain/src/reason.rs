//! Reason codes: the one vocabulary that decisions, logs and metrics share.
//!
//! Every rejection carries one of these; `code()` is the stable snake_case string written to the
//! `reason` field of the decision log line (and usable as a metric dimension).

use std::fmt;

macro_rules! reason_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $code:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every variant, for documentation and exhaustive tests.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable code used in logs and metrics.
            pub const fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

reason_enum!(
    /// Why a `$connect` handshake is denied.
    DenyReason {
        /// No valid credentials document is loaded: everything is denied.
        CredentialsUnavailable => "credentials_unavailable",
        /// The event lacks what is needed to know the signed URL (domain name or stage).
        RequestIncomplete => "request_incomplete",
        /// Signature required but no `X-Twilio-Signature` header.
        SignatureMissing => "signature_missing",
        /// The header is not the base64 of a 20-byte HMAC-SHA1 (or, under a shared key, of a
        /// 20-byte HMAC-SHA1 or 32-byte HMAC-SHA256), or it is repeated.
        SignatureMalformed => "signature_malformed",
        /// Well-formed signature that no configured auth token (or the named shared key, with the
        /// named algorithm) produces for the URL.
        SignatureMismatch => "signature_mismatch",
        /// `X-Twilio-Webhooks-Signature-Settings` names a shared key id that no account configures.
        SharedKeyUnknown => "shared_key_unknown",
        /// The settings header has a `key=` but no `algorithm=`.
        SharedKeyAlgorithmMissing => "shared_key_algorithm_missing",
        /// The settings header's algorithm is neither `HMAC_SHA256` nor `HMAC_SHA1`.
        SharedKeyAlgorithmUnsupported => "shared_key_algorithm_unsupported",
        /// The settings header is not `key=<id>,algorithm=<alg>` (empty, too long, an unknown or
        /// repeated parameter, no `key=`), or the header itself is repeated.
        SharedKeySettingsMalformed => "shared_key_settings_malformed",
        /// Stream token required but no `token` query parameter.
        StreamTokenMissing => "stream_token_missing",
        /// `token` is repeated, or shorter or longer than a stream token can be (32 to 512 characters).
        StreamTokenMalformed => "stream_token_malformed",
        /// `token` matches no configured stream token.
        StreamTokenUnknown => "stream_token_unknown",
        /// Signature and stream token are both valid but name different accounts.
        AccountMismatch => "account_mismatch",
        /// The handshake is of a protocol this stack does not admit (`STREAM_GATE_PROTOCOLS`).
        ProtocolNotEnabled => "protocol_not_enabled",
        /// The query has `callSid` without `callToken`, or the reverse.
        RelayQueryIncomplete => "relay_query_incomplete",
        /// `callSid` or `callToken` appears more than once in the query.
        RelayQueryRepeated => "relay_query_repeated",
        /// A ConversationRelay query holds a parameter besides `callSid` and `callToken`.
        RelayQueryUnexpected => "relay_query_unexpected",
        /// The query's `callSid` is not `CA` and 32 lower-case hex digits.
        RelayCallSidInvalid => "relay_call_sid_invalid",
        /// The query's `callToken` is not of the `v1.<exp>.<mac>` shape.
        CallTokenMalformed => "call_token_malformed",
        /// The query's `callToken` was not minted for the signing account and this `callSid`.
        CallTokenInvalid => "call_token_invalid",
        /// The query's `callToken` is genuine but expired.
        CallTokenExpired => "call_token_expired",
        /// A call token was presented but the credentials document has no call-token key.
        CallTokenKeysMissing => "call_token_keys_missing",
    }
);

reason_enum!(
    /// Why a connection is closed after a frame (or why `$connect` is refused by the router).
    CloseReason {
        /// `$connect`/`$default` reached the router without a valid authorizer context.
        NoAuthorizerContext => "no_authorizer_context",
        /// No valid credentials document is loaded, so a `start` cannot be checked.
        CredentialsUnavailable => "credentials_unavailable",
        /// Frame larger than the 64 KiB the gate reads.
        FrameTooLarge => "frame_too_large",
        /// Binary (or base64-encoded) frame; Twilio sends only text.
        FrameNotText => "frame_not_text",
        /// Not JSON (includes invalid UTF-8 and duplicate keys at the top level).
        FrameNotJson => "frame_not_json",
        /// Arrays or objects nested deeper than 16 levels (Twilio's frames nest three).
        FrameTooDeep => "frame_too_deep",
        /// JSON, but not an object.
        FrameNotObject => "frame_not_object",
        /// No string `event` member.
        EventMissing => "event_missing",
        /// `sequenceNumber` missing or not a string of digits.
        SequenceNumberInvalid => "sequence_number_invalid",
        /// Top-level `streamSid` missing or not a stream SID.
        StreamSidInvalid => "stream_sid_invalid",
        /// `connected` without its `protocol`/`version` strings.
        ConnectedMalformed => "connected_malformed",
        /// `start` body missing or of the wrong shape.
        StartMalformed => "start_malformed",
        /// A SID inside `start` is not well formed.
        StartSidInvalid => "start_sid_invalid",
        /// `start.accountSid` differs from the account the handshake proved.
        StartAccountMismatch => "start_account_mismatch",
        /// Top-level `streamSid` differs from `start.streamSid`.
        StartStreamSidMismatch => "start_stream_sid_mismatch",
        /// Media format other than audio/x-mulaw, 8000 Hz, 1 channel.
        StartMediaFormat => "start_media_format",
        /// No `customParameters.token` while call tokens are required.
        CallTokenMissing => "call_token_missing",
        /// The call token is not `v1.<exp>.<mac>`.
        CallTokenMalformed => "call_token_malformed",
        /// The MAC matches no configured call-token key for this account and call.
        CallTokenInvalid => "call_token_invalid",
        /// A genuine call token past its expiry (plus 30 s of skew).
        CallTokenExpired => "call_token_expired",
        /// Call tokens are required but the credentials document has no `callTokenKeys`.
        CallTokenKeysMissing => "call_token_keys_missing",
        /// `media` body missing or of the wrong shape.
        MediaMalformed => "media_malformed",
        /// `media.track` is not `inbound` or `outbound`.
        MediaTrackInvalid => "media_track_invalid",
        /// `media.chunk` or `media.timestamp` is not a string of digits.
        MediaCounterInvalid => "media_counter_invalid",
        /// `media.payload` is not canonical base64.
        MediaPayloadInvalid => "media_payload_invalid",
        /// `media.payload` decodes to more than 32 KiB.
        MediaPayloadTooLarge => "media_payload_too_large",
        /// `stop` body missing or of the wrong shape.
        StopMalformed => "stop_malformed",
        /// `stop.accountSid` differs from the account the handshake proved.
        StopAccountMismatch => "stop_account_mismatch",
        /// `mark` body missing or of the wrong shape.
        MarkMalformed => "mark_malformed",
        /// `dtmf` body (Media Streams) or message (ConversationRelay) missing or of the wrong
        /// shape.
        DtmfMalformed => "dtmf_malformed",
        /// A frame of the other Twilio protocol: a ConversationRelay message (`type`, no `event`)
        /// on a Media Streams connection, or a Media Streams frame (`event`) on a ConversationRelay
        /// one.
        ProtocolMismatch => "protocol_mismatch",
        /// ConversationRelay: no string `type` member.
        TypeMissing => "type_missing",
        /// ConversationRelay: `setup` without its SIDs as strings, or an optional field of the
        /// wrong type (`customParameters` not an object of strings included).
        SetupMalformed => "setup_malformed",
        /// ConversationRelay: a SID in `setup` is not well formed (`sessionId` `VX`, `accountSid`
        /// `AC`, `callSid` and a non-empty `parentCallSid` `CA`, each and 32 hex digits).
        SetupSidInvalid => "setup_sid_invalid",
        /// ConversationRelay: `setup.accountSid` differs from the account the handshake proved.
        SetupAccountMismatch => "setup_account_mismatch",
        /// ConversationRelay: `setup.callSid` differs from the call the handshake's token named.
        SetupCallSidMismatch => "setup_call_sid_mismatch",
        /// ConversationRelay: `prompt` without a string `voicePrompt`, or `lang`/`last` of the
        /// wrong type.
        PromptMalformed => "prompt_malformed",
        /// ConversationRelay: `interrupt` without a string `utteranceUntilInterrupt` and a
        /// `durationUntilInterruptMs` that is a whole number (or a string of digits).
        InterruptMalformed => "interrupt_malformed",
        /// ConversationRelay: `error` without a string `description`.
        RelayErrorMalformed => "relay_error_malformed",
        /// Call state: a second `start` on a connection that already has one.
        StartRepeated => "start_repeated",
        /// Call state: `media`/`mark`/`dtmf`/`stop` with no recorded start, after the start grace.
        MediaBeforeStart => "media_before_start",
        /// Call state: any other frame (`connected`, an unknown event) on a connection with no
        /// recorded start, after the start grace: a socket that never verifies is closed.
        StartMissing => "start_missing",
        /// Call state, ConversationRelay: any message on a connection with no recorded `setup`,
        /// after the start grace (`info` and unknown types included).
        SetupMissing => "setup_missing",
        /// Call state, ConversationRelay: a second `setup` on a connection that already has one.
        SetupRepeated => "setup_repeated",
        /// Call state: a `stop` naming another account or call than the recorded start.
        CallSidMismatch => "call_sid_mismatch",
        /// Call state: a frame's `streamSid` differs from the recorded start's.
        StreamSidMismatch => "stream_sid_mismatch",
        /// Call state: the call token already opened another connection.
        CallTokenReused => "call_token_reused",
        /// Call state: the store could not record a `start` (fail closed).
        CallStateUnavailable => "call_state_unavailable",
    }
);

reason_enum!(
    /// Why a voice-webhook request was refused (the log's reason code). The shared-key codes are
    /// the same strings as [`DenyReason`]'s: one vocabulary for one failure on either surface.
    WebhookRefusal {
        /// Not a POST.
        MethodNotAllowed => "method_not_allowed",
        /// A POST to `…/relay` or `…/relay/ended` on a stack whose `STREAM_GATE_PROTOCOLS` does not
        /// list `conversation-relay`.
        RelayNotEnabled => "webhook_relay_not_enabled",
        /// Body larger than [`crate::webhook_decision::MAX_BODY_BYTES`].
        BodyTooLarge => "webhook_body_too_large",
        /// No `X-Twilio-Signature` header.
        SignatureMissing => "webhook_signature_missing",
        /// `AccountSid` absent, malformed or not configured.
        UnknownAccount => "webhook_unknown_account",
        /// `CallSid` absent or malformed.
        CallSidInvalid => "webhook_call_sid_invalid",
        /// The signature does not verify (under a shared key: with that key and algorithm, or the
        /// key belongs to another account than the posted `AccountSid`).
        SignatureMismatch => "webhook_signature_mismatch",
        /// No credentials document, or it has no call-token key.
        CredentialsUnavailable => "credentials_unavailable",
        /// Call state is on and the store could not record or read the call's token (fail closed).
        CallStateUnavailable => "call_state_unavailable",
        /// `X-Twilio-Webhooks-Signature-Settings` names a shared key id that no account configures.
        SharedKeyUnknown => "shared_key_unknown",
        /// The settings header has a `key=` but no `algorithm=`.
        SharedKeyAlgorithmMissing => "shared_key_algorithm_missing",
        /// The settings header's algorithm is neither `HMAC_SHA256` nor `HMAC_SHA1`.
        SharedKeyAlgorithmUnsupported => "shared_key_algorithm_unsupported",
        /// The settings header is malformed or repeated.
        SharedKeySettingsMalformed => "shared_key_settings_malformed",
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for code in DenyReason::ALL.iter().map(|r| r.code()) {
            assert!(seen.insert(("deny", code)), "{code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        for code in CloseReason::ALL.iter().map(|r| r.code()) {
            assert!(seen.insert(("close", code)), "{code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
        for code in WebhookRefusal::ALL.iter().map(|r| r.code()) {
            assert!(seen.insert(("webhook", code)), "{code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
    }

    #[test]
    fn shared_key_codes_are_the_same_on_both_surfaces() {
        let pairs = [
            (
                DenyReason::SharedKeyUnknown,
                WebhookRefusal::SharedKeyUnknown,
            ),
            (
                DenyReason::SharedKeyAlgorithmMissing,
                WebhookRefusal::SharedKeyAlgorithmMissing,
            ),
            (
                DenyReason::SharedKeyAlgorithmUnsupported,
                WebhookRefusal::SharedKeyAlgorithmUnsupported,
            ),
            (
                DenyReason::SharedKeySettingsMalformed,
                WebhookRefusal::SharedKeySettingsMalformed,
            ),
        ];
        for (deny, refusal) in pairs {
            assert_eq!(deny.code(), refusal.code());
            assert!(deny.code().starts_with("shared_key_"));
        }
        let shared = |code: &&str| code.starts_with("shared_key_");
        assert_eq!(
            DenyReason::ALL
                .iter()
                .map(|r| r.code())
                .filter(shared)
                .count(),
            pairs.len()
        );
        assert_eq!(
            WebhookRefusal::ALL
                .iter()
                .map(|r| r.code())
                .filter(shared)
                .count(),
            pairs.len()
        );
    }
}
