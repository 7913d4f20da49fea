"""Invokes every event document in events/ with `scripts/sam-local-invoke` (SAM CLI, a Docker engine,
AWS's Runtime Interface Emulator) and asserts the outcome events/README.md lists for it.

    .venv/bin/python tools/sam-local/check_events.py [extra `sam local invoke` flags]

e.g. `--invoke-image IMAGE --skip-pull-image` where no registry is reachable. An event file without an
expectation here fails the run, so a new event cannot go untested. Exit status 1 when any outcome
differs; each failure prints that invocation's answer and logs.
"""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
NOT_EVENTS = {"credentials.test.json", "sam-local-env.json"}
ACCOUNT = "ACdeadbeefdeadbeefdeadbeefdeadbeef"
STREAM_URL = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"  # events/sam-local-env.json


class Outcome:
    """One invocation: the answer (last line of stdout) and the function's JSON log lines."""

    def __init__(self, stdout, stderr):
        self.stdout, self.stderr = stdout, stderr
        lines = [l for l in stdout.splitlines() if l.strip()]
        # `answered`: the last line is JSON (the echo's answer is `null`, so answer alone cannot say).
        try:
            self.answer = json.loads(lines[-1]) if lines else None
            self.answered = bool(lines)
        except json.JSONDecodeError:
            self.answer, self.answered = None, False
        # tracing's JSON lines; SAM may glue one to its own output, so look inside each line.
        self.logs = []
        for line in stderr.splitlines():
            m = re.search(r'\{"timestamp".*\}', line)
            if m:
                try:
                    self.logs.append(json.loads(m.group(0)))
                except json.JSONDecodeError:
                    pass

    def log(self, **fields):
        """The log lines that carry all of `fields`."""
        return [l for l in self.logs if all(l.get(k) == v for k, v in fields.items())]


def function_for(name):
    if name.startswith("authorizer-"):
        return "AuthorizerFunction"
    if name.startswith(("connect", "default-")) or name == "disconnect.json":
        return "RouterFunction"
    if name.startswith("voice-webhook"):
        return "VoiceWebhookFunction"
    if name == "echo-kinesis.json":
        return "EchoFunction"
    return None


def policy(o, event, effect):
    a = o.answer or {}
    (st,) = a["policyDocument"]["Statement"]
    assert st["Effect"] == effect, f"Effect {st['Effect']}, expected {effect}"
    assert st["Resource"] == [event["methodArn"]], f"Resource {st['Resource']} is not the event's methodArn"
    return a


def allow(method, credential):
    def check(o, event):
        a = policy(o, event, "Allow")
        assert a["principalId"] == ACCOUNT, f"principalId {a['principalId']}"
        want = {"accountSid": ACCOUNT, "authMethod": method, "credential": credential, "protocol": "media-streams"}
        assert a["context"] == want, f"context {a['context']}, expected {want}"
        assert o.log(route="$connect", decision="allow", auth_method=method), "no allow log line"
        return f"Allow, {method}, {credential}"

    return check


def allow_relay(o, event):
    a = policy(o, event, "Allow")
    want = {"accountSid": ACCOUNT, "authMethod": "twilio-signature",
            "credential": "twilioAccounts[0].authTokens[0]", "protocol": "conversation-relay",
            "callSid": "CAffeeddccbbaa99887766554433221100", "callTokenExpiresAt": "4102444800"}
    assert a["context"] == want, f"context {a['context']}, expected {want}"
    assert o.log(route="$connect", decision="allow"), "no allow log line"
    return "Allow, conversation-relay, callSid and token expiry pinned"


def relay_twiml(o, _):
    status(o, 200)
    body = o.answer.get("body", "")
    want = (f'<Connect action="https://hooks.example.com/relay/ended"><ConversationRelay url="{STREAM_URL}'
            '?callSid=CA0123456789abcdef0123456789abcdef&amp;callToken=v1.')
    assert want in body, f"no {want} in {body}"
    assert 'name="token"' not in body, f"the token is a <Parameter>: {body}"
    return "200 text/xml, <Connect action><ConversationRelay url=…?callSid=…&callToken=…>"


def relay_ended(o, _):
    status(o, 200)
    body = o.answer.get("body", "")
    assert body == '<?xml version="1.0" encoding="UTF-8"?><Response/>', f"body {body}"
    # Call state off here: every signed end is delivered (to STREAM_GATE_SINK=none).
    assert o.log(event="relay_session_ended", record="delivered", session_status="completed"), "no relay_session_ended line"
    return "200 <Response/>, relay_session_ended, its session_end record delivered"


def deny(reason):
    def check(o, event):
        a = policy(o, event, "Deny")
        assert not a.get("context"), f"a Deny carries context {a['context']}"
        assert o.log(route="$connect", decision="deny", reason=reason), f"no deny log line with reason={reason}"
        return f"Deny, reason={reason}"

    return check


def status(o, code):
    got = (o.answer or {}).get("statusCode")
    assert got == code, f"statusCode {got}, expected {code}"


def no_close(o):
    closes = [l for l in o.logs if l.get("decision") in ("close", "refuse")]
    assert not closes, f"unexpected close: {closes}"


def router_connect(o, _):
    status(o, 200)
    assert o.log(route="$connect", decision="connect", account_sid=ACCOUNT), "no connect log line"
    return "200, connect"


def router_connect_refused(o, _):
    status(o, 403)
    assert o.log(route="$connect", decision="refuse", reason="no_authorizer_context"), "no refuse log line"
    return "403, no_authorizer_context"


def accepted(event_name):
    def check(o, _):
        status(o, 200)
        no_close(o)
        if event_name:
            assert o.log(route="$default", decision="accept", event=event_name), f"no accept log for {event_name}"
            return f"200, {event_name} accepted"
        # media and connected are accepted without a log line (50 per second per call): the
        # evidence is a 200, no close, and a completed invocation (END line, checked for all).
        return "200, accepted (no close)"

    return check


def closed(reason):
    def check(o, _):
        status(o, 200)
        lines = o.log(route="$default", decision="close", reason=reason)
        assert lines, f"no close log line with reason={reason}"
        # The DELETE @connections/{id} was attempted: it goes to STREAM_GATE_MANAGEMENT_ENDPOINT
        # (http://127.0.0.1:9/prod in the container, where nothing listens) and its result is logged.
        # Logged as close_result when the close went through (or was already gone), as
        # event=close_failed with the AWS error code when it failed (here: nothing listens).
        line = lines[0]
        result = line.get("close_result") or (
            line.get("event") == "close_failed" and f"close_failed:{line.get('aws_error')}"
        )
        assert result, f"close without its result: {line}"
        return f"200, close reason={reason}, DeleteConnection attempted ({result})"

    return check


def disconnect(o, _):
    status(o, 200)
    assert o.log(route="$disconnect", event="audit", account_sid=ACCOUNT), "no audit log line"
    return "200, audit line"


def twiml(o, _):
    status(o, 200)
    headers = {k.lower(): v for k, v in (o.answer.get("headers") or {}).items()}
    assert headers.get("content-type", "").startswith("text/xml"), f"content-type {headers.get('content-type')}"
    body = o.answer.get("body", "")
    assert f'<Connect><Stream url="{STREAM_URL}">' in body, f"no <Stream url=\"{STREAM_URL}\"> in {body}"
    m = re.search(r'<Parameter name="token" value="v1\.(\d+)\.[A-Za-z0-9_-]{43}"/>', body)
    assert m, f"no call token parameter in {body}"
    assert int(m.group(1)) > time.time(), "call token already expired"
    return "200 text/xml, <Connect><Stream> with a call token"


def echo_batch(o, _):
    # events/sam-local-env.json configures the echo to answer http://127.0.0.1:9/prod, and the
    # fixture's records name the gate's https://abc123.execute-api.us-east-1.amazonaws.com/prod:
    # every readable record is skipped (endpoint_not_allowed), nothing is posted, and the batch
    # still succeeds (the mapping must never replay audio).
    assert o.answer is None, f"answer {o.answer}, expected null"
    (s,) = o.log(event="echo_batch")
    got = {k: s.get(k) for k in ("kinesis_records", "skipped", "replies", "sent", "failed")}
    want = {"kinesis_records": 9, "skipped": 9, "replies": 0, "sent": 0, "failed": 0}
    assert got == want, f"summary {got}, expected {want}"
    assert len(o.log(reason="record_malformed")) == 1, "no record_malformed skip line"
    refused = o.log(reason="endpoint_not_allowed", level="WARN")
    assert len(refused) == 8, f"{len(refused)} endpoint_not_allowed lines, expected 8"
    ids = sorted({l.get("connection_id") for l in refused})
    assert ids == ["Xk2TmdKPIAMCJqw=", "YB7cRd3pIAMCKxQ="], f"connection ids {ids}"
    assert not o.log(reason="post_failed"), "a post was attempted"
    return "null, 9 records: 1 record_malformed, 8 endpoint_not_allowed (not the configured endpoint), nothing posted"


EXPECT = {
    "authorizer-signed.json": allow("twilio-signature", "twilioAccounts[0].authTokens[0]"),
    "authorizer-token.json": allow("stream-token", "streamTokens[0]"),
    "authorizer-unauthenticated.json": deny("signature_missing"),
    "authorizer-bad-signature.json": deny("signature_mismatch"),
    "connect.json": router_connect,
    "connect-no-context.json": router_connect_refused,
    "default-connected.json": accepted(None),
    "default-start.json": accepted("start"),
    "default-media.json": accepted(None),
    "default-stop.json": accepted("stop"),
    "default-start-wrong-account.json": closed("start_account_mismatch"),
    # ConversationRelay connections (their context names the protocol and the call); the router
    # runs stateless here, so each message is judged by its shape and the context alone.
    "default-relay-setup.json": accepted("setup"),
    "default-relay-prompt.json": accepted(None),
    "default-relay-setup-wrong-call.json": closed("setup_call_sid_mismatch"),
    "disconnect.json": disconnect,
    "voice-webhook.json": twiml,
    # STREAM_GATE_PROTOCOLS admits both (events/sam-local-env.json).
    "authorizer-relay-signed.json": allow_relay,
    "voice-webhook-relay.json": relay_twiml,
    "voice-webhook-relay-ended.json": relay_ended,
    "echo-kinesis.json": echo_batch,
}


def invoke(function, name, extra):
    return subprocess.run(
        [str(ROOT / "scripts/sam-local-invoke"), function, f"events/{name}", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=3600,
    )


def main():
    extra = sys.argv[1:]
    files = sorted(p.name for p in EVENTS.glob("*.json") if p.name not in NOT_EVENTS)
    failures = 0
    for name in files:
        function, check = function_for(name), EXPECT.get(name)
        if not function or not check:
            print(f"FAIL {name}: no function or expectation for it in {Path(__file__).name}")
            failures += 1
            continue
        start = time.monotonic()
        proc = invoke(function, name, extra)
        if proc.returncode == 0 and not re.search(r"^END RequestId: ", proc.stderr, re.M):
            # SAM CLI sometimes stops following the container's log stream before the function's
            # lines reach it (seen on a loaded machine: the answer on stdout, no START/END and no
            # log line on stderr). The logs are the evidence checked below, so run it once more,
            # and say so; a second run without them fails.
            print(f"note {name}: sam local invoke returned no function logs; invoking once more")
            proc = invoke(function, name, extra)
        took = time.monotonic() - start
        for line in proc.stderr.splitlines():
            if line.startswith("sam-local-invoke: sam build took"):
                print(line)
        o = Outcome(proc.stdout, proc.stderr)
        try:
            assert proc.returncode == 0, f"exit status {proc.returncode}"
            assert "Runtime exited" not in proc.stderr and "panicked" not in proc.stderr, "the runtime failed"
            assert re.search(r"^END RequestId: ", proc.stderr, re.M), "no END line: the invocation did not complete"
            assert o.answered, "no JSON answer on the last line of stdout"
            said = check(o, json.loads((EVENTS / name).read_text()))
            print(f"ok   {name:34} {function:21} {said} ({took:.1f}s)")
        except (AssertionError, KeyError, TypeError, ValueError) as e:
            failures += 1
            print(f"FAIL {name:34} {function:21} {type(e).__name__}: {e}")
            print("---- stdout\n" + proc.stdout + "\n---- stderr\n" + proc.stderr + "\n----")
    print(f"check_events: {len(files) - failures}/{len(files)} event files gave the documented outcome")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
