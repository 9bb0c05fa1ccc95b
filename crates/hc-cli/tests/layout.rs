//! The shape the CLI keeps (docs/architecture.md): `crates/hc-cli/src` parses, composes and
//! prints, in at most 1,500 lines without its `#[cfg(test)]` code; no function there is over
//! 60 lines; no command module imports another. The logic and the flag groups that make a
//! library's configuration live in the libraries. Formatted code (rustfmt) is assumed: an item
//! ends at the first line that closes it at its own indentation.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1500;
const MAX_FN_LINES: usize = 60;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The line where the item starting at `start` ends: the first later line that is its
/// indentation and `}` (or `};`), or `start` itself for a one-line item.
fn item_end(lines: &[&str], start: usize) -> usize {
    let first = lines[start];
    if first.trim_end().ends_with(';') || first.trim_end().ends_with('}') {
        return start;
    }
    let indent = &first[..first.len() - first.trim_start().len()];
    (start + 1..lines.len())
        .find(|&i| {
            let l = lines[i].trim_end();
            l.starts_with(indent) && matches!(&l[indent.len()..], "}" | "};")
        })
        .unwrap_or(lines.len() - 1)
}

/// The lines of a file without its `#[cfg(test)]` items.
fn without_tests(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            i = item_end(&lines, i + 1) + 1;
            continue;
        }
        kept.push(lines[i]);
        i += 1;
    }
    kept
}

fn src() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    let name = |p: &Path| {
        p.strip_prefix(&root)
            .expect("under src")
            .display()
            .to_string()
    };
    let read = |p: &PathBuf| (name(p), std::fs::read_to_string(p).expect("read source"));
    files.iter().map(read).collect()
}

#[test]
fn the_cli_stays_within_1500_lines_without_its_tests() {
    let counts: Vec<(String, usize)> = (src().into_iter())
        .map(|(name, text)| (name, without_tests(&text).len()))
        .collect();
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    assert!(counts.len() >= 10, "the sources were found: {counts:?}");
    assert!(
        total <= MAX_LINES,
        "crates/hc-cli/src is {total} lines without tests (at most {MAX_LINES}): move logic or a \
         flag group into the library it configures. Per file: {counts:?}"
    );
}

#[test]
fn no_function_of_the_cli_is_over_60_lines() {
    let mut seen = 0;
    for (name, text) in src() {
        let lines = without_tests(&text);
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "async fn ",
                "pub(crate) async fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if !is_fn {
                continue;
            }
            seen += 1;
            let len = item_end(&lines, i) - i + 1;
            assert!(
                len <= MAX_FN_LINES,
                "{name}:{}: `{}` is {len} lines (at most {MAX_FN_LINES})",
                i + 1,
                t.trim_end_matches(" {")
            );
        }
    }
    assert!(seen >= 20, "functions were found ({seen})");
}

#[test]
fn no_command_module_imports_another() {
    let files = src();
    let commands: Vec<String> = (files.iter())
        .filter_map(|(n, _)| {
            n.strip_prefix("cmd/")?
                .strip_suffix(".rs")
                .map(str::to_owned)
        })
        .filter(|c| c != "mod")
        .collect();
    assert!(commands.len() >= 8, "{commands:?}");
    for (name, text) in files.iter().filter(|(n, _)| n.starts_with("cmd/")) {
        let own = name.trim_start_matches("cmd/").trim_end_matches(".rs");
        if own == "mod" {
            continue;
        }
        for other in commands.iter().filter(|c| *c != own) {
            for path in [format!("crate::cmd::{other}"), format!("super::{other}")] {
                assert!(!text.contains(&path), "{name} uses {path}");
            }
        }
    }
}

#[test]
fn the_counter_leaves_out_test_items_and_measures_functions() {
    let text =
        "fn a() {\n    1\n}\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\nconst C: u8 = 1;\n";
    let kept = without_tests(text);
    assert_eq!(kept, ["fn a() {", "    1", "}", "const C: u8 = 1;"]);
    assert_eq!(item_end(&kept, 0), 2);
    assert_eq!(item_end(&kept, 3), 3);
}
