"""Twilio's own request-signature helper (twilio-python) as an oracle for stream-gate's tests.

Reads a JSON list of cases on standard input, each
    {"secret": "...", "url": "...", "params": [["name", "value"], ...],
     "algorithm": "HMAC_SHA256" | "HMAC_SHA1" | null, "settings": "key=..,algorithm=.." (optional)}
and writes a JSON list with one object per case, in order:
    {"signature": "<base64>"}      RequestValidator(secret).compute_signature(url, params, algorithm=..)
    {"error": "unsupported"}       when compute_signature refuses the algorithm (ValueError)
plus "settingsAlgorithm": get_signature_algorithm(settings) when the case has "settings".

The URL is signed exactly as given: `validate` is deliberately not used, since it also tries the URL
with a port added. Nothing read is ever echoed to standard error (the input holds secrets).

Exit status: 0 on success, 2 on unusable input, 3 when the twilio package is not installed.
"""
import json
import sys

try:
    from twilio.request_validator import RequestValidator, get_signature_algorithm
except ImportError:
    sys.stderr.write("twilio_oracle: the twilio package is not installed (run scripts/setup)\n")
    sys.exit(3)


class FormParams:
    """Form parameters in the order posted, repeated names included, in the shape twilio-python's
    compute_signature reads (iteration over names, getall(name) for the values, like a MultiDict)."""

    def __init__(self, pairs):
        self._pairs = [(str(name), str(value)) for name, value in pairs]

    def __iter__(self):
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def __len__(self):
        return len(self._pairs)

    def getall(self, name):
        return [value for n, value in self._pairs if n == name]


def run(case):
    out = {}
    validator = RequestValidator(case["secret"])
    try:
        out["signature"] = validator.compute_signature(
            case["url"], FormParams(case.get("params") or []), algorithm=case.get("algorithm")
        )
    except ValueError:
        out["error"] = "unsupported"
    if "settings" in case:
        out["settingsAlgorithm"] = get_signature_algorithm(case["settings"])
    return out


def main():
    try:
        cases = json.load(sys.stdin)
        if not isinstance(cases, list):
            raise TypeError("a JSON list of cases")
        results = [run(case) for case in cases]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        # The type only: a message could quote the input.
        sys.stderr.write(f"twilio_oracle: unusable input ({type(e).__name__})\n")
        return 2
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
