//! Prometheus counters and gauges, rendered in the text exposition format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub active_sessions: AtomicI64,
    pub connections_total: AtomicU64,
    pub rejected_bad_token: AtomicU64,
    pub rejected_busy: AtomicU64,
    pub loaded_documents: AtomicI64,
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub malformed_frames: AtomicU64,
    pub queue_overflows: AtomicU64,
    pub dropped_readonly_writes: AtomicU64,
    pub backplane_published: AtomicU64,
    pub backplane_received: AtomicU64,
    /// Rooms that reloaded their log from storage because backplane messages were lost.
    pub backplane_resyncs: AtomicU64,
    pub redis_errors: AtomicU64,
    /// Connections that are not editor sessions (before the upgrade, plain HTTP, refusals).
    pub pending_connections: AtomicI64,
    pub header_timeouts: AtomicU64,
    pub pending_evicted: AtomicU64,
    pub pending_refused: AtomicU64,
    pub accept_errors: AtomicU64,
    /// Presence entries dropped because their connection already announced the most client ids.
    pub client_ids_refused: AtomicU64,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A gauge that goes down again when dropped (a session, a loaded document).
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl<'a> GaugeGuard<'a> {
    pub fn new(g: &'a AtomicI64) -> Self {
        g.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(g)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn render(&self, workspace: &str) -> String {
        let l = format!("workspace_id=\"{}\"", escape(workspace));
        let mut out = String::new();
        let g = |v: &AtomicI64| v.load(Ordering::Relaxed);
        let c = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, i128)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        };
        metric(
            "multiplayer_active_sessions",
            "gauge",
            "Open editor WebSocket sessions.",
            &[(l.clone(), g(&self.active_sessions).into())],
        );
        metric(
            "multiplayer_connections_total",
            "counter",
            "WebSocket connections accepted since start.",
            &[(l.clone(), c(&self.connections_total).into())],
        );
        metric(
            "multiplayer_rejected_connections_total",
            "counter",
            "Connections refused, by reason.",
            &[
                (
                    format!("{l},reason=\"bad_token\""),
                    c(&self.rejected_bad_token).into(),
                ),
                (
                    format!("{l},reason=\"busy\""),
                    c(&self.rejected_busy).into(),
                ),
            ],
        );
        metric(
            "multiplayer_loaded_documents",
            "gauge",
            "Documents held in memory.",
            &[(l.clone(), g(&self.loaded_documents).into())],
        );
        metric(
            "multiplayer_messages_total",
            "counter",
            "Protocol messages, by direction.",
            &[
                (
                    format!("{l},direction=\"received\""),
                    c(&self.messages_received).into(),
                ),
                (
                    format!("{l},direction=\"sent\""),
                    c(&self.messages_sent).into(),
                ),
            ],
        );
        metric(
            "multiplayer_malformed_frames_total",
            "counter",
            "Frames that did not decode; each closed its connection.",
            &[(l.clone(), c(&self.malformed_frames).into())],
        );
        metric(
            "multiplayer_queue_overflows_total",
            "counter",
            "Connections closed because they could not keep up.",
            &[(l.clone(), c(&self.queue_overflows).into())],
        );
        metric(
            "multiplayer_readonly_writes_dropped_total",
            "counter",
            "Updates sent with a read-only token, neither applied nor relayed.",
            &[(l.clone(), c(&self.dropped_readonly_writes).into())],
        );
        metric(
            "multiplayer_backplane_messages_total",
            "counter",
            "Messages exchanged with other gateway replicas, by direction.",
            &[
                (
                    format!("{l},direction=\"published\""),
                    c(&self.backplane_published).into(),
                ),
                (
                    format!("{l},direction=\"received\""),
                    c(&self.backplane_received).into(),
                ),
            ],
        );
        metric(
            "multiplayer_backplane_resyncs_total",
            "counter",
            "Rooms reloaded from storage because backplane messages were lost (a full inbox, \
             or the subscriber reconnected).",
            &[(l.clone(), c(&self.backplane_resyncs).into())],
        );
        metric(
            "multiplayer_redis_errors_total",
            "counter",
            "Failed Redis operations.",
            &[(l.clone(), c(&self.redis_errors).into())],
        );
        metric(
            "multiplayer_pending_connections",
            "gauge",
            "Connections that are not editor sessions: before the upgrade, plain HTTP, refusals.",
            &[(l.clone(), g(&self.pending_connections).into())],
        );
        metric(
            "multiplayer_pending_closed_total",
            "counter",
            "Connections closed before becoming a session, by reason.",
            &[
                (
                    format!("{l},reason=\"header_timeout\""),
                    c(&self.header_timeouts).into(),
                ),
                (
                    format!("{l},reason=\"evicted\""),
                    c(&self.pending_evicted).into(),
                ),
                (
                    format!("{l},reason=\"full\""),
                    c(&self.pending_refused).into(),
                ),
            ],
        );
        metric(
            "multiplayer_accept_errors_total",
            "counter",
            "Failed accepts (at the open-file limit, for instance).",
            &[(l.clone(), c(&self.accept_errors).into())],
        );
        metric(
            "multiplayer_client_ids_refused_total",
            "counter",
            "Presence entries dropped: their connection had announced --max-client-ids already.",
            &[(l, c(&self.client_ids_refused).into())],
        );
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_scaling_metric_with_workspace_label() {
        let m = Metrics::default();
        let _s = GaugeGuard::new(&m.active_sessions);
        let text = m.render("w1");
        assert!(text.contains("multiplayer_active_sessions{workspace_id=\"w1\"} 1\n"));
        assert!(text.contains("# TYPE multiplayer_queue_overflows_total counter"));
    }
}
