//! The layering rules stated at the top of src/lib.rs, checked on the source itself so they
//! cannot silently rot: every `crate::…` and `super::…` path in every file under src/ (outside
//! its unit tests) is an edge from that file's module to the module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The products, and which other products each may use. Everything may use `core`; only `cli`
/// may use the products; nothing may use `cli`.
const PRODUCTS: &[(&str, &[&str])] = &[
    ("builder", &[]),
    ("topology_a", &[]),
    ("gitops", &[]),
    ("multiplayer", &[]),
    (
        "topology_b",
        &["gitops", "topology_a", "multiplayer", "builder"],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Module path of a source file: src/a/b.rs → a::b, src/a/mod.rs → a, src/lib.rs → "".
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match stem {
        "lib" if parts.is_empty() => {}
        "main" if parts.is_empty() => return None,
        "mod" => {}
        s => parts.push(s.to_string()),
    }
    Some(parts.join("::"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The file's code without comments, string literals and its `#[cfg(test)] mod` (unit tests may
/// reach anywhere, and by convention they come last).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i..].starts_with(b"r#\"") {
            i += 3;
            while i < b.len() && !b[i..].starts_with(b"\"#") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // a char literal such as '"' or '\n' (lifetimes have no closing quote)
            let end = text[i + 1..]
                .find('\'')
                .map(|e| i + 2 + e)
                .unwrap_or(b.len());
            i = end;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expand `use` trees: `crate::{a::{b, c}, d}` → crate::a::b, crate::a::c, crate::d.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{prefix}{p}")))
        .collect()
}

/// Every path the code names that starts at `crate` or `super`.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // use declarations, with their brace trees
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
            let tree = &after[..end];
            if tree.trim_start().starts_with("crate") || tree.trim_start().starts_with("super") {
                out.extend(expand(tree));
            }
        }
        rest = &after[end.min(after.len())..];
    }
    // paths written inline: crate::a::b::f(), super::x::Y
    for start in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(i) = rest.find(start) {
            let prev = rest[..i].chars().last();
            let tail = &rest[i..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            let path = tail[..len].trim_end_matches(':');
            // `crate::{…}` alone is the head of a use tree, read above.
            if path.contains("::")
                && prev.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
            {
                out.push(path.to_string());
            }
            rest = &tail[len.max(1)..];
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module, resolved from `from`.
fn target(path: &str, from: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = if from.is_empty() {
        vec![]
    } else {
        from.split("::").collect()
    };
    match segs.first() {
        Some(&"crate") => {
            base.clear();
            segs.remove(0);
        }
        Some(&"super") => {
            while segs.first() == Some(&"super") {
                base.pop();
                segs.remove(0);
            }
        }
        _ => return None,
    }
    base.extend(segs);
    (0..=base.len())
        .rev()
        .map(|n| base[..n].join("::"))
        .find(|m| modules.contains(m))
}

struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
    cli_text: Vec<(String, String)>,
}

fn graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let named: Vec<(String, PathBuf)> = files
        .iter()
        .filter_map(|f| module_of(f).map(|m| (m, f.clone())))
        .collect();
    let modules: BTreeSet<String> = named.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    let mut cli_text = Vec::new();
    for (module, file) in &named {
        let text = std::fs::read_to_string(file).unwrap();
        let code = code(&text);
        if module == "cli" || module.starts_with("cli::") {
            cli_text.push((file.display().to_string(), code.clone()));
        }
        let to: BTreeSet<String> = paths(&code)
            .iter()
            .filter_map(|p| target(p, module, &modules))
            .filter(|t| t != module)
            .collect();
        edges.insert(module.clone(), to);
    }
    Graph { edges, cli_text }
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

#[test]
fn core_uses_no_product_and_products_use_no_cli_and_only_the_products_they_may() {
    let g = graph();
    let mut wrong = Vec::new();
    for (from, tos) in &g.edges {
        for to in tos {
            let (a, b) = (layer(from), layer(to));
            if a == b || b == "core" || a == "cli" || (a.is_empty() && b != "cli") {
                continue;
            }
            let allowed = PRODUCTS
                .iter()
                .find(|(p, _)| *p == a)
                .is_some_and(|(_, may)| may.contains(&b));
            if !allowed {
                wrong.push(format!("{from} uses {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers of src/lib.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_command_line_has_no_docker_client_and_no_file_io() {
    let g = graph();
    assert!(!g.cli_text.is_empty());
    for (file, code) in &g.cli_text {
        for banned in ["bollard", "std::fs", "tokio::fs"] {
            assert!(
                !code.contains(banned),
                "{file} uses {banned}: move it into the product"
            );
        }
    }
}

/// `println!` and friends panic when the output is gone (a closed pipe): every line goes through
/// `core::ui`, which drops it instead, so a command keeps its documented exit code.
#[test]
fn output_goes_through_the_one_terminal_module() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for file in files {
        if file.ends_with("core/ui.rs") {
            continue;
        }
        let code = code(&std::fs::read_to_string(&file).unwrap());
        for banned in ["println!", "eprintln!", "print!(", "eprint!("] {
            assert!(
                !code.contains(banned),
                "{} uses {banned}: use core::ui::out/err/prompt",
                file.display()
            );
        }
    }
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let g = graph();
    // Tarjan's strongly connected components: any component of more than one module is a circle.
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        circles: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.circles.push(comp);
            }
        }
    }
    let mut s = State {
        g: &g.edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    for v in g.edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    let circles: Vec<String> = s.circles.iter().map(|c| c.join(" ⇄ ")).collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_checker_sees_uses_and_circles() {
    // The parser itself, on snippets, so a blind checker cannot pass the rules above.
    let modules: BTreeSet<String> = ["", "core", "core::ui", "a", "a::b", "a::c"]
        .map(String::from)
        .into();
    let p = paths(&code(
        "use crate::{core::ui::{self, step}, a::b};\nfn f() { super::c::g(); \"crate::x\"; }\n",
    ));
    let t: BTreeSet<String> = p
        .iter()
        .filter_map(|p| target(p, "a::b", &modules))
        .collect();
    assert_eq!(
        t,
        ["core::ui", "a::b", "a::c"].map(String::from).into(),
        "{p:?}"
    );
}
