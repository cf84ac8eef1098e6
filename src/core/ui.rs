//! Terminal output: colours (honouring NO_COLOR), progress bars, tables and JSON.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Colours only when NO_COLOR is unset or empty (https://no-color.org) and both output streams
/// are terminals: tables go to stdout and messages to stderr, and either may be piped.
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stderr().is_terminal()
        && std::io::stdout().is_terminal()
}

/// Characters a cell shows, leaving out colour escape sequences.
fn visible_width(s: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

fn paint(code: &str, s: &str) -> String {
    if color_enabled() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

pub fn red(s: &str) -> String {
    paint("31", s)
}
pub fn green(s: &str) -> String {
    paint("32", s)
}
pub fn yellow(s: &str) -> String {
    paint("33", s)
}
pub fn bold(s: &str) -> String {
    paint("1", s)
}
pub fn dim(s: &str) -> String {
    paint("2", s)
}

/// A line on stdout (results, tables, JSON). A closed pipe (`appgear status | head -1`) or a
/// full disk must not turn into a panic (exit 101) as with `println!`: the line is dropped and
/// the command ends with its own exit code.
pub fn out(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// A line on stderr (messages, errors, progress), with the same care as [`out`].
pub fn err(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Text on stdout as it comes (a log being followed), flushed, with no line break added.
pub fn out_text(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// A question on stderr, without a line break, flushed so it shows before the answer is read.
pub fn prompt(text: impl std::fmt::Display) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = write!(e, "{text}");
    let _ = e.flush();
}

/// A one-line step message on stderr (stdout is kept for results and JSON).
pub fn step(msg: &str) {
    err(format_args!("{} {msg}", green("•")));
}

pub fn warn(msg: &str) {
    err(format_args!("{} {msg}", yellow("warning:")));
}

/// A spinner for work of unknown length; hidden when stderr is not a terminal.
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let pb = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A byte-count bar (image pulls); hidden when stderr is not a terminal.
pub fn bytes_bar(multi: &indicatif::MultiProgress, msg: impl Into<String>) -> ProgressBar {
    let pb = if std::io::stderr().is_terminal() {
        multi.add(ProgressBar::new(0))
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template("{msg:30} [{bar:30}] {bytes}/{total_bytes} {elapsed:.dim}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.into());
    pb
}

/// Print rows as a left-aligned table with a header; column widths from the widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| visible_width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(visible_width(cell));
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(widths[i] - visible_width(c) + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

/// Pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> crate::core::error::Result<()> {
    let s = serde_json::to_string_pretty(value)
        .map_err(|e| crate::core::error::Error::internal(format!("cannot encode JSON: {e}")))?;
    out(s);
    Ok(())
}

/// Progress of several named items (services) at once: a spinner line each on a terminal, plain
/// lines otherwise (CI logs, pipes), so the output is readable either way.
pub struct Tracker {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<std::collections::HashMap<String, ProgressBar>>,
    finished: std::sync::Mutex<std::collections::HashSet<String>>,
    tty: bool,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracker {
    pub fn new() -> Self {
        Tracker {
            multi: indicatif::MultiProgress::new(),
            bars: Default::default(),
            finished: Default::default(),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn bar(&self, name: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(name.to_string())
            .or_insert_with(|| {
                let pb = self.multi.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:24} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.set_prefix(name.to_string());
                pb.enable_steady_tick(Duration::from_millis(120));
                pb
            })
            .clone()
    }

    /// A state change of `name`.
    pub fn say(&self, name: &str, msg: &str) {
        if self.tty {
            self.bar(name).set_message(msg.to_string());
        } else {
            err(format_args!("• {name}: {msg}"));
        }
    }

    /// `name` reached its final good state.
    pub fn done(&self, name: &str, msg: &str) {
        let first = self
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(format!("{name}\0{msg}"));
        if !first {
            return;
        }
        if self.tty {
            let pb = self.bar(name);
            pb.set_style(
                ProgressStyle::with_template("{prefix:.green} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_prefix(format!("✓ {name:22}"));
            pb.finish_with_message(msg.to_string());
        } else {
            err(format_args!("✓ {name}: {msg}"));
        }
    }

    /// A byte bar for an image pull.
    pub fn pull_bar(&self, image: &str) -> ProgressBar {
        if self.tty {
            bytes_bar(&self.multi, format!("pulling {image}"))
        } else {
            err(format_args!("• pulling {image}"));
            ProgressBar::hidden()
        }
    }

    /// Remove spinners that never finished (on error), so the error line stands alone.
    pub fn clear(&self) {
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for pb in bars.values() {
            if !pb.is_finished() {
                pb.abandon();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let t = super::table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "A     BB\nlong  x\n");
        let coloured = super::table(
            &["S", "H"],
            &[
                vec!["\x1b[32mok\x1b[0m".into(), "x".into()],
                vec!["fail".into(), "y".into()],
            ],
        );
        assert_eq!(coloured, "S     H\n\x1b[32mok\x1b[0m    x\nfail  y\n");
    }
}
