//! A JSON parse into `serde_json::Value` that refuses duplicate object keys.
//!
//! serde_json keeps the last of two equal keys without a word, so `{"authTokens": ["a"],
//! "authTokens": ["b"]}` would load whichever a tool happened to write last. This parse builds the
//! `Value` itself (one pass, no second copy of the document) and stops at the first key already seen
//! in the same object, remembering where it was: the path names only the schema's own field names
//! and array indices, never a value and never an unknown key (a misplaced secret might be one).
//!
//! Bounded by serde_json itself: its recursion limit (128) caps the depth, and the caller caps the
//! size of the text.

use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use zeroize::Zeroize;

/// Why the text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    /// Not one JSON value.
    Invalid,
    /// A key occurs twice in one object; the path of that key (or of its object when the key is
    /// not a known field name).
    DuplicateKey(String),
}

/// Parses `text` into a `Value`, refusing duplicate keys in any object. `known` lists the field
/// names that may appear in an error path.
pub(crate) fn parse(text: &str, known: &'static [&'static str]) -> Result<Value, StrictJsonError> {
    let mut state = State {
        steps: Vec::new(),
        known,
        duplicate: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let value = match Seed(&mut state).deserialize(&mut de) {
        Ok(value) => value,
        Err(_) => {
            return Err(match state.duplicate.take() {
                Some(path) => StrictJsonError::DuplicateKey(path),
                None => StrictJsonError::Invalid,
            })
        }
    };
    if de.end().is_err() {
        wipe(value);
        return Err(StrictJsonError::Invalid);
    }
    Ok(value)
}

/// Wipes every string of a parsed document, keys included (the parse copied secrets into it).
pub(crate) fn wipe(value: Value) {
    match value {
        Value::String(mut s) => s.zeroize(),
        Value::Array(items) => items.into_iter().for_each(wipe),
        Value::Object(map) => {
            for (mut key, value) in map {
                key.zeroize();
                wipe(value);
            }
        }
        _ => {}
    }
}

/// One step from the root to the value being parsed.
enum Step {
    /// A member of an object: its name when it is a known field name.
    Key(Option<&'static str>),
    /// An element of an array.
    Index(usize),
}

struct State {
    steps: Vec<Step>,
    known: &'static [&'static str],
    duplicate: Option<String>,
}

impl State {
    fn known_name(&self, key: &str) -> Option<&'static str> {
        self.known.iter().find(|k| **k == key).copied()
    }

    /// The path of `key` in the object being parsed, as the credentials errors write paths
    /// (`twilioAccounts[0].authTokens`, `$` for the document). Stops at the first unknown key.
    fn path_of(&self, key: &str) -> String {
        let mut path = String::new();
        let last = Step::Key(self.known_name(key));
        for step in self.steps.iter().chain(std::iter::once(&last)) {
            match step {
                Step::Key(Some(name)) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                }
                // Under an unknown key: name the object that holds it.
                Step::Key(None) => break,
                Step::Index(i) => {
                    if path.is_empty() {
                        path.push('$');
                    }
                    // Writing to a String cannot fail.
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        if path.is_empty() {
            path.push('$');
        }
        path
    }
}

struct Seed<'s>(&'s mut State);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.0.steps.push(Step::Index(items.len()));
            let next = seq.next_element_seed(Seed(&mut *self.0));
            self.0.steps.pop();
            match next {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    items.into_iter().for_each(wipe);
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let outcome = loop {
            let mut key = match map.next_key::<String>() {
                Ok(Some(key)) => key,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            if out.contains_key(&key) {
                self.0.duplicate = Some(self.0.path_of(&key));
                key.zeroize();
                break Err(de::Error::custom("duplicate key"));
            }
            let name = self.0.known_name(&key);
            self.0.steps.push(Step::Key(name));
            let value = map.next_value_seed(Seed(&mut *self.0));
            self.0.steps.pop();
            match value {
                Ok(value) => {
                    out.insert(key, value);
                }
                Err(e) => {
                    key.zeroize();
                    break Err(e);
                }
            }
        };
        match outcome {
            Ok(()) => Ok(Value::Object(out)),
            Err(e) => {
                wipe(Value::Object(out));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["a", "b", "list"];

    fn dup(text: &str) -> Option<String> {
        match parse(text, KNOWN) {
            Err(StrictJsonError::DuplicateKey(path)) => Some(path),
            _ => None,
        }
    }

    #[test]
    fn parses_like_serde_json_when_keys_are_unique() {
        let text = r#"{"a":[1,-2,3.5,"x\u0041",null,true,{"b":{}}],"c":"d"}"#;
        let ours = parse(text, KNOWN).expect("valid");
        let theirs: Value = serde_json::from_str(text).expect("valid");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn names_the_duplicate_by_known_names_only() {
        assert_eq!(dup(r#"{"a":1,"a":2}"#).as_deref(), Some("a"));
        assert_eq!(dup(r#"{"a":1,"\u0061":2}"#).as_deref(), Some("a"));
        assert_eq!(
            dup(r#"{"list":[{},{"b":1,"b":1}]}"#).as_deref(),
            Some("list[1].b")
        );
        assert_eq!(
            dup(r#"{"list":[{"zz":1,"zz":1}]}"#).as_deref(),
            Some("list[0]")
        );
        assert_eq!(dup(r#"{"secret-ish":{"a":1,"a":2}}"#).as_deref(), Some("$"));
        assert_eq!(dup(r#"{"other":1,"other":1}"#).as_deref(), Some("$"));
        assert_eq!(dup(r#"[{"a":1,"a":1}]"#).as_deref(), Some("$[0].a"));
        assert_eq!(
            dup(r#"{"a":{"a":{"b":0,"b":0}}}"#).as_deref(),
            Some("a.a.b")
        );
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for text in ["", "{", r#"{"a":1} x"#, r#"{"a":1,}"#, "[1,]", "nul"] {
            assert_eq!(
                parse(text, KNOWN),
                Err(StrictJsonError::Invalid),
                "{text:?}"
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse(&deep, KNOWN), Err(StrictJsonError::Invalid));
    }
}
