//! Capped command output: the first and last halves of the cap are kept and
//! the middle is counted, not stored.
//!
//! A test suite can print megabytes; what explains a failure is almost always
//! at the start (the setup error) or at the end (the failing assertion and the
//! summary), and the outcome is stored on the incident's timeline, so memory
//! and storage stay bounded whatever the command prints.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

/// stdout and stderr of a run, interleaved as written, within the cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CappedOutput {
    /// The start of the output; all of it when nothing was dropped.
    pub head: String,
    /// The end of the output; empty when nothing was dropped.
    pub tail: String,
    /// Bytes the command wrote in all.
    pub total_bytes: u64,
    /// Bytes between `head` and `tail` that were not kept.
    pub dropped_bytes: u64,
}

impl CappedOutput {
    /// Whether part of the output was dropped.
    pub fn is_truncated(&self) -> bool {
        self.dropped_bytes > 0
    }

    /// The kept output as one text, with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        if self.is_truncated() {
            format!(
                "{}\n[… {} bytes dropped …]\n{}",
                self.head, self.dropped_bytes, self.tail
            )
        } else {
            format!("{}{}", self.head, self.tail)
        }
    }
}

impl fmt::Display for CappedOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// Collects output as it arrives, keeping at most `cap` bytes.
#[derive(Debug)]
pub(super) struct OutputCollector {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total_bytes: u64,
}

impl OutputCollector {
    pub(super) fn new(cap: usize) -> OutputCollector {
        let head_cap = cap / 2;
        OutputCollector {
            head_cap,
            tail_cap: cap - head_cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            total_bytes: 0,
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.total_bytes += bytes.len() as u64;
        let n_head = (self.head_cap - self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..n_head]);
        let rest = &bytes[n_head..];
        if rest.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&rest[rest.len() - self.tail_cap..]);
        } else {
            let overflow = (self.tail.len() + rest.len()).saturating_sub(self.tail_cap);
            self.tail.drain(..overflow);
            self.tail.extend(rest);
        }
    }

    /// The kept bytes as text (invalid UTF-8 replaced). When bytes were
    /// dropped, a character cut in half at either side of the gap is dropped
    /// too (and counted) rather than shown as a replacement character.
    pub(super) fn finish(mut self) -> CappedOutput {
        let mut tail: Vec<u8> = self.tail.make_contiguous().to_vec();
        let kept = (self.head.len() + tail.len()) as u64;
        if kept == self.total_bytes {
            let mut all = self.head;
            all.extend_from_slice(&tail);
            return CappedOutput {
                head: String::from_utf8_lossy(&all).into_owned(),
                tail: String::new(),
                total_bytes: self.total_bytes,
                dropped_bytes: 0,
            };
        }
        let cut_head = incomplete_suffix_len(&self.head);
        self.head.truncate(self.head.len() - cut_head);
        let cut_tail = tail
            .iter()
            .take(3)
            .take_while(|&&byte| is_continuation(byte))
            .count();
        tail.drain(..cut_tail);
        let kept = (self.head.len() + tail.len()) as u64;
        CappedOutput {
            head: String::from_utf8_lossy(&self.head).into_owned(),
            tail: String::from_utf8_lossy(&tail).into_owned(),
            total_bytes: self.total_bytes,
            dropped_bytes: self.total_bytes - kept,
        }
    }
}

fn is_continuation(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

/// Length of a UTF-8 sequence at the end of `bytes` that was started but not
/// finished (0 if the end is a character boundary).
fn incomplete_suffix_len(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if is_continuation(byte) {
            continue;
        }
        let width = match byte {
            0b1100_0000..=0b1101_1111 => 2,
            0b1110_0000..=0b1110_1111 => 3,
            0b1111_0000..=0b1111_0111 => 4,
            _ => 1,
        };
        return if width > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::OutputCollector;

    /// Feeds `chunks` through a collector with `cap` and shows the result.
    fn check(cap: usize, chunks: &[&str], expect: Expect) {
        let mut collector = OutputCollector::new(cap);
        for chunk in chunks {
            collector.push(chunk.as_bytes());
        }
        let output = collector.finish();
        expect.assert_eq(&format!(
            "head={:?} tail={:?} total={} dropped={}",
            output.head, output.tail, output.total_bytes, output.dropped_bytes
        ));
    }

    /// Output within the cap is kept whole, in the head.
    #[test]
    fn within_cap_is_whole() {
        check(
            10,
            &["abc", "defg", "hij"],
            expect![[r#"head="abcdefghij" tail="" total=10 dropped=0"#]],
        );
    }

    /// Beyond the cap, the first and last halves are kept and the middle is
    /// counted, whatever the chunking.
    #[test]
    fn beyond_cap_keeps_head_and_tail() {
        check(
            6,
            &["0123456789"],
            expect![[r#"head="012" tail="789" total=10 dropped=4"#]],
        );
        check(
            6,
            &["01", "2345", "6", "78", "9"],
            expect![[r#"head="012" tail="789" total=10 dropped=4"#]],
        );
    }

    /// A character split by either edge of the gap is dropped whole, not shown
    /// as a replacement character; a character split between head and tail
    /// with nothing dropped stays intact.
    #[test]
    fn split_characters_are_dropped_whole() {
        check(
            6,
            &["abé", "xxxxx", "ébc"],
            expect![[r#"head="ab" tail="bc" total=13 dropped=9"#]],
        );
        check(
            4,
            &["aé", "b"],
            expect![[r#"head="aéb" tail="" total=4 dropped=0"#]],
        );
    }

    /// A zero cap keeps nothing and counts everything.
    #[test]
    fn zero_cap_drops_everything() {
        check(
            0,
            &["abc"],
            expect![[r#"head="" tail="" total=3 dropped=3"#]],
        );
    }
}
