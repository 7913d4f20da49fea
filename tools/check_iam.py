"""Evaluates template.yaml's IAM policies against the AWS calls each function makes.

Reads on standard input the JSON of `stream_gate_lambda::iam::calls_json()`:
    {"RouterFunction": [{"operation": "DeleteConnection", "action": "execute-api:ManageConnections",
                         "resource": "arn:{partition}:execute-api:...:{api_id}/{stage}/DELETE/@connections/{connection_id}"}], ...}
Renders the template through the SAM transform (as `sam deploy` does) for every AuthMode and
secret/partition combination, with and without call state, delivery and the echo example (a function
whose Condition is false is not deployed and is skipped; a deployed function iam.rs does not list
fails), substitutes concrete values for `${AWS::Partition}`, `${WebSocketApi}`,
`!Ref CredentialsSecret`... and evaluates each function role's inline statements with IAM's rules:
actions case-insensitive, `*` matches any run of characters and `?` one character, in actions and
resources alike (across `/` and `:` too). Fails (exit 1) when
- a call is not allowed by any statement of its function's role (it would be AccessDenied), or
- a statement grants an action/resource pair that no call of that function needs (least privilege).
The AWS-managed AWSLambdaBasicExecutionRole (CloudWatch Logs for the runtime itself) is not an
inline statement and is out of scope.

Usage: python tools/check_iam.py template.yaml < calls.json
"""
import copy
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_template import Loader, NoPolicies  # noqa: E402

import yaml  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402

ACCOUNT = "123456789012"
API_ID = "abc123"
STAGE = "prod"
CONNECTION_ID = "Xk2TmdKPIAMCJqw="
CREATED_SECRET = "stream-gate-CredentialsSecret-AbCdEf"
TABLE = "stream-gate-CallStateTable-1A2B3C4D5E6F"
STREAM_NAME = "stream-gate-DeliveryStream-AbCdEfGhIjKl"
CONSUMER_NAME = "stream-gate-echo"
CONSUMER_CREATED = "1795881600"
EXISTING_SECRET_NAME = "team/stream-gate-XyZ123"


def glob_match(pattern, value, case_insensitive=False):
    """IAM's wildcard match: `*` any run of characters, `?` exactly one; everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE if case_insensitive else 0
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


class Scenario:
    def __init__(self, mode, create_secret, partition, region, call_state, delivery, echo):
        self.mode, self.create_secret, self.call_state = mode, create_secret, call_state
        self.delivery, self.echo = delivery, echo
        self.partition, self.region = partition, region
        self.existing_secret = (
            f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{EXISTING_SECRET_NAME}"
        )
        self.created_secret = f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{CREATED_SECRET}"

    def __str__(self):
        return (
            f"AuthMode={self.mode} CallState={self.call_state} Delivery={self.delivery} EchoExample={self.echo} "
            f"secret={'created' if self.create_secret else 'existing'} {self.partition}/{self.region}"
        )

    @property
    def secret_arn(self):
        return self.created_secret if self.create_secret else self.existing_secret

    def parameters(self):
        return {
            "AuthMode": self.mode,
            "CallState": self.call_state,
            "Delivery": self.delivery,
            "EchoExample": self.echo,
            "ExistingSecretArn": "" if self.create_secret else self.existing_secret,
        }

    @property
    def consumer_arn(self):
        return (
            f"arn:{self.partition}:kinesis:{self.region}:{ACCOUNT}:stream/{STREAM_NAME}"
            f"/consumer/{CONSUMER_NAME}:{CONSUMER_CREATED}"
        )

    def refs(self):
        return {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "WebSocketApi": API_ID,
            "StageName": STAGE,
            "CredentialsSecret": self.created_secret,  # Ref of a secret is its ARN
            "CallStateTable": TABLE,  # Ref of a table is its name
            "CallStateTable.Arn": f"arn:{self.partition}:dynamodb:{self.region}:{ACCOUNT}:table/{TABLE}",
            "DeliveryStream": STREAM_NAME,
            "DeliveryStream.Arn": f"arn:{self.partition}:kinesis:{self.region}:{ACCOUNT}:stream/{STREAM_NAME}",
            "EchoConsumer.ConsumerARN": self.consumer_arn,
            "EchoConsumer": self.consumer_arn,  # Ref of a stream consumer is its ARN
            "ExistingSecretArn": "" if self.create_secret else self.existing_secret,
        }

    def placeholders(self):
        return {
            "partition": self.partition,
            "region": self.region,
            "account": ACCOUNT,
            "api_id": API_ID,
            "stage": STAGE,
            "connection_id": CONNECTION_ID,
            "secret_arn": self.secret_arn,
            "table": TABLE,
            "stream_name": STREAM_NAME,
            "consumer_name": CONSUMER_NAME,
            "consumer_created": CONSUMER_CREATED,
        }


def evaluate(value, refs, conditions):
    """Resolves Ref, Fn::Sub, Fn::If, Fn::Join and AWS::NoValue to concrete strings."""
    if isinstance(value, list):
        return [r for v in value if (r := evaluate(v, refs, conditions)) is not None]
    if not isinstance(value, dict):
        return value
    if "Ref" in value and len(value) == 1:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        if name not in refs:
            raise KeyError(f"unresolved Ref {name}")
        return refs[name]
    if "Fn::If" in value:
        cond, yes, no = value["Fn::If"]
        return evaluate(yes if conditions[cond] else no, refs, conditions)
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        local = {}
        if isinstance(text, list):
            text, local = text[0], {k: evaluate(v, refs, conditions) for k, v in text[1].items()}

        def sub(m):
            key = m.group(1)
            if key in local:
                return local[key]
            if key not in refs:
                raise KeyError(f"unresolved ${{{key}}}")
            return refs[key]

        return re.sub(r"\$\{([^}!]+)\}", sub, text)
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        name = ".".join(target) if isinstance(target, list) else target
        if name not in refs:
            raise KeyError(f"unresolved GetAtt {name}")
        return refs[name]
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(evaluate(parts, refs, conditions))
    return {k: r for k, v in value.items() if (r := evaluate(v, refs, conditions)) is not None}


def listify(x):
    return x if isinstance(x, list) else [x]


def role_statements(template, scenario):
    """The inline statements of each function's role, by function logical id, concretely; None for
    a function whose Condition is false in the scenario (not deployed, so it makes no call)."""
    t = copy.deepcopy(template)
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://bucket/key"
    rendered = transform(t, scenario.parameters(), NoPolicies())
    conditions = {
        name: condition_value(name, body, scenario, rendered.get("Conditions", {}))
        for name, body in rendered.get("Conditions", {}).items()
    }
    out = {}
    for name, res in rendered["Resources"].items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        if "Condition" in res and not conditions[res["Condition"]]:
            out[name] = None
            continue
        role_ref = res["Properties"]["Role"]
        role_name = role_ref["Fn::GetAtt"][0] if isinstance(role_ref, dict) else role_ref
        role = rendered["Resources"][role_name]
        statements = []
        for policy in role["Properties"].get("Policies", []):
            for st in listify(evaluate(policy["PolicyDocument"]["Statement"], scenario.refs(), conditions)):
                statements.append(st)
        out[name] = statements
    return out


def condition_value(name, body, scenario, all_conditions):
    """Evaluates the template's conditions for a scenario (Equals/Not/And/Or over parameters)."""
    def ev(x):
        if isinstance(x, dict):
            if "Fn::Equals" in x:
                a, b = (ev(v) for v in x["Fn::Equals"])
                return a == b
            if "Fn::Not" in x:
                return not ev(x["Fn::Not"][0])
            if "Fn::And" in x:
                return all(ev(v) for v in x["Fn::And"])
            if "Fn::Or" in x:
                return any(ev(v) for v in x["Fn::Or"])
            if "Condition" in x:
                return ev(all_conditions[x["Condition"]])
            if "Ref" in x:
                return PARAMETER_VALUES(scenario).get(x["Ref"], "")
        return x

    return ev(body)


def PARAMETER_VALUES(scenario):  # noqa: N802 - a table, read like a constant
    values = dict(DEFAULTS)
    values.update(scenario.parameters())
    return values


DEFAULTS = {}


VARYING = {"connection_id"}


def probes_of(call, scenario):
    """The call's action and resource, each changed in one place: what a grant must not allow."""
    values = scenario.placeholders()
    # Split the resource template into literal text and placeholders, then into tokens at / and :.
    parts = re.split(r"(\{[a-z_]+\})", call["resource"])
    tokens = []  # (text, may_vary)
    for part in parts:
        m = re.fullmatch(r"\{([a-z_]+)\}", part)
        if m:
            varies = m.group(1) in VARYING
            tokens.extend((t, varies) for t in re.split(r"([/:])", values[m.group(1)]) if t)
        else:
            tokens.extend((t, False) for t in re.split(r"([/:])", part) if t)
    out = []
    for i, (text, varies) in enumerate(tokens):
        if varies or text in ("/", ":") or not text:
            continue
        probe = "".join("zzzprobe" if j == i else t for j, (t, _) in enumerate(tokens))
        out.append((call["action"], probe))
    service, _, name = call["action"].partition(":")
    out.append((f"{service}:ZzzProbe", call["resource"].format(**values)))
    return out


def check(template, calls, scenario):
    problems = []
    statements = role_statements(template, scenario)
    for function, sts in statements.items():
        if sts is not None and function not in calls:
            problems.append(f"{scenario}: {function} is deployed but iam.rs lists none of its calls")
    for function, needed in calls.items():
        if function not in statements:
            problems.append(f"{scenario}: no function {function} in the template")
            continue
        sts = statements[function]
        if sts is None:  # not deployed in this scenario
            continue
        for st in sts:
            if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st or "Condition" in st:
                problems.append(f"{scenario}: {function}: unsupported statement shape {st}")
        params = scenario.parameters()
        needed = [
            c for c in needed
            if not c.get("when") or all(params.get(k) == v for k, v in c["when"].items())
        ]
        concrete = [
            (c["operation"], c["action"], c["resource"].format(**scenario.placeholders())) for c in needed
        ]
        for op, action, resource in concrete:
            if not any(
                any(glob_match(a, action, True) for a in listify(st["Action"]))
                and any(glob_match(r, resource) for r in listify(st["Resource"]))
                for st in sts
            ):
                problems.append(f"{scenario}: {function}: {op} ({action} on {resource}) is not granted")
        # Least privilege: every grant is needed by a call, and matches nothing a call does not
        # need — probed with each call's action and ARN changed in one place at a time (another
        # verb, stage, API, secret, service...), except where the call itself varies
        # ({connection_id}: one grant must cover every connection).
        probes = [p for c in needed for p in probes_of(c, scenario)]
        for st in sts:
            for a in listify(st["Action"]):
                for r in listify(st["Resource"]):
                    if not any(glob_match(a, action, True) and glob_match(r, resource) for _, action, resource in concrete):
                        problems.append(f"{scenario}: {function}: grants {a} on {r}, which no call needs")
                    for action, resource in probes:
                        if glob_match(a, action, True) and glob_match(r, resource):
                            problems.append(
                                f"{scenario}: {function}: grants {a} on {r}, which also allows {action} on {resource}, which no call needs"
                            )
    return problems


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path) as f:
        template = yaml.load(f, Loader=Loader)
    for name, p in template.get("Parameters", {}).items():
        if "Default" in p:
            DEFAULTS[name] = str(p["Default"])
    calls = json.load(sys.stdin)
    problems = []
    scenarios = 0
    for mode in ("signature", "token", "either", "both"):
        for create_secret in (True, False):
            for partition, region in (("aws", "us-east-1"), ("aws-cn", "cn-north-1")):
                # The echo example only with the delivery stream (the template's Rule refuses the rest).
                for call_state, delivery, echo in (
                    ("dynamodb", "kinesis", "disabled"),
                    ("dynamodb", "kinesis", "enabled"),
                    ("off", "kinesis", "enabled"),
                    ("off", "none", "disabled"),
                    ("dynamodb", "none", "disabled"),
                ):
                    scenario = Scenario(mode, create_secret, partition, region, call_state, delivery, echo)
                    problems += check(template, calls, scenario)
                    scenarios += 1
    if problems:
        for p in dict.fromkeys(problems):
            print(f"check_iam: FAIL: {p}")
        sys.exit(1)
    n = sum(len(v) for v in calls.values())
    print(f"check_iam: ok: {n} calls of {len(calls)} functions granted, nothing more, in {scenarios} scenarios")


if __name__ == "__main__":
    main()
