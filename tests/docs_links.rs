//! The repository explains itself: every document it points to is in it.
//!
//! This test walks the repository (not `target/`, `.git/` or other hidden folders) and fails when:
//! - a relative Markdown link (`[text](path#anchor)`, `[label]: path`) names a file that does not
//!   exist, or an anchor that is no heading of the linked Markdown file (GitHub's slugs);
//! - a source file (Rust, TOML, YAML, shell, Python, scripts) or a Markdown file outside links cites
//!   a `….md` document that does not exist: a path with a `/` from the repository root or from the
//!   citing file's folder, a bare name at the root or beside the citing file;
//! - a citation `docs/design.md §N` names a section that `docs/design.md` does not have;
//! - anything points outside the repository at the design inputs it was written from.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Folders never walked (build output, virtual environments, fuzz corpora).
const SKIPPED_DIRS: [&str; 4] = ["target", "corpus", "artifacts", "node_modules"];
/// Extensions of the source files whose citations are checked.
const SOURCE_EXTENSIONS: [&str; 8] = ["rs", "toml", "yaml", "yml", "sh", "py", "json", "md"];
/// Where the scripts without an extension live.
const SCRIPT_DIRS: [&str; 2] = ["scripts", "tools"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of the repository worth reading, relative paths included for messages.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                walk(&path, out);
            }
        } else if kind.is_file() && is_checked(&path) {
            out.push(path);
        }
    }
}

fn is_checked(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => SOURCE_EXTENSIONS.contains(&ext),
        None => path
            .parent()
            .and_then(|p| p.strip_prefix(root()).ok())
            .is_some_and(|p| SCRIPT_DIRS.iter().any(|d| p.starts_with(d))),
    }
}

fn files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(&root(), &mut out);
    out.sort();
    assert!(
        out.iter().any(|p| p.ends_with("docs/design.md")),
        "the walk found the repository's documents"
    );
    out
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
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

/// The lines of a Markdown file outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The anchors of a Markdown file's headings (duplicates numbered as GitHub does).
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(heading.trim_start_matches('#'));
        let mut candidate = base.clone();
        let mut n = 0;
        while !seen.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
    }
    seen
}

/// The targets of a line's inline links `](target)` and of a reference definition `[x]: target`.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        out.push(target.trim_matches(['<', '>']).to_owned());
        rest = &rest[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some((_, target)) = trimmed.split_once("]: ") {
            out.push(target.split_whitespace().next().unwrap_or("").to_owned());
        }
    }
    out
}

fn is_external(target: &str) -> bool {
    target.is_empty() || target.contains("://") || target.starts_with("mailto:")
}

/// Checks one link of `file`; an error message when it does not resolve.
fn check_link(file: &Path, text: &str, target: &str) -> Option<String> {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else {
        file.parent()?.join(path)
    };
    if !resolved.exists() {
        return Some(format!("links to {target}, which does not exist"));
    }
    let anchor = anchor.filter(|a| !a.is_empty())?;
    if resolved.extension().and_then(|e| e.to_str()) != Some("md") {
        return None;
    }
    let linked = if path.is_empty() {
        text.to_owned()
    } else {
        std::fs::read_to_string(&resolved).ok()?
    };
    (!anchors(&linked).contains(anchor))
        .then(|| format!("links to {target}: no heading has the anchor #{anchor}"))
}

#[test]
fn every_relative_markdown_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in files()
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(file).expect("a readable Markdown file");
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line).iter().filter(|t| !is_external(t)) {
                checked += 1;
                if let Some(problem) = check_link(file, &text, target) {
                    broken.push(format!("{}:{n}: {problem}", shown(file)));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} relative links found: the scan is broken"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The `….md` paths a line cites (letters, digits, `_`, `-`, `.`, `/` before `.md`).
fn cited_documents(line: &str) -> Vec<(String, usize)> {
    let bytes = line.as_bytes();
    let is_path_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/');
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = line[search..].find(".md") {
        let end = search + found + 3;
        search = end;
        if bytes
            .get(end)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
        {
            continue; // `.mdx`, `.md_…`: not a Markdown path
        }
        let mut start = end - 3;
        while start > 0 && is_path_byte(bytes[start - 1]) {
            start -= 1;
        }
        let path = line[start..end].trim_start_matches("./");
        if path.len() > 3 && !path.starts_with('.') {
            out.push((path.to_owned(), end));
        }
    }
    out
}

fn resolves(file: &Path, cited: &str) -> bool {
    let here = file.parent().map(|p| p.join(cited));
    let from_root = cited.contains('/').then(|| root().join(cited));
    let at_root = (!cited.contains('/')).then(|| root().join(cited));
    [here, from_root, at_root]
        .into_iter()
        .flatten()
        .any(|p| p.is_file())
}

/// `docs/design.md §N` names a section `## N.` of docs/design.md.
fn check_section(rest_of_line: &str, sections: &HashSet<String>) -> Option<String> {
    let number: String = rest_of_line
        .trim_start()
        .strip_prefix('§')?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!sections.contains(&number)).then(|| format!("cites docs/design.md §{number}, not a section"))
}

fn design_sections() -> HashSet<String> {
    let text = std::fs::read_to_string(root().join("docs/design.md")).expect("docs/design.md");
    text.lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|h| h.split_once(". ").map(|(n, _)| n.to_owned()))
        .collect()
}

#[test]
fn every_cited_document_exists() {
    let sections = design_sections();
    assert!(
        sections.contains("5"),
        "docs/design.md numbers its sections"
    );
    let outside = ["..", "/shared/"].concat();
    let mut broken = Vec::new();
    let mut checked = 0;
    // This file's own unit examples cite documents that do not exist on purpose.
    let this_file = root().join(file!());
    for file in files().into_iter().filter(|f| *f != this_file) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let at = format!("{}:{}", shown(&file), i + 1);
            if line.contains(&outside) {
                broken.push(format!("{at}: points outside the repository ({outside})"));
            }
            for (cited, end) in cited_documents(line) {
                checked += 1;
                if !resolves(&file, &cited) {
                    broken.push(format!("{at}: cites {cited}, which does not exist"));
                } else if cited.ends_with("design.md") {
                    broken.extend(
                        check_section(&line[end..], &sections).map(|p| format!("{at}: {p}")),
                    );
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} citations found: the scan is broken"
    );
    assert!(
        broken.is_empty(),
        "unresolved citations:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_scanners_find_what_they_should() {
    assert_eq!(
        slug("8. ConversationRelay: planned, not built"),
        "8-conversationrelay-planned-not-built"
    );
    assert_eq!(slug(" `echo` and the sink "), "echo-and-the-sink");
    assert_eq!(
        link_targets("see [a](docs/a.md#x) and [b](<b.md>) [c]: c.md"),
        ["docs/a.md#x", "b.md"]
    );
    assert_eq!(link_targets("[c]: docs/c.md \"title\""), ["docs/c.md"]);
    let cited: Vec<String> = cited_documents("(see docs/design.md §5, SECURITY.md; x.mdx)")
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(cited, ["docs/design.md", "SECURITY.md"]);
    let sections: HashSet<String> = ["3".to_owned()].into();
    assert_eq!(check_section(" §3: x", &sections), None);
    assert!(check_section(" §9", &sections).is_some());
    assert!(!resolves(&root().join("src/main.rs"), "DESIGN.md"));
    assert!(resolves(&root().join("src/main.rs"), "docs/records.md"));
}
