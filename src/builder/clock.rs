//! Wall-clock times as the builder stores them: milliseconds since the epoch in Redis (compared
//! across processes and hosts), RFC 3339 in what people read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-30T14:00:00.000Z`.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(rfc3339(61_500), "1970-01-01T00:01:01.500Z");
        assert!(now_ms() > 1_700_000_000_000);
    }
}
