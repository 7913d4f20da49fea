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
    name = "Ref" if suffix == "Ref" else "Fn::" + suffix
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

    for name, role in by_type("AWS::IAM::Role").items():
        for pol in role["Properties"].get("Policies", []):
            for st in pol["PolicyDocument"]["Statement"]:
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if any(r == "*" for r in resources):
                    fail(f"{mode}: {name} has a policy with a * resource: {st}")
                if "execute-api:ManageConnections" in actions and not name.startswith("RouterFunction"):
                    fail(f"{mode}: {name} may manage connections; only the router may")
    manage = [
        n for n, r in by_type("AWS::IAM::Role").items()
        for p in r["Properties"].get("Policies", [])
        for s in p["PolicyDocument"]["Statement"]
        if "execute-api:ManageConnections" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    if manage != ["RouterFunctionRole"]:
        fail(f"{mode}: roles with ManageConnections: {manage}")
    # A failed close is loud: the CloseFailed alarm exists on the router's metric.
    alarms = [a["Properties"] for a in by_type("AWS::CloudWatch::Alarm").values()]
    if not any(a.get("Namespace") == "StreamGate" and a.get("MetricName") == "CloseFailed" for a in alarms):
        fail(f"{mode}: no CloudWatch alarm on StreamGate/CloseFailed")
    print(f"check_template: {mode}: ok")


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
