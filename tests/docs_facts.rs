//! The documentation's facts stay true of the code (beside `docs_claims.rs`, which pins
//! SECURITY.md's rows to their tests). This test fails when:
//! - a parameter or output of `template.yaml` has no row in docs/deploy.md's "Parameters" or
//!   "Outputs" table, or a row names one the template does not have;
//! - a `STREAM_GATE_*` variable the code reads has no row in docs/deploy.md's "Configuration"
//!   table, or a row names one no code reads;
//! - a document shows `stream-gate SUBCOMMAND --flag` (in a code block or a backticked span) with a
//!   subcommand or a flag the binary's `--help` does not list;
//! - a README paragraph that quotes a measurement (µs, ms, MiB, ×) links to no BENCHMARKS.md
//!   section, or links to a section BENCHMARKS.md does not have.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_stream-gate");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The names of a top-level YAML section's entries (two-space indented keys).
fn template_keys(section: &str) -> BTreeSet<String> {
    let text = read("template.yaml");
    let mut inside = false;
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() && !line.starts_with('#') {
            inside = line.trim_end() == format!("{section}:");
            continue;
        }
        let Some(rest) = line.strip_prefix("  ") else {
            continue;
        };
        if inside && !rest.starts_with(' ') && !rest.starts_with('#') {
            if let Some((key, _)) = rest.split_once(':') {
                keys.insert(key.trim().to_owned());
            }
        }
    }
    assert!(!keys.is_empty(), "no {section} in template.yaml");
    keys
}

/// The first cells (backticks stripped) of the table under `heading` in `doc`.
fn table_names(doc: &str, heading: &str) -> BTreeSet<String> {
    let text = read(doc);
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("{doc}: no section {heading:?}"));
    let body = &text[start + heading.len() + 2..];
    let end = body.find("\n## ").unwrap_or(body.len());
    let names: BTreeSet<String> = body[..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l[3..].split_once('`').map(|(n, _)| n.to_owned()))
        .collect();
    assert!(!names.is_empty(), "{doc} {heading}: no table rows");
    names
}

fn assert_same(what: &str, code: &BTreeSet<String>, doc: &BTreeSet<String>) {
    let missing: Vec<_> = code.difference(doc).collect();
    let extra: Vec<_> = doc.difference(code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: undocumented {missing:?}; documented but absent {extra:?}"
    );
}

#[test]
fn every_template_parameter_and_output_is_documented() {
    let params = table_names("docs/deploy.md", "## Parameters");
    assert_same("template parameters", &template_keys("Parameters"), &params);
    let outputs = table_names("docs/deploy.md", "## Outputs");
    assert_same("template outputs", &template_keys("Outputs"), &outputs);
}

/// Every `"STREAM_GATE_…"` string literal in the shipped code (not the test support crates).
fn variables_read() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack: Vec<PathBuf> = [
        "src",
        "crates/lambda/src",
        "crates/echo/src",
        "crates/devtools/src",
        "crates/domain/src",
    ]
    .iter()
    .map(|d| root().join(d))
    .collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("dir").flatten() {
                stack.push(entry.path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source");
            for piece in text.split("\"STREAM_GATE_").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                if piece[name.len()..].starts_with('"') && !name.is_empty() {
                    found.insert(format!("STREAM_GATE_{name}"));
                }
            }
        }
    }
    found
}

#[test]
fn every_variable_the_code_reads_is_in_the_configuration_table() {
    let documented: BTreeSet<String> = table_names("docs/deploy.md", "## Configuration")
        .into_iter()
        .filter(|n| n.starts_with("STREAM_GATE_"))
        .collect();
    let read = variables_read();
    for v in stream_gate_lambda::config::VARIABLES {
        assert!(read.contains(*v), "the scan missed {v}");
    }
    assert_same("STREAM_GATE_* variables", &read, &documented);
}

/// The subcommands and, for each, the long flags its `--help` lists.
fn help_flags(args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .output()
        .expect("help");
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| {
            w.trim_end_matches([',', '.', ':', ']', ')'])
                .split(['=', '['])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn subcommands() -> BTreeSet<String> {
    let out = Command::new(BIN).arg("--help").output().expect("help");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands = text.split("Commands:").nth(1).expect("a Commands: section");
    commands
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The code of a Markdown document: fenced blocks, 4-space indented lines and backticked spans,
/// with shell line continuations joined.
fn code_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let code = if fenced {
            Some(line)
        } else {
            line.strip_prefix("    ")
        };
        match code {
            Some(c) if c.trim_end().ends_with('\\') => {
                pending.push_str(c.trim_end().trim_end_matches('\\'));
                pending.push(' ');
            }
            Some(c) => out.push(std::mem::take(&mut pending) + c),
            None => {
                out.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
            }
        }
    }
    out
}

/// `(subcommand, flags)` of every `stream-gate SUB …` in `code`, up to a comment or another command.
fn invocations(code: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for piece in code.split("stream-gate ").skip(1) {
        let command = piece
            .split(['#', '|', ';', '&', ')'])
            .next()
            .unwrap_or_default();
        let mut words = command.split_whitespace();
        let Some(sub) = words.next() else { continue };
        if !sub.chars().all(|c| c.is_ascii_lowercase() || c == '-') || sub.starts_with('-') {
            continue;
        }
        let flags = words
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| w.split('=').next().unwrap_or_default().to_owned())
            .collect();
        found.push((sub.to_owned(), flags));
    }
    found
}

fn markdown_files() -> Vec<String> {
    let mut files = vec![
        "README.md".to_owned(),
        "SECURITY.md".to_owned(),
        "ARCHITECTURE.md".to_owned(),
        "BENCHMARKS.md".to_owned(),
        "events/README.md".to_owned(),
        "examples/audio/README.md".to_owned(),
    ];
    for entry in std::fs::read_dir(root().join("docs"))
        .expect("docs")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            files.push(format!("docs/{name}"));
        }
    }
    files.retain(|f| Path::new(&root().join(f)).exists());
    files
}

#[test]
fn every_documented_command_and_flag_exists() {
    let subs = subcommands();
    assert!(
        subs.contains("new-credentials") && subs.contains("verify"),
        "{subs:?}"
    );
    let mut flags_of = std::collections::HashMap::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        for code in code_of(&read(&file)) {
            for (sub, flags) in invocations(&code) {
                if !subs.contains(&sub) {
                    // Prose such as "`stream-gate local`'s banner" never reaches here (a span
                    // ends at the backtick); a word that is no subcommand is a broken command.
                    problems.push(format!("{file}: stream-gate {sub}: no such subcommand"));
                    continue;
                }
                let known = flags_of
                    .entry(sub.clone())
                    .or_insert_with(|| help_flags(&[&sub]));
                for flag in flags {
                    checked += 1;
                    if !known.contains(&flag) {
                        problems.push(format!("{file}: stream-gate {sub} {flag}: no such flag"));
                    }
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} flags found: is the scan broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// GitHub's anchor of a heading: lowercase, spaces to `-`, punctuation other than `-`/`_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn readme_numbers_point_to_their_benchmarks_section() {
    let anchors: BTreeSet<String> = read("BENCHMARKS.md")
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(anchor)
        .collect();
    let readme = read("README.md");
    let mut measured = 0;
    for paragraph in readme.split("\n\n") {
        // Tables, code blocks and indented code show commands and comments, not measurements.
        let indented = paragraph
            .lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.starts_with("    "));
        if paragraph.trim_start().starts_with('|') || paragraph.contains("```") || indented {
            continue;
        }
        let has_number = ["µs", " ms", "MiB", "×"].iter().any(|u| {
            paragraph.match_indices(u).any(|(i, _)| {
                paragraph[..i]
                    .trim_end()
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_digit())
            })
        });
        if !has_number {
            continue;
        }
        measured += 1;
        let links: Vec<&str> = paragraph
            .split("BENCHMARKS.md#")
            .skip(1)
            .map(|s| s.split(')').next().unwrap_or_default())
            .collect();
        assert!(
            !links.is_empty(),
            "a README paragraph quotes a measurement without its BENCHMARKS.md section:\n{paragraph}"
        );
        for link in links {
            assert!(
                anchors.contains(link),
                "BENCHMARKS.md has no section #{link}"
            );
        }
    }
    assert!(
        measured > 0,
        "no measured paragraph found: is the scan broken?"
    );
}

#[test]
fn the_scanners_find_what_they_look_for() {
    assert_eq!(
        anchor("### CPU per warm invocation, next to Node.js"),
        "cpu-per-warm-invocation-next-to-nodejs"
    );
    let code = code_of("text `stream-gate sim URL --fast` more\n\n    stream-gate verify X \\\n        --credentials -\n```sh\nstream-gate local --sink none # --not-a-flag\n```\n");
    let found: Vec<_> = code.iter().flat_map(|c| invocations(c)).collect();
    assert_eq!(
        found,
        [
            ("sim".to_owned(), vec!["--fast".to_owned()]),
            ("verify".to_owned(), vec!["--credentials".to_owned()]),
            ("local".to_owned(), vec!["--sink".to_owned()]),
        ]
    );
}
