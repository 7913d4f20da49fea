//! SECURITY.md's claims stay pinned to the tests that prove them.
//!
//! Every row of its "What each layer stops" table and of its gap table ("What it does not stop")
//! names, in its `proved by` column, the tests that prove it, each written in backticks as
//! `path/from/the/repository/root.rs::test_function` (a `.py` file's `def` for the checks that are
//! Python scripts). This test fails when:
//! - a named file does not exist, or holds no test of that name (`fn name`, `async fn name`, at any
//!   depth of `mod`s, under `#[test]` or `#[tokio::test]`, and not `#[ignore]`d);
//! - a backticked span looks like such a reference (`….rs::…`) but is not one;
//! - a row of a table with a `proved by` column names no test there;
//! - one of the two sections has no table with that column;
//! - a backticked repository path (`crates/…`, `tests/…`, `scripts/…`, …) does not exist.
//!
//! So a test renamed or deleted, or a row added without its proof, fails `cargo test --workspace`.

use std::collections::HashMap;
use std::path::Path;

/// The document checked, from the repository root.
const DOCUMENT: &str = "SECURITY.md";
/// The sections whose table must have a `proved by` column.
const PINNED_SECTIONS: [&str; 2] = ["## What each layer stops", "## What it does not stop"];
/// The header cell of the column where a row names its tests.
const COLUMN: &str = "proved by";
/// How a backticked repository path starts (any other backticked text is not a path).
const REPO_DIRS: [&str; 11] = [
    "crates/",
    "tests/",
    "src/",
    "tools/",
    "scripts/",
    "fuzz/",
    "events/",
    "benches/",
    "docs/",
    "examples/",
    ".cargo/",
];

/// A test named by the document: `path::name`, on a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    path: String,
    name: String,
    line: usize,
}

/// What the document was checked for: what is wrong, and how much was checked.
#[derive(Debug, Default)]
struct Report {
    problems: Vec<String>,
    /// Rows of `proved by` tables checked.
    rows: usize,
    /// References checked (anywhere in the document).
    references: usize,
}

/// The repository as the check sees it: a file's text, and whether a path exists.
trait Repo {
    fn read(&self, path: &str) -> Option<String>;
    fn exists(&self, path: &str) -> bool;
}

/// The real repository on disk.
struct Disk<'a>(&'a Path);

impl Repo for Disk<'_> {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }
    fn exists(&self, path: &str) -> bool {
        self.0.join(path).exists()
    }
}

/// The spans written in backticks on one line.
fn spans(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2)
}

/// Whether a backticked span is meant as a test reference (`….rs::…` or `….py::…`).
fn looks_like_reference(span: &str) -> bool {
    span.contains(".rs::") || span.contains(".py::")
}

/// `path::name` of a span, or why it is not a well-formed reference.
fn parse_reference(span: &str) -> Result<(&str, &str), &'static str> {
    let (path, name) = span
        .split_once("::")
        .ok_or("not of the form path::test_name")?;
    let path_ok = !path.starts_with('/')
        && !path.split('/').any(|part| part == ".." || part.is_empty())
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
        && (path.ends_with(".rs") || path.ends_with(".py"));
    if !path_ok {
        return Err("the path must be a relative .rs or .py path from the repository root");
    }
    let name_ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !name_ok {
        return Err("the test must be named by its function name alone (no module path)");
    }
    Ok((path, name))
}

/// Every reference of the document, and the malformed ones as problems.
fn references(document: &str) -> (Vec<Reference>, Vec<String>) {
    let (mut found, mut problems) = (Vec::new(), Vec::new());
    for (i, line) in document.lines().enumerate() {
        for span in spans(line).filter(|s| looks_like_reference(s)) {
            match parse_reference(span) {
                Ok((path, name)) => found.push(Reference {
                    path: path.to_owned(),
                    name: name.to_owned(),
                    line: i + 1,
                }),
                Err(why) => problems.push(format!("{DOCUMENT}:{}: `{span}`: {why}", i + 1)),
            }
        }
    }
    (found, problems)
}

/// How a file defines `name`.
#[derive(Debug, PartialEq, Eq)]
enum Definition {
    Missing,
    NotATest,
    Ignored,
    Test,
}

/// The name a line defines as a function (`fn name(`, `async fn name<`, `pub fn …`), if any.
fn defined_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for prefix in ["pub(crate) ", "pub ", "async "] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// How the Rust source `source` defines `name`: the best of its definitions (a file may define
/// the same name in two `mod`s). A test is a `fn` whose attributes just above it (comments in
/// between allowed) include `#[test]` or `#[tokio::test…]`, and none ignores it.
fn rust_definition(source: &str, name: &str) -> Definition {
    let lines: Vec<&str> = source.lines().collect();
    let mut best = Definition::Missing;
    for (i, line) in lines.iter().enumerate() {
        if defined_fn(line) != Some(name) {
            continue;
        }
        let attributes: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("#[") || l.starts_with("//"))
            .filter(|l| l.starts_with("#["))
            .collect();
        let is_test = attributes
            .iter()
            .any(|a| *a == "#[test]" || a.starts_with("#[tokio::test"));
        let ignored = attributes.iter().any(|a| {
            a.starts_with("#[ignore") || (a.starts_with("#[cfg_attr") && a.contains("ignore"))
        });
        let this = match (is_test, ignored) {
            (true, false) => return Definition::Test,
            (true, true) => Definition::Ignored,
            (false, _) => Definition::NotATest,
        };
        if best == Definition::Missing || this == Definition::Ignored {
            best = this;
        }
    }
    best
}

/// How a Python check script defines `name`: any `def name(` is the check the script runs.
fn python_definition(source: &str, name: &str) -> Definition {
    let wanted = format!("def {name}(");
    if source.lines().any(|l| l.trim_start().starts_with(&wanted)) {
        Definition::Test
    } else {
        Definition::Missing
    }
}

/// What is wrong with one reference, if anything.
fn check_reference(repo: &dyn Repo, r: &Reference) -> Option<String> {
    let at = format!("{DOCUMENT}:{}: `{}::{}`", r.line, r.path, r.name);
    let Some(source) = repo.read(&r.path) else {
        return Some(format!("{at}: no such file"));
    };
    let definition = if r.path.ends_with(".py") {
        python_definition(&source, &r.name)
    } else {
        rust_definition(&source, &r.name)
    };
    match definition {
        Definition::Test => None,
        Definition::Missing => Some(format!("{at}: the file has no `fn {}`", r.name)),
        Definition::NotATest => Some(format!("{at}: `fn {}` is not a #[test]", r.name)),
        Definition::Ignored => Some(format!("{at}: the test is #[ignore]d")),
    }
}

/// The cells of a table line, with `\|` kept inside its cell.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim();
    let inner = inner.strip_prefix('|').unwrap_or(inner);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let (mut out, mut cell, mut escaped) = (Vec::new(), String::new(), false);
    for c in inner.chars() {
        match c {
            '|' if !escaped => out.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    out.push(cell);
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// A table: the `##` section it is in, its header's cells, and its rows (1-based line, text).
struct Table<'a> {
    section: &'a str,
    header: Vec<String>,
    rows: Vec<(usize, &'a str)>,
}

/// The document's tables (runs of lines starting with `|`), without their separator lines.
fn tables(document: &str) -> Vec<Table<'_>> {
    let mut out: Vec<Table<'_>> = Vec::new();
    let (mut section, mut in_table) = ("", false);
    for (i, line) in document.lines().enumerate() {
        if line.starts_with("## ") {
            section = line.trim_end();
        }
        if !line.trim_start().starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table {
            in_table = true;
            out.push(Table {
                section,
                header: cells(line),
                rows: Vec::new(),
            });
        } else if let Some(table) = out.last_mut() {
            let separator = line.chars().all(|c| "|-: ".contains(c));
            if !separator {
                table.rows.push((i + 1, line));
            }
        }
    }
    out
}

/// Checks `document` against `repo`.
fn check(document: &str, repo: &dyn Repo) -> Report {
    let (found, mut problems) = references(document);
    let mut report = Report {
        references: found.len(),
        ..Report::default()
    };
    problems.extend(found.iter().filter_map(|r| check_reference(repo, r)));

    let all = tables(document);
    for wanted in PINNED_SECTIONS {
        let pinned = all
            .iter()
            .any(|t| t.section.starts_with(wanted) && t.header.iter().any(|h| h == COLUMN));
        if !pinned {
            problems.push(format!(
                "{DOCUMENT}: the section `{wanted}` has no table with a `{COLUMN}` column"
            ));
        }
    }
    for table in &all {
        let Some(column) = table.header.iter().position(|h| h == COLUMN) else {
            continue;
        };
        for (line, text) in &table.rows {
            report.rows += 1;
            let names_a_test = cells(text)
                .get(column)
                .is_some_and(|cell| spans(cell).any(|s| parse_reference(s).is_ok()));
            if !names_a_test {
                problems.push(format!(
                    "{DOCUMENT}:{line}: this row names no test in its `{COLUMN}` column"
                ));
            }
        }
    }
    for (i, line) in document.lines().enumerate() {
        for span in spans(line) {
            let path = span.split("::").next().unwrap_or(span);
            let path_like = REPO_DIRS.iter().any(|d| path.starts_with(d))
                && !path.contains(|c: char| c.is_whitespace() || "{}*<>".contains(c));
            if path_like && !repo.exists(path) {
                problems.push(format!("{DOCUMENT}:{}: `{path}` does not exist", i + 1));
            }
        }
    }
    report.problems = problems;
    report
}

#[test]
fn security_md_names_only_tests_that_exist_and_every_pinned_row_names_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let document = std::fs::read_to_string(root.join(DOCUMENT)).expect("SECURITY.md");
    let report = check(&document, &Disk(root));
    assert!(
        report.problems.is_empty(),
        "SECURITY.md is out of step with the code:\n{}",
        report.problems.join("\n")
    );
    // Not vacuous: both tables were found and read, row by row, and they name tests.
    assert!(report.rows >= 14, "{} rows checked", report.rows);
    assert!(report.references >= report.rows, "{report:?}");
}

// The check itself, on small documents and a repository in memory.

/// Files by path; every prefix of a file's path exists as a folder.
struct Fake(HashMap<&'static str, &'static str>);

impl Repo for Fake {
    fn read(&self, path: &str) -> Option<String> {
        self.0.get(path).map(|s| (*s).to_owned())
    }
    fn exists(&self, path: &str) -> bool {
        self.0.keys().any(|p| p.starts_with(path))
    }
}

const SOURCE: &str = r#"
#[test]
fn plain() {}

/// A doc comment between the attribute and the fn.
#[tokio::test(flavor = "multi_thread")]
// and a comment
async fn awaited() {}

mod inner {
    #[test]
    fn in_a_mod() {}
}

fn helper() {}

#[test]
#[ignore]
fn skipped() {}
"#;

fn fake() -> Fake {
    Fake(HashMap::from([
        ("crates/x/tests/a.rs", SOURCE),
        ("tools/check.py", "def check(template, mode):\n    pass\n"),
    ]))
}

fn doc(rows: &str) -> String {
    format!(
        "# T\n\n## What each layer stops\n\n| layer | stops | {COLUMN} |\n|---|---|---|\n{rows}\n\n\
         ## What it does not stop (read this)\n\n| gap | {COLUMN} |\n|---|---|\n\
         | g \\| h | `crates/x/tests/a.rs::plain` |\n"
    )
}

fn problems_of(document: &str) -> Vec<String> {
    check(document, &fake()).problems
}

#[test]
fn the_check_accepts_every_form_of_test_it_describes() {
    let document = doc(
        "| a | b | `crates/x/tests/a.rs::plain`, `crates/x/tests/a.rs::awaited` |\n\
         | c | d | `crates/x/tests/a.rs::in_a_mod` and `tools/check.py::check` |",
    );
    let report = check(&document, &fake());
    assert_eq!(report.problems, Vec::<String>::new());
    assert_eq!((report.rows, report.references), (3, 5));
}

#[test]
fn the_check_fails_on_a_wrong_name_a_missing_file_or_a_fn_that_is_no_test() {
    for (cell, expected) in [
        ("`crates/x/tests/a.rs::plane`", "the file has no `fn plane`"),
        ("`crates/x/tests/b.rs::plain`", "no such file"),
        (
            "`crates/x/tests/a.rs::helper`",
            "`fn helper` is not a #[test]",
        ),
        ("`crates/x/tests/a.rs::skipped`", "the test is #[ignore]d"),
        ("`tools/check.py::render`", "the file has no `fn render`"),
        (
            "`crates/x/tests/a.rs::inner::in_a_mod`",
            "by its function name alone",
        ),
        (
            "`/crates/x/tests/a.rs::plain`",
            "a relative .rs or .py path",
        ),
        (
            "`crates/x/../x/tests/a.rs::plain`",
            "a relative .rs or .py path",
        ),
    ] {
        let problems = problems_of(&doc(&format!("| a | b | {cell} |")));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{cell}: {problems:?}"
        );
    }
}

#[test]
fn the_check_fails_on_a_row_without_a_test_or_a_section_without_the_column() {
    // A row that names its test in another column, or none at all.
    for row in [
        "| `crates/x/tests/a.rs::plain` | b | none yet |",
        "| a | b | |",
        "| a | b |",
    ] {
        let problems = problems_of(&doc(row));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("this row names no test")),
            "{row}: {problems:?}"
        );
    }
    // The gap table without its column.
    let document = doc("| a | b | `crates/x/tests/a.rs::plain` |")
        .replace(&format!("| gap | {COLUMN} |"), "| gap | tests |");
    let problems = problems_of(&document);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("`## What it does not stop` has no table"));
}

#[test]
fn the_check_fails_on_a_repository_path_that_does_not_exist() {
    let document = doc("| a | b | `crates/x/tests/a.rs::plain` |")
        + "\nSee `crates/x/tests/` and `crates/x/tests/gone.rs`, `scripts/fuzz 60 <target>`.\n";
    let problems = problems_of(&document);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("`crates/x/tests/gone.rs` does not exist"));
}

#[test]
fn cells_keep_escaped_pipes_and_tables_skip_their_separator() {
    assert_eq!(cells("| a \\| b | `c` |"), ["a \\| b", "`c`"]);
    let document = doc("| a | b | c |");
    let t = tables(&document);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].section, "## What each layer stops");
    assert_eq!(t[0].header, ["layer", "stops", COLUMN]);
    assert_eq!(t[0].rows.len(), 1);
    assert!(t[1].section.starts_with("## What it does not stop"));
}
