"""Renders template.yaml through the SAM transform for each AuthMode and asserts what security rests on.

Exit status 1 with a message on the first broken property.
"""
import copy
import os
import sys

import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

IDENTITY = {
    "signature": ["route.request.header.X-Twilio-Signature"],
    "token": ["route.request.querystring.token"],
    "either": None,
    "both": ["route.request.header.X-Twilio-Signature", "route.request.querystring.token"],
}


class Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    # `!Ref X` is {"Ref": X} and `!Condition X` is {"Condition": X}; every other tag is Fn::<tag>.
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        v = loader.construct_scalar(node)
        if suffix == "GetAtt":
            v = v.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        v = loader.construct_sequence(node, deep=True)
    else:
        v = loader.construct_mapping(node, deep=True)
    return {name: v}


Loader.add_multi_constructor("!", _tag)


class NoPolicies:
    def load(self):
        return {}


def resolve(value, params):
    """Resolves Fn::If / Ref to parameters / AWS::NoValue so assertions see concrete values."""
    if isinstance(value, dict):
        if "Fn::If" in value:
            cond, yes, no = value["Fn::If"]
            return resolve(yes if params["__conditions"][cond] else no, params)
        if set(value) == {"Ref"} and value["Ref"] == "AWS::NoValue":
            return None
        return {k: r for k, v in value.items() if (r := resolve(v, params)) is not None}
    if isinstance(value, list):
        return [r for v in value if (r := resolve(v, params)) is not None]
    return value


def fail(msg):
    print(f"check_template: FAIL: {msg}")
    sys.exit(1)


def check(template, mode):
    template = copy.deepcopy(template)
    # What `sam package` does: local code becomes an S3 object (the transform only accepts those).
    for r in template["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://bucket/key"
    rendered = transform(copy.deepcopy(template), {"AuthMode": mode}, NoPolicies())
    conds = {
        "IsSignature": mode == "signature",
        "IsToken": mode == "token",
        "IsBoth": mode == "both",
        "CreateSecret": True,
        "HasPublicUrl": False,
        "BothTracks": False,
        "HasCallState": True,
        "HasKinesis": True,
        "HasEcho": True,
        "HasAlarmTopic": False,
    }
    res = resolve(rendered["Resources"], {"__conditions": conds})
    by_type = lambda t: {k: v for k, v in res.items() if v["Type"] == t}

    routes = by_type("AWS::ApiGatewayV2::Route")
    connect = [r for r in routes.values() if r["Properties"]["RouteKey"] == "$connect"]
    if len(connect) != 1:
        fail(f"{mode}: expected one $connect route, got {len(connect)}")
    props = connect[0]["Properties"]
    authorizers = by_type("AWS::ApiGatewayV2::Authorizer")
    if props.get("AuthorizationType") != "CUSTOM" or props.get("AuthorizerId", {}).get("Ref") not in authorizers:
        fail(f"{mode}: $connect is not guarded by the REQUEST authorizer")
    (auth,) = authorizers.values()
    if auth["Properties"].get("AuthorizerType") != "REQUEST":
        fail(f"{mode}: authorizer is not REQUEST")
    got = auth["Properties"].get("IdentitySource")
    if got != IDENTITY[mode]:
        fail(f"{mode}: identity sources {got!r}, expected {IDENTITY[mode]!r}")

    # Who may use @connections, and with which verb: the router closes (DELETE), the echo example
    # answers (POST). IAM matches the verb, so a wildcard there would let either do both.
    verbs = {"RouterFunctionRole": "DELETE", "EchoFunctionRole": "POST"}
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    for name, role in by_type("AWS::IAM::Role").items():
        # Only the runtime's own logs may come from a managed policy. SAM attaches more when a
        # function has event sources of its own (a `Kinesis` event adds AWSLambdaKinesisExecutionRole,
        # kinesis reads on Resource "*"): every grant beyond logs must be an inline statement.
        managed = role["Properties"].get("ManagedPolicyArns", [])
        if [m for m in managed if m != basic]:
            fail(f"{mode}: {name} has managed policies beyond {basic}: {managed}")
        for pol in role["Properties"].get("Policies", []):
            for st in pol["PolicyDocument"]["Statement"]:
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if any(r == "*" for r in resources):
                    fail(f"{mode}: {name} has a policy with a * resource: {st}")
                if any("*" in a for a in actions):
                    fail(f"{mode}: {name} has a wildcard action: {st}")
                if "execute-api:ManageConnections" in actions:
                    if name not in verbs:
                        fail(f"{mode}: {name} may manage connections; only the router and the echo may")
                    for r in resources:
                        text = r.get("Fn::Sub") if isinstance(r, dict) else r
                        if not isinstance(text, str) or not text.endswith(f"/{verbs[name]}/@connections/*"):
                            fail(f"{mode}: {name} manages connections beyond {verbs[name]}: {r}")
    manage = sorted(
        n for n, r in by_type("AWS::IAM::Role").items()
        for p in r["Properties"].get("Policies", [])
        for s in p["PolicyDocument"]["Statement"]
        if "execute-api:ManageConnections" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )
    if manage != ["EchoFunctionRole", "RouterFunctionRole"]:
        fail(f"{mode}: roles with ManageConnections: {manage}")
    check_echo(rendered, res, mode)
    # A failed close is loud: the CloseFailed alarm exists on the router's metric.
    alarms = [a["Properties"] for a in by_type("AWS::CloudWatch::Alarm").values()]
    if not any(a.get("Namespace") == "StreamGate" and a.get("MetricName") == "CloseFailed" for a in alarms):
        fail(f"{mode}: no CloudWatch alarm on StreamGate/CloseFailed")
    print(f"check_template: {mode}: ok")


def check_echo(rendered, res, mode):
    """The echo example: deployed only with the delivery stream, fed by its own enhanced fan-out
    consumer through a mapping that never replays a batch."""
    rule = rendered.get("Rules", {}).get("EchoNeedsKinesis", {})
    if rule.get("RuleCondition") != {"Fn::Equals": [{"Ref": "EchoExample"}, "enabled"]} or rule.get(
        "Assertions", [{}]
    )[0].get("Assert") != {"Fn::Equals": [{"Ref": "Delivery"}, "kinesis"]}:
        fail(f"{mode}: no Rule refusing EchoExample=enabled without Delivery=kinesis: {rule}")
    has_echo = rendered["Conditions"].get("HasEcho", {}).get("Fn::And", [])
    if {"Condition": "HasKinesis"} not in has_echo:
        fail(f"{mode}: HasEcho does not require HasKinesis: {has_echo}")
    for name in ("EchoFunction", "EchoFunctionRole", "EchoConsumer", "EchoEventSourceMapping", "EchoLogGroup"):
        if rendered["Resources"].get(name, {}).get("Condition") != "HasEcho":
            fail(f"{mode}: {name} is not conditional on HasEcho")
    mappings = {k: v for k, v in res.items() if v["Type"] == "AWS::Lambda::EventSourceMapping"}
    if list(mappings) != ["EchoEventSourceMapping"]:
        fail(f"{mode}: event source mappings {list(mappings)}; expected only EchoEventSourceMapping")
    esm = mappings["EchoEventSourceMapping"]["Properties"]
    want = {
        "FunctionName": {"Ref": "EchoFunction"},
        "EventSourceArn": {"Fn::GetAtt": ["EchoConsumer", "ConsumerARN"]},
        "StartingPosition": "LATEST",
        "MaximumBatchingWindowInSeconds": 0,
        "MaximumRetryAttempts": 0,
    }
    for k, v in want.items():
        if esm.get(k) != v:
            fail(f"{mode}: EchoEventSourceMapping {k} is {esm.get(k)!r}, expected {v!r}")
    consumer = res["EchoConsumer"]["Properties"]
    if consumer.get("StreamARN") != {"Fn::GetAtt": ["DeliveryStream", "Arn"]}:
        fail(f"{mode}: EchoConsumer is not a consumer of the DeliveryStream: {consumer}")
    fn = res["EchoFunction"]["Properties"]
    # The echo answers only this stage's own @connections endpoint (a record's value is never
    # trusted): the variable must be exactly the URL the router writes into its records.
    endpoint = fn.get("Environment", {}).get("Variables", {}).get("STREAM_GATE_MANAGEMENT_ENDPOINT")
    want_endpoint = {"Fn::Sub": "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}"}
    if endpoint != want_endpoint:
        fail(f"{mode}: EchoFunction STREAM_GATE_MANAGEMENT_ENDPOINT is {endpoint!r}, expected {want_endpoint!r}")
    if fn.get("LoggingConfig", {}).get("LogGroup") != {"Ref": "EchoLogGroup"}:
        fail(f"{mode}: EchoFunction does not log to EchoLogGroup")
    if res["EchoLogGroup"]["Properties"].get("RetentionInDays") != {"Ref": "LogRetentionDays"}:
        fail(f"{mode}: EchoLogGroup has no retention")


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path) as f:
        template = yaml.load(f, Loader=Loader)
    try:
        for mode in IDENTITY:
            check(template, mode)
    except InvalidDocumentException as e:
        fail(f"SAM transform: {e}")


if __name__ == "__main__":
    main()
