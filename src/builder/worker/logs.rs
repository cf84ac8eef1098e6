//! The log of one attempt as the recipe writes it: lines gathered into chunks and sent to the
//! build's log stream while it runs, and kept whole (up to the limit) for the object stored at
//! the end. A chunk Redis refused is counted, so the log says it is incomplete instead of
//! silently missing lines (Buildkite's lesson).

use crate::builder::id::BuildId;
use crate::builder::queue::Queue;

/// Lines per chunk before it is sent without waiting for the next flush.
const CHUNK_LINES: usize = 200;

pub struct LogSink {
    queue: Queue,
    id: BuildId,
    attempt: u32,
    seq: u64,
    pending: String,
    pending_lines: usize,
    whole: Vec<u8>,
    max: u64,
    cut: bool,
    lost_chunks: u64,
}

impl LogSink {
    pub fn new(queue: Queue, id: BuildId, attempt: u32, max: u64) -> LogSink {
        LogSink {
            queue,
            id,
            attempt,
            seq: 0,
            pending: String::new(),
            pending_lines: 0,
            whole: Vec::new(),
            max,
            cut: false,
            lost_chunks: 0,
        }
    }

    /// Add one line (without its newline). Past the limit, lines are dropped and one notice
    /// says so.
    pub async fn line(&mut self, line: &str) {
        if self.cut {
            return;
        }
        let mut text = format!("{line}\n");
        if self.whole.len() as u64 + text.len() as u64 > self.max {
            self.cut = true;
            text = format!(
                "[appgear] the log reached its limit of {} bytes; later lines are not kept\n",
                self.max
            );
        }
        self.whole.extend_from_slice(text.as_bytes());
        self.pending.push_str(&text);
        self.pending_lines += 1;
        if self.pending_lines >= CHUNK_LINES {
            self.flush().await;
        }
    }

    /// Send what is gathered as the next chunk.
    pub async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let data = std::mem::take(&mut self.pending);
        self.pending_lines = 0;
        let seq = self.seq;
        self.seq += 1;
        if self
            .queue
            .append_log(&self.id, self.attempt, seq, &data)
            .await
            .is_err()
        {
            self.lost_chunks += 1;
        }
    }

    /// Whether every line reached the log stream and the whole log was kept.
    pub fn complete(&self) -> bool {
        !self.cut && self.lost_chunks == 0
    }

    pub fn bytes(&self) -> &[u8] {
        &self.whole
    }
}
