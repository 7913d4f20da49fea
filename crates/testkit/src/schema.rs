//! JSON Schema validation with the Python `jsonschema` package (pinned in tools/requirements.txt,
//! installed into `.venv` by `scripts/setup`): the validator the schema's consumers are most likely
//! to use, and no validator crate in the build. Without the interpreter or the package the calling
//! test fails, never skips.

use std::path::Path;

use serde_json::Value;

/// Reads `{"schema": ..., "instances": [...]}` on stdin; checks the schema itself (draft 2020-12),
/// then prints one JSON list: for each instance, `null` when valid, else the first error's message
/// and path.
const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
doc = json.load(sys.stdin)
Draft202012Validator.check_schema(doc["schema"])
v = Draft202012Validator(doc["schema"])
out = []
for inst in doc["instances"]:
    errs = sorted(v.iter_errors(inst), key=lambda e: list(e.absolute_path))
    out.append(None if not errs else f"{'/'.join(map(str, errs[0].absolute_path))}: {errs[0].message}")
json.dump(out, sys.stdout)
"#;

/// Validates each of `instances` against the JSON Schema in `schema` (a file). Returns, per
/// instance, `None` when valid or the first error. Panics (fails the test) when the schema is not
/// a valid draft 2020-12 schema or the validator cannot run.
pub fn validate(schema: &Path, instances: &[Value]) -> Vec<Option<String>> {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema).expect("read the schema"))
            .expect("the schema is JSON");
    let input = serde_json::json!({"schema": schema, "instances": instances});
    let output = crate::python::run_json(&["-c", VALIDATE], &input);
    let results: Vec<Option<String>> = serde_json::from_value(output).expect("validator JSON");
    assert_eq!(results.len(), instances.len());
    results
}
