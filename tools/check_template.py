"""Renders template.yaml through the SAM transform for each AuthMode and asserts what security rests on.

Each AuthMode is rendered with the call state, the delivery stream and the echo example on; the
optional operations parameters (SecretKmsKeyArn, RouterReservedConcurrency) are checked both unset
(their defaults) and set. The template's own Conditions are evaluated for the parameter values, so
a condition that never turns on (or never off) is caught too.

The committed samconfig.toml beside the template is checked too: it lists every parameter (a
parameter `sam deploy` is not given keeps its previous value on an update), each at the template's
default, so a plain `sam deploy` is never weaker than the template.

Exit status 1 with a message on the first broken property.
"""
import copy
import os
import re
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


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# Parameter values of the scenarios beyond each AuthMode: everything deployed, then the two
# optional operations parameters set.
BASE = {"CallState": "dynamodb", "Delivery": "kinesis", "EchoExample": "enabled"}
OPERATIONS_SET = {
    "SecretKmsKeyArn": KEY_ARN,
    "RouterReservedConcurrency": "150",
    "Protocols": "media-streams,conversation-relay",
    "RelayAttributes": '{"welcomeGreeting":"Hello"}',
}

SECRET_READERS = ("AuthorizerFunctionRole", "RouterFunctionRole", "VoiceWebhookFunctionRole")


def condition_values(conditions, params):
    """The template's Conditions (Equals/Not/And/Or over parameter Refs) for `params`."""
    def ev(x):
        if isinstance(x, dict):
            if "Fn::Equals" in x:
                a, b = (ev(v) for v in x["Fn::Equals"])
                return str(a) == str(b)
            if "Fn::Not" in x:
                return not ev(x["Fn::Not"][0])
            if "Fn::And" in x:
                return all(ev(v) for v in x["Fn::And"])
            if "Fn::Or" in x:
                return any(ev(v) for v in x["Fn::Or"])
            if "Condition" in x:
                return ev(conditions[x["Condition"]])
            if "Ref" in x:
                return params[x["Ref"]]
            fail(f"unsupported condition function {x}")
        return x

    return {name: ev(body) for name, body in conditions.items()}


def parameter_values(template, overrides):
    values = {k: str(p["Default"]) for k, p in template["Parameters"].items() if "Default" in p}
    values.update(overrides)
    return values


def fail(msg):
    print(f"check_template: FAIL: {msg}")
    sys.exit(1)


def check(template, mode, operations):
    """One rendering: `mode`, everything deployed, the `operations` parameters (none or set)."""
    params = parameter_values(template, {"AuthMode": mode, **BASE, **operations})
    template = copy.deepcopy(template)
    # What `sam package` does: local code becomes an S3 object (the transform only accepts those).
    for r in template["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://bucket/key"
    rendered = transform(copy.deepcopy(template), params, NoPolicies())
    conds = condition_values(rendered["Conditions"], params)
    label = f"{mode}{' +operations' if operations else ''}"
    res = resolve(rendered["Resources"], {"__conditions": conds})
    check_role_shapes(res, mode)
    check_echo(rendered, res, mode)
    check_call_state_grants(res, label)
    check_secret_key(res, label, operations.get("SecretKmsKeyArn"))
    check_router_concurrency(res, label, operations.get("RouterReservedConcurrency"))
    check_logging(res, label)
    check_relay(res, params, label)
    # A failed close is loud: the CloseFailed alarm exists on the router's metric.
    by_type = lambda t: {k: v for k, v in res.items() if v["Type"] == t}
    alarms = [a["Properties"] for a in by_type("AWS::CloudWatch::Alarm").values()]
    if not any(a.get("Namespace") == "StreamGate" and a.get("MetricName") == "CloseFailed" for a in alarms):
        fail(f"{mode}: no CloudWatch alarm on StreamGate/CloseFailed")
    print(f"check_template: {label}: ok")


def check_logging(res, label):
    """Every function: JSON logs, Lambda's own per-invocation lines dropped (system level WARN),
    the application's kept from INFO up: the EMF metric lines have no level and Lambda takes them
    as INFO (crates/lambda/tests/log_filtering.rs checks the lines the router prints)."""
    want = {"LogFormat": "JSON", "SystemLogLevel": "WARN", "ApplicationLogLevel": "INFO"}
    for name, r in res.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        cfg = r["Properties"].get("LoggingConfig", {})
        for k, v in want.items():
            if cfg.get(k) != v:
                fail(f"{label}: {name} LoggingConfig {k} is {cfg.get(k)!r}, expected {v!r}")


def check_role_shapes(res, mode):
    """$connect's authorizer, managed policies, wildcards and who may use @connections."""
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


def listify(x):
    return x if isinstance(x, list) else [x]


def statements(res, role):
    return [st for p in res[role]["Properties"].get("Policies", []) for st in p["PolicyDocument"]["Statement"]]


# The item kinds (partition-key prefixes) each role may touch in the call-state table; every
# DynamoDB grant is scoped by dynamodb:LeadingKeys and requires a key to be present.
ITEM_KINDS = {"RouterFunctionRole": {"conn#*", "claim#*"}, "VoiceWebhookFunctionRole": {"issued#*"}}


def check_call_state_grants(res, label):
    for name, role in res.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        kinds = set()
        for st in statements(res, name):
            if not any(a.startswith("dynamodb:") for a in listify(st["Action"])):
                continue
            cond = st.get("Condition", {})
            leading = cond.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            if leading is None or set(cond) != {"ForAllValues:StringLike", "Null"}:
                fail(f"{label}: {name}: a DynamoDB grant not scoped by ForAllValues:StringLike dynamodb:LeadingKeys: {st}")
            if cond["Null"] != {"dynamodb:LeadingKeys": "false"}:
                fail(f"{label}: {name}: a DynamoDB grant without Null dynamodb:LeadingKeys=false (ForAllValues is true for a request with no key): {st}")
            kinds |= set(listify(leading))
        if kinds != ITEM_KINDS.get(name, set()):
            fail(f"{label}: {name} may touch the item kinds {sorted(kinds)}, expected {sorted(ITEM_KINDS.get(name, set()))}")


def check_secret_key(res, label, key_arn):
    """SecretKmsKeyArn: set, each secret reader may kms:Decrypt with it through Secrets Manager only,
    and a created secret is encrypted with it; unset, no role has any kms: grant."""
    via = {"StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}}}
    for name, role in res.items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        kms = [st for st in statements(res, name) if any(a.startswith("kms:") for a in listify(st["Action"]))]
        want = [] if not key_arn or name not in SECRET_READERS else [
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Ref": "SecretKmsKeyArn"}, "Condition": via}
        ]
        if kms != want:
            fail(f"{label}: {name}: kms statements {kms}, expected {want}")
    secret = res["CredentialsSecret"]["Properties"]
    want_key = {"Ref": "SecretKmsKeyArn"} if key_arn else None
    if secret.get("KmsKeyId") != want_key:
        fail(f"{label}: CredentialsSecret KmsKeyId {secret.get('KmsKeyId')!r}, expected {want_key!r}")


def check_router_concurrency(res, label, reserved):
    for name, r in res.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        got = r["Properties"].get("ReservedConcurrentExecutions")
        want = {"Ref": "RouterReservedConcurrency"} if reserved and name == "RouterFunction" else None
        if got != want:
            fail(f"{label}: {name} ReservedConcurrentExecutions {got!r}, expected {want!r}")


def check_key_arn_pattern(template):
    """SecretKmsKeyArn accepts key ARNs of any partition (and empty), never an alias or a bare id."""
    pattern = template["Parameters"]["SecretKmsKeyArn"]["AllowedPattern"]
    accept = [
        "",
        KEY_ARN,
        "arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    ]
    refuse = [
        "arn:aws:kms:us-east-1:123456789012:alias/aws/secretsmanager",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-1:123456789012:key/*",
        KEY_ARN + "x",
        "x" + KEY_ARN,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
    ]
    for v in accept:
        if not re.fullmatch(pattern, v):
            fail(f"SecretKmsKeyArn's AllowedPattern refuses {v!r}")
    for v in refuse:
        if re.fullmatch(pattern, v):
            fail(f"SecretKmsKeyArn's AllowedPattern accepts {v!r}")


def check_relay(res, params, label):
    """ConversationRelay: the authorizer and the webhook read `Protocols` (STREAM_GATE_PROTOCOLS),
    the webhook `RelayAttributes`; the HTTP API routes POST /voice, /relay and /relay/ended to the
    webhook and nothing else."""
    def variable(function, name):
        value = res[function]["Properties"].get("Environment", {}).get("Variables", {}).get(name)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return params.get(value["Ref"])
        return value

    want = params["Protocols"]
    for name in ("AuthorizerFunction", "VoiceWebhookFunction"):
        got = variable(name, "STREAM_GATE_PROTOCOLS")
        if got != want:
            fail(f"{label}: {name} STREAM_GATE_PROTOCOLS is {got!r}, expected {want!r}")
    got = variable("VoiceWebhookFunction", "STREAM_GATE_RELAY_ATTRIBUTES")
    if got != params["RelayAttributes"]:
        fail(f"{label}: VoiceWebhookFunction STREAM_GATE_RELAY_ATTRIBUTES is {got!r}")
    routes = sorted(
        r["Properties"]["RouteKey"]
        for r in res.values()
        if r["Type"] == "AWS::ApiGatewayV2::Route" and r["Properties"].get("ApiId") != {"Ref": "WebSocketApi"}
    )
    http_paths = set()
    for r in res.values():
        if r["Type"] == "AWS::Serverless::HttpApi" or r["Type"] == "AWS::ApiGatewayV2::Api":
            body = r["Properties"].get("Body", {})
            for path, ops in body.get("paths", {}).items():
                for verb in ops:
                    http_paths.add(f"{verb.upper()} {path}")
    got = sorted(http_paths) or routes
    if got != ["POST /relay", "POST /relay/ended", "POST /voice"]:
        fail(f"{label}: HTTP API routes {got}, expected POST /voice, /relay and /relay/ended")


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


def check_samconfig(template, path):
    """samconfig.toml: every parameter at the template's default, the change set confirmed,
    only CAPABILITY_IAM, and the parameters in the deploy section alone (not `global`, which
    `sam build` and `sam local invoke` would read too)."""
    import tomllib

    from samcli.cli.types import CfnParameterOverridesType

    with open(path, "rb") as f:
        config = tomllib.load(f)
    default = config.get("default", {})
    for section, body in default.items():
        if section != "deploy" and "parameter_overrides" in body.get("parameters", {}):
            fail(f"samconfig.toml: parameter_overrides in [default.{section}.parameters]")
    deploy = default.get("deploy", {}).get("parameters", {})
    raw = deploy.get("parameter_overrides", [])
    raw = tuple(raw) if isinstance(raw, list) else (raw,)
    given = CfnParameterOverridesType().convert(raw, None, None)
    for name, spec in template["Parameters"].items():
        if name not in given:
            fail(f"samconfig.toml: parameter {name} is missing (an update would keep its old value)")
        want = str(spec.get("Default", ""))
        if str(given[name]) != want:
            fail(f"samconfig.toml: {name}={given[name]!r}, the template's default is {want!r}")
    unknown = set(given) - set(template["Parameters"])
    if unknown:
        fail(f"samconfig.toml: parameters the template does not have: {sorted(unknown)}")
    if deploy.get("confirm_changeset") is not True:
        fail("samconfig.toml: confirm_changeset must be true")
    if deploy.get("capabilities") != "CAPABILITY_IAM":
        fail(f"samconfig.toml: capabilities {deploy.get('capabilities')!r}, expected CAPABILITY_IAM")
    print("check_template: samconfig.toml: ok")


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path) as f:
        template = yaml.load(f, Loader=Loader)
    check_key_arn_pattern(template)
    check_samconfig(template, os.path.join(os.path.dirname(os.path.abspath(path)), "samconfig.toml"))
    try:
        for mode in IDENTITY:
            for operations in ({}, OPERATIONS_SET):
                check(template, mode, operations)
    except InvalidDocumentException as e:
        fail(f"SAM transform: {e}")


if __name__ == "__main__":
    main()
