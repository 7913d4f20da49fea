"""Evaluates template.yaml's IAM policies against the AWS calls each function makes.

Reads on standard input the JSON of `stream_gate_lambda::iam::calls_json()`:
    {"RouterFunction": [{"operation": "DeleteConnection", "action": "execute-api:ManageConnections",
                         "resource": "arn:{partition}:execute-api:...:{api_id}/{stage}/DELETE/@connections/{connection_id}",
                         "context": {}, "when": null},
                        {"operation": "GetItem", "action": "dynamodb:GetItem", "resource": "arn:...:table/{table}",
                         "context": {"dynamodb:LeadingKeys": "conn#{connection_id}"},
                         "when": {"equals": {"CallState": "dynamodb"}}}, ...], ...}
Renders the template through the SAM transform (as `sam deploy` does) for every AuthMode and
secret/partition combination, with and without call state, delivery and the echo example, and (with
AuthMode=signature) with and without SecretKmsKeyArn (a function whose Condition is false is not
deployed and is skipped; a deployed function iam.rs does not list fails), substitutes concrete
values for `${AWS::Partition}`, `${WebSocketApi}`, `!Ref CredentialsSecret`... and evaluates each
function role's inline statements with IAM's rules: actions case-insensitive, `*` matches any run of
characters and `?` one character, in actions and resources alike (across `/` and `:` too); and each
statement's Condition against the call's request context ("context": the item's partition key as
the multivalued `dynamodb:LeadingKeys`, `kms:ViaService`), with IAM's operators: StringEquals,
StringLike, their ForAllValues:/ForAnyValue: forms (ForAllValues is true when the key is absent or
empty, ForAnyValue false) and Null; several operators or keys in one Condition must all hold. Any
other operator, or a single-valued operator on a multivalued key, fails as unsupported. Fails
(exit 1) when
- a call is not allowed by any statement of its function's role (it would be AccessDenied), or
- a statement grants an action/resource pair that no call of that function needs (least privilege),
  or allows a request that differs from a needed call in one place: another verb, stage, API,
  secret, service..., another item kind of the table (the partition-key prefix of another call, of
  this function or another: the router writing the webhook's `issued#` items, the webhook a
  connection's `conn#` start), no item key at all, or no / another `kms:ViaService`.
The AWS-managed AWSLambdaBasicExecutionRole (CloudWatch Logs for the runtime itself) is not an
inline statement and is out of scope.

Usage: python tools/check_iam.py template.yaml < calls.json
"""
import copy
import functools
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
KMS_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
CALL_SID = "CAffeeddccbbaa99887766554433221100"
EXPIRES_AT = "1795000000"
MULTIVALUED = {"dynamodb:LeadingKeys"}


@functools.lru_cache(maxsize=None)
def glob_regex(pattern, case_insensitive):
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, (re.IGNORECASE if case_insensitive else 0) | re.DOTALL)


def glob_match(pattern, value, case_insensitive=False):
    """IAM's wildcard match: `*` any run of characters, `?` exactly one; everything else literal."""
    return glob_regex(pattern, case_insensitive).fullmatch(value) is not None


class Scenario:
    def __init__(self, mode, create_secret, partition, region, call_state, delivery, echo, secret_key,
                 protocols="media-streams"):
        self.protocols = protocols
        self.mode, self.create_secret, self.call_state = mode, create_secret, call_state
        self.delivery, self.echo, self.secret_key = delivery, echo, secret_key
        self.partition, self.region = partition, region
        self.existing_secret = (
            f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{EXISTING_SECRET_NAME}"
        )
        self.created_secret = f"arn:{partition}:secretsmanager:{region}:{ACCOUNT}:secret:{CREATED_SECRET}"

    def __str__(self):
        return (
            f"AuthMode={self.mode} Protocols={self.protocols} CallState={self.call_state} "
            f"Delivery={self.delivery} EchoExample={self.echo} "
            f"secret={'created' if self.create_secret else 'existing'}"
            f"{' SecretKmsKeyArn=set' if self.secret_key else ''} {self.partition}/{self.region}"
        )

    @property
    def kms_key_arn(self):
        return f"arn:{self.partition}:kms:{self.region}:{ACCOUNT}:key/{KMS_KEY_ID}" if self.secret_key else ""

    @property
    def url_suffix(self):
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"

    @property
    def secret_arn(self):
        return self.created_secret if self.create_secret else self.existing_secret

    def parameters(self):
        return {
            "AuthMode": self.mode,
            "Protocols": self.protocols,
            "CallState": self.call_state,
            "Delivery": self.delivery,
            "EchoExample": self.echo,
            "ExistingSecretArn": "" if self.create_secret else self.existing_secret,
            "SecretKmsKeyArn": self.kms_key_arn,
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
            "AWS::URLSuffix": self.url_suffix,
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
            "SecretKmsKeyArn": self.kms_key_arn,
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
            "url_suffix": self.url_suffix,
            "secret_kms_key": self.kms_key_arn,
            "account_sid": ACCOUNT_SID,
            "call_sid": CALL_SID,
            "expires_at": EXPIRES_AT,
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


class Unsupported(Exception):
    pass


def condition_holds(condition, context):
    """IAM's evaluation of a statement's Condition for a request context (key -> value, or a list
    of values for a multivalued key). Raises Unsupported for anything this checker does not model."""
    for operator, clauses in condition.items():
        qualifier, _, base = operator.rpartition(":")
        if base not in ("StringEquals", "StringLike", "Null") or qualifier not in ("", "ForAllValues", "ForAnyValue") or (
            base == "Null" and qualifier
        ):
            raise Unsupported(f"condition operator {operator}")
        for key, wanted in clauses.items():
            wanted = [str(w) for w in listify(wanted)]
            present = key in context and listify(context[key]) != []
            values = listify(context.get(key, []))
            if base == "Null":
                if wanted not in (["true"], ["false"]):
                    raise Unsupported(f"Null {key}: {wanted}")
                if (wanted == ["true"]) == present:  # "true": the key must be absent
                    return False
                continue
            match = (lambda w, v: glob_match(w, v)) if base == "StringLike" else (lambda w, v: w == v)
            hit = lambda v: any(match(w, v) for w in wanted)  # noqa: E731
            if qualifier == "ForAllValues":
                ok = all(hit(v) for v in values)  # true for no values at all: IAM's empty-set rule
            elif qualifier == "ForAnyValue":
                ok = any(hit(v) for v in values)
            else:
                if key in MULTIVALUED:
                    raise Unsupported(f"{operator} on the multivalued {key} (needs ForAllValues/ForAnyValue)")
                ok = present and hit(values[0])
            if not ok:
                return False
    return True


def allows(st, action, resource, context):
    return (
        any(glob_match(a, action, True) for a in listify(st["Action"]))
        and any(glob_match(r, resource) for r in listify(st["Resource"]))
        and condition_holds(st.get("Condition", {}), context)
    )


def concrete_context(call, values):
    """The call's request context: placeholders filled, multivalued keys as lists."""
    out = {}
    for key, template in call.get("context", {}).items():
        value = template.format(**values)
        out[key] = [value] if key in MULTIVALUED else value
    return out


def describe(context):
    return "".join(f" with {k}={v[0] if isinstance(v, list) else v}" for k, v in sorted(context.items()))


def probes_of(call, scenario, all_calls):
    """The call changed in one place: what a grant must not allow. Its action and resource, each
    changed in one token; each context key removed, or set to the value any call of any function
    has for it (another item kind of the table), or to a value no call has."""
    values = scenario.placeholders()
    context = concrete_context(call, values)
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
        out.append((call["action"], probe, context))
    resource = call["resource"].format(**values)
    service, _, name = call["action"].partition(":")
    out.append((f"{service}:ZzzProbe", resource, context))
    for key in context:
        others = {c["context"][key].format(**values) for c in all_calls if key in c.get("context", {})}
        others.add("zzzprobe")
        without = {k: v for k, v in context.items() if k != key}
        out.append((call["action"], resource, without))
        for other in sorted(others):
            out.append((call["action"], resource, {**without, key: [other] if key in MULTIVALUED else other}))
    return out


def applies(call, params):
    when = call.get("when")
    if not when:
        return True
    if "equals" in when or "not_equals" in when:
        return all(params.get(k) == v for k, v in when.get("equals", {}).items()) and all(
            params.get(k) != v for k, v in when.get("not_equals", {}).items()
        )
    if "set" in when:
        return params.get(when["set"], "") != ""
    raise ValueError(f"unknown when {when}")


def check_function(function, sts, needed, scenario, all_calls):
    problems = []
    for st in sts:
        if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
            problems.append(f"{scenario}: {function}: unsupported statement shape {st}")
            return problems
        try:
            condition_holds(st.get("Condition", {}), {})
        except Unsupported as e:
            problems.append(f"{scenario}: {function}: unsupported condition ({e}) in {st}")
            return problems
    values = scenario.placeholders()
    concrete = [
        (c["operation"], c["action"], c["resource"].format(**values), concrete_context(c, values)) for c in needed
    ]
    for op, action, resource, context in concrete:
        if not any(allows(st, action, resource, context) for st in sts):
            problems.append(f"{scenario}: {function}: {op} ({action} on {resource}{describe(context)}) is not granted")
    # Least privilege: every grant is needed by a call, and matches nothing a call does not need
    # (probes_of) — except where the call itself varies ({connection_id}: one grant must cover
    # every connection).
    needed_requests = [(a, r, ctx) for _, a, r, ctx in concrete]
    probes = [
        p for c in needed for p in probes_of(c, scenario, all_calls)
        if not any(a.lower() == p[0].lower() and r == p[1] and ctx == p[2] for a, r, ctx in needed_requests)
    ]
    for st in sts:
        for a in listify(st["Action"]):
            for r in listify(st["Resource"]):
                one = {**st, "Action": a, "Resource": r}
                if not any(allows(one, action, resource, ctx) for _, action, resource, ctx in concrete):
                    problems.append(f"{scenario}: {function}: grants {a} on {r}, which no call needs")
                for action, resource, ctx in probes:
                    if allows(one, action, resource, ctx):
                        problems.append(
                            f"{scenario}: {function}: grants {a} on {r}, which also allows {action} on {resource}"
                            f"{describe(ctx) or ' with no condition keys'}, which no call needs"
                        )
    return problems


def check(template, calls, scenario):
    problems = []
    statements = role_statements(template, scenario)
    for function, sts in statements.items():
        if sts is not None and function not in calls:
            problems.append(f"{scenario}: {function} is deployed but iam.rs lists none of its calls")
    params = PARAMETER_VALUES(scenario)
    all_calls = [c for cs in calls.values() for c in cs if applies(c, params)]
    for function, needed in calls.items():
        if function not in statements:
            problems.append(f"{scenario}: no function {function} in the template")
            continue
        if statements[function] is None:  # not deployed in this scenario
            continue
        needed = [c for c in needed if applies(c, params)]
        problems += check_function(function, statements[function], needed, scenario, all_calls)
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
                    # The KMS grant depends on no other parameter than the partition (the
                    # URL suffix): with and without it under one AuthMode is enough.
                    for secret_key in (False, True) if mode == "signature" else (False,):
                        # The webhook's PutRecord (a ConversationRelay session's end) depends on
                        # Protocols and Delivery alone: every protocol set under one AuthMode.
                        protocol_sets = (
                            ("media-streams", "media-streams,conversation-relay", "conversation-relay")
                            if mode == "signature" and not secret_key
                            else ("media-streams",)
                        )
                        for protocols in protocol_sets:
                            scenario = Scenario(
                                mode, create_secret, partition, region, call_state, delivery, echo,
                                secret_key, protocols,
                            )
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
