//! Finds YAML anchors (`&name`) and aliases (`*name`) in text, so that manifests using them can
//! be refused before they are parsed.
//!
//! Why a scanner: serde_norway expands aliases silently (a "billion laughs" document becomes a
//! huge value, and `<<: *base` merges hide where a field came from) and has no public event API
//! to see them. Kubernetes manifests never need them: no upstream add-on appgear applies uses one.
//!
//! The scanner follows YAML's structure far enough to know where a node starts (line starts,
//! after `- `, `? `, `: `, inside flow collections after `[`, `{` and `,`), and skips what cannot
//! hold a node: comments, quoted scalars (also over several lines), block scalars (`|`, `>`) and
//! the continuation lines of plain scalars. An anchor or alias can only appear where a node
//! starts, so a `*` or `&` inside text is never mistaken for one.

/// An anchor or alias, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub line: usize,
    /// "anchor" or "alias".
    pub what: &'static str,
    pub name: String,
}

/// What the lines after the current one continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cont {
    None,
    /// A block scalar: lines indented more than this (and blank lines) are its text.
    Block(isize),
    /// A plain scalar that may go on over lines indented more than this.
    Plain(isize),
    /// A quoted scalar left open at the end of a line; the node's indentation for what follows.
    Quote(u8, isize),
    /// Inside a flow collection `depth` deep; `at_node` when the next token starts a node.
    Flow {
        depth: usize,
        quote: Option<u8>,
        at_node: bool,
        n: isize,
    },
}

/// The first anchor or alias in `text`, if any.
pub fn find(text: &str) -> Option<Found> {
    let mut cont = Cont::None;
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw).as_bytes();
        let indent = line.iter().take_while(|c| **c == b' ').count();
        let blank = line[indent..]
            .iter()
            .all(|c| *c == b' ' || *c == b'\t' || *c == b'\r');
        let result = match cont {
            Cont::Block(n) | Cont::Plain(n) if blank || indent as isize > n => continue,
            Cont::Quote(q, n) => match close_quote(line, 0, q) {
                None => continue,
                Some(end) => after_scalar(line, end + 1, n, line_no),
            },
            Cont::Flow {
                depth,
                quote,
                at_node,
                n,
            } => flow(line, 0, depth, quote, at_node, n, line_no),
            _ => {
                if blank {
                    cont = Cont::None;
                    continue;
                }
                line_start(line, indent, line_no)
            }
        };
        cont = match result {
            Ok(c) => c,
            Err(found) => return Some(found),
        };
    }
    None
}

type Step = Result<Cont, Found>;

/// A line outside any scalar or flow collection.
fn line_start(b: &[u8], indent: usize, line_no: usize) -> Step {
    if indent == 0 {
        if starts_marker(b, b"---") {
            return node(b, 3, -1, line_no);
        }
        if starts_marker(b, b"...") || b.first() == Some(&b'%') {
            return Ok(Cont::None);
        }
    }
    node(b, indent, indent as isize - 1, line_no)
}

fn starts_marker(b: &[u8], m: &[u8]) -> bool {
    b.starts_with(m) && b.get(m.len()).is_none_or(|c| is_space(*c))
}

fn is_space(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == b'\r'
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    i
}

/// True when `b[i]` is followed by a space or the end of the line (how `-`, `?` and `:` become
/// indicators rather than part of a scalar).
fn indicator_at(b: &[u8], i: usize) -> bool {
    b.get(i + 1).is_none_or(|c| is_space(*c))
}

fn is_flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

/// An anchor or alias property at `b[i]` (`&` or `*` followed by a name).
fn property(b: &[u8], i: usize, line_no: usize) -> Option<Found> {
    let what = match b[i] {
        b'&' => "anchor",
        b'*' => "alias",
        _ => return None,
    };
    let name: Vec<u8> = b[i + 1..]
        .iter()
        .take_while(|c| !is_space(**c) && !is_flow_indicator(**c))
        .copied()
        .collect();
    (!name.is_empty()).then(|| Found {
        line: line_no,
        what,
        name: String::from_utf8_lossy(&name).into_owned(),
    })
}

/// Scan from a position where a node may start, in block context. `n` is the indentation that
/// lines continuing this node's scalar must exceed.
fn node(b: &[u8], mut i: usize, mut n: isize, line_no: usize) -> Step {
    loop {
        i = skip_spaces(b, i);
        let Some(&c) = b.get(i) else {
            return Ok(Cont::None);
        };
        if let Some(found) = property(b, i, line_no) {
            return Err(found);
        }
        match c {
            b'#' => return Ok(Cont::None),
            b'!' => {
                // A tag: skip it, the node itself follows.
                while i < b.len() && !is_space(b[i]) {
                    i += 1;
                }
            }
            b'-' | b'?' | b':' if indicator_at(b, i) => {
                n = i as isize;
                i += 1;
            }
            b'|' | b'>' => return Ok(Cont::Block(n)),
            b'"' | b'\'' => {
                return match close_quote(b, i + 1, c) {
                    Some(end) => after_scalar(b, end + 1, i as isize, line_no),
                    None => Ok(Cont::Quote(c, n)),
                };
            }
            b'[' | b'{' => return flow(b, i + 1, 1, None, true, i as isize, line_no),
            _ => {
                // A plain scalar: a key if `: ` follows on this line, else a value that may go
                // on over more indented lines. ` #` starts a comment and ends it.
                let key_col = i as isize;
                let mut j = i;
                loop {
                    if j >= b.len() {
                        return Ok(Cont::Plain(n));
                    }
                    if b[j] == b':' && indicator_at(b, j) {
                        n = key_col;
                        i = j + 1;
                        break;
                    }
                    if b[j] == b'#' && j > i && is_space(b[j - 1]) {
                        return Ok(Cont::None);
                    }
                    j += 1;
                }
            }
        }
    }
}

/// After a quoted scalar or flow collection closed at `b[i..]`: it was a key if `:` follows.
fn after_scalar(b: &[u8], i: usize, key_col: isize, line_no: usize) -> Step {
    let i = skip_spaces(b, i);
    match b.get(i) {
        Some(b':') => node(b, i + 1, key_col, line_no),
        _ => Ok(Cont::None),
    }
}

/// The index of the quote closing a scalar opened before `from`, if it is on this line.
fn close_quote(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        if q == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2; // '' is an escaped quote inside a single-quoted scalar
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Scan inside a flow collection (`[...]`, `{...}`), possibly continued from earlier lines.
fn flow(
    b: &[u8],
    mut i: usize,
    mut depth: usize,
    quote: Option<u8>,
    mut at_node: bool,
    n: isize,
    line_no: usize,
) -> Step {
    let open = |depth, quote, at_node| Cont::Flow {
        depth,
        quote,
        at_node,
        n,
    };
    // After a quoted scalar or a closed collection, `:` marks a value even with no space
    // (`{"a":1}`); after plain text it is part of the text (`[http://x]`).
    let mut json_key = false;
    if let Some(q) = quote {
        match close_quote(b, i, q) {
            None => return Ok(open(depth, Some(q), false)),
            Some(end) => {
                i = end + 1;
                at_node = false;
                json_key = true;
            }
        }
    }
    while i < b.len() {
        let c = b[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        if at_node {
            if let Some(found) = property(b, i, line_no) {
                return Err(found);
            }
        }
        let was_json_key = std::mem::replace(&mut json_key, false);
        match c {
            b'#' if i == 0 || is_space(b[i - 1]) => return Ok(open(depth, None, at_node)),
            b'"' | b'\'' if at_node => match close_quote(b, i + 1, c) {
                None => return Ok(open(depth, Some(c), false)),
                Some(end) => {
                    i = end + 1;
                    at_node = false;
                    json_key = true;
                    continue;
                }
            },
            b'[' | b'{' => {
                depth += 1;
                at_node = true;
            }
            b']' | b'}' => {
                depth -= 1;
                at_node = false;
                json_key = true;
                if depth == 0 {
                    return after_scalar(b, i + 1, n, line_no);
                }
            }
            b',' => at_node = true,
            b':' | b'?' if indicator_at(b, i) || (c == b':' && was_json_key) => at_node = true,
            b'!' if at_node => {
                while i < b.len() && !is_space(b[i]) && !is_flow_indicator(b[i]) {
                    i += 1;
                }
                continue;
            }
            _ => at_node = false,
        }
        i += 1;
    }
    Ok(open(depth, None, at_node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<(usize, &'static str, String)> {
        find(text).map(|f| (f.line, f.what, f.name))
    }

    #[test]
    fn anchors_and_aliases_where_nodes_start_are_found() {
        let cases: &[(&str, usize, &str, &str)] = &[
            ("a: &x 1\nb: *x\n", 1, "anchor", "x"),
            ("a: 1\nb: *x\n", 2, "alias", "x"),
            ("- &x {a: 1}\n", 1, "anchor", "x"),
            ("a: [b, \"c\", *d]\n", 1, "alias", "d"),
            ("a: {b: *x}\n", 1, "alias", "x"),
            ("a: {b: c, d: [e, &f g]}\n", 1, "anchor", "f"),
            ("a: [\n  b,\n  *c\n]\n", 3, "alias", "c"),
            ("a: {\"b\":*c}\n", 1, "alias", "c"),
            ("a: [\"multi\n line\", *c]\n", 2, "alias", "c"),
            ("- - &x a\n", 1, "anchor", "x"),
            ("--- &x\na: 1\n", 1, "anchor", "x"),
            ("base: 1\n<<: *base\n", 2, "alias", "base"),
            ("? &k key\n: v\n", 1, "anchor", "k"),
            ("\"key\": &v value\n", 1, "anchor", "v"),
            ("a: !!str &x v\n", 1, "anchor", "x"),
            ("key:    &anch\n  b: 1\n", 1, "anchor", "anch"),
            ("*x : y\n", 1, "alias", "x"),
            ("a:\n  - b: 'c'\n    d: *e\n", 3, "alias", "e"),
            ("a: |\n  text\nb: *x\n", 3, "alias", "x"),
            ("a: \"multi\n  line\" \nb: &y 2\n", 3, "anchor", "y"),
            ("a: plain\n  continued\nb: *z\n", 3, "alias", "z"),
        ];
        for (text, line, what, name) in cases {
            assert_eq!(
                at(text),
                Some((*line, *what, name.to_string())),
                "in {text:?}"
            );
        }
    }

    #[test]
    fn stars_and_ampersands_inside_text_are_not_nodes() {
        let cases = [
            "a: \"*x &y\"\n",
            "a: '*x'\nb: 'it''s *x'\n",
            "a: |\n  &x\n  *y\n  - *z\nb: 1\n",
            "a: >-\n  folded *x\n\n  &y\nb: 1\n",
            "a: text with *star and &amp\n  * continued *x\n  - &y\nb: 2\n",
            "a: \"multi\n  line *x\n  &y\"\nb: 1\n",
            "a: b # *x &y\n",
            "a: b#*x\n",
            "# - *x\na: 1\n",
            "verbs: ['*']\nresources: [\"*\"]\n",
            "args: [\"--a=*b\", \"&c\"]\n",
            "url: http://x/*y&z\n",
            "description: 'Pattern: *.example.com'\n",
            "- a*b\n- c&d\n",
            "a: [b*, c&]\n",
            "a: [b:*c, http://x]\n",
            "a: \"x\\\"*y\"\n",
            "--- |\n  *x\n",
        ];
        for text in cases {
            assert_eq!(at(text), None, "in {text:?}");
        }
    }

    #[test]
    fn the_cases_of_the_workspaces_file_scanner_are_found_too() {
        for (text, line) in [
            ("a: &x 1\n", 1),
            ("a: 1\nb: *x\n", 2),
            ("- *x\n", 1),
            ("a: [1, *x]\n", 1),
            ("a: {k: &x v}\n", 1),
            ("a: !!str &x v\n", 1),
            ("a: \"q\"\nb: *x\n", 2),
            ("a: \"multi\n  line\"\nb: *x\n", 3),
            ("a: 'it''s'\nb: &y z\n", 2),
        ] {
            assert_eq!(find(text).map(|f| f.line), Some(line), "{text:?}");
        }
        for text in [
            "a: \"*not\"\n",
            "a: '&not'\n",
            "a: x*y\n",
            "a: b&c\n",
            "# *comment\na: 1 # &also\n",
            "a: \"esc \\\" *still inside\"\n",
            "workspaces: [{id: demo, tenant: acme}]\n",
        ] {
            assert_eq!(find(text), None, "{text:?}");
        }
    }
}
