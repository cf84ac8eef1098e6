//! One line per event on stderr, with a UTC timestamp; the gateway runs as a container, so its
//! log collector reads stderr.

pub fn info(msg: impl std::fmt::Display) {
    line("INFO", msg);
}

pub fn warn(msg: impl std::fmt::Display) {
    line("WARN", msg);
}

fn line(level: &str, msg: impl std::fmt::Display) {
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    crate::core::ui::err(format_args!("{now} {level} {msg}"));
}
