#!/usr/bin/env python3
"""Writes each fuzz target's seed corpus (fuzz/corpus/<target>/seed-*) from the events/ documents and
the hostile-input corpus (crates/lambda/tests/hostile), in the line formats the targets read (see the doc comment
of each target)."""
import base64
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
CORPUS = ROOT / "fuzz" / "corpus"
NOW = "1795881600"


def event(name):
    return json.loads((EVENTS / name).read_text())


def header(ev, name):
    """Every value of a header, case-insensitively, from multiValueHeaders or headers."""
    for key in ("multiValueHeaders", "headers"):
        for k, v in (ev.get(key) or {}).items():
            if k.lower() == name.lower():
                return v if isinstance(v, list) else [v]
    return []


def query(ev, name):
    multi = (ev.get("multiValueQueryStringParameters") or {}).get(name)
    single = (ev.get("queryStringParameters") or {}).get(name)
    return multi if multi else ([single] if single is not None else [])


def write(target, name, text):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(text.encode() if isinstance(text, str) else text)


def hostile():
    """The hostile-input corpus of the integration tests: good starting points for mutation."""
    frames = json.loads((ROOT / "crates" / "lambda" / "tests" / "hostile" / "frames.json").read_text())
    for i, case in enumerate(frames):
        frame = case["frame"]
        if "fill" in case:
            ch, count = case["fill"]
            frame = frame.replace("@FILL@", ch * count)
        if not case.get("base64"):
            write("frame_verdict", f"hostile-{i:03}", frame)
    url = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"
    for i, case in enumerate(json.loads((ROOT / "crates" / "lambda" / "tests" / "hostile" / "handshakes.json").read_text())):
        lines = [url]
        for name, values in case["headers"].items():
            if name.lower() == "x-twilio-signature":
                lines += [f"h:{v}" for v in values]
        lines += [f"q:{v}" for v in case["query"].get("token", [])]
        write("connect_decision", f"hostile-{i:03}", "\n".join(lines))
        lines += [f"c:{v}" for v in case["query"].get("callSid", [])]
        lines += [f"t:{v}" for v in case["query"].get("callToken", [])]
        for name, values in case["headers"].items():
            if name.lower() == "x-twilio-webhooks-signature-settings":
                lines += [f"s:{v}" for v in values]
        if set(case["query"]) - {"callSid", "callToken", "token"}:
            lines.append("o")
        write("relay_handshake", f"hostile-{i:03}", "\n".join(lines))
        if case["expect"] == "allow" and len(case["query"].get("callSid", [])) == 1:
            # Regression: the same callSid twice beside a signature over the single form (a query
            # parameter sent twice is a repeat even with the same value; the oracle once said not).
            write("relay_handshake", f"hostile-{i:03}-callsid-twice", "\n".join(lines + [f"c:{case['query']['callSid'][0]}"]))


# ConversationRelay's messages as Twilio documents them (docs/conversation-relay.md).
RELAY_MESSAGES = {
    "setup": {"type": "setup", "sessionId": "VX" + "0" * 32, "accountSid": "AC" + "deadbeef" * 4,
              "parentCallSid": "", "callSid": "CA" + "ffeeddccbbaa99887766554433221100", "from": "+18005550100",
              "to": "+18005550101", "forwardedFrom": "+18005550102", "callType": "PSTN", "callerName": "",
              "direction": "inbound", "callStatus": "RINGING", "customParameters": {"callReference": "bar"}},
    "prompt": {"type": "prompt", "voicePrompt": "Hi! Can you tell me about life?", "lang": "en-US", "last": True},
    "dtmf": {"type": "dtmf", "digit": "1"},
    "interrupt": {"type": "interrupt", "utteranceUntilInterrupt": "Life is a complex set of",
                  "durationUntilInterruptMs": 460},
    "interrupt-string": {"type": "interrupt", "utteranceUntilInterrupt": "", "durationUntilInterruptMs": "460"},
    "error": {"type": "error", "description": "Invalid message received"},
    "info": {"type": "info", "name": "agentSpeaking", "value": "on"},
}


def main():
    hostile()
    for path in sorted(EVENTS.glob("default-*.json")) + [EVENTS / "connect.json"]:
        body = event(path.name).get("body")
        if body:
            write("frame_verdict", path.stem, body)
    for path in sorted(EVENTS.glob("authorizer-*.json")):
        ev = event(path.name)
        ctx = ev["requestContext"]
        lines = [f"wss://{ctx['domainName']}/{ctx['stage']}"]
        lines += [f"h:{v}" for v in header(ev, "X-Twilio-Signature")]
        lines += [f"q:{v}" for v in query(ev, "token")]
        write("connect_decision", path.stem, "\n".join(lines))
    for name, message in RELAY_MESSAGES.items():
        write("relay_message", name, json.dumps(message, separators=(",", ":")))
    write("credentials_document", "test", (EVENTS / "credentials.test.json").read_text())
    hook = event("voice-webhook.json")
    body = hook["body"]
    if hook.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    sig = (header(hook, "x-twilio-signature") or ["-"])[0]
    url = f"https://{header(hook, 'host')[0]}{hook['rawPath']}"
    write("voice_webhook", "signed", f"{sig}\n{url}\n{body}")
    write("voice_webhook", "unsigned", f"-\n{url}\n{body}")
    start = json.loads(event("default-start.json")["body"])["start"]
    token = start["customParameters"]["token"]
    write("call_token", "start", f"{token}\n{start['accountSid']}\n{start['callSid']}\n{NOW}")


if __name__ == "__main__":
    main()
