//! git's pkt-line framing: four hex digits giving the length of the line including those four
//! digits, then the payload; `0000` is a flush. Used for the receive-pack command list and for
//! the report-status answer.

use super::GitPushError;

/// The largest pkt-line git sends or accepts (length prefix included).
pub const MAX_PKT_LEN: usize = 65520;

/// One frame read from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pkt<'a> {
    Flush,
    Data(&'a [u8]),
}

/// Reads pkt-lines from the start of a buffer, tracking how far it got.
pub(crate) struct PktReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> PktReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The next frame. A length that runs past the buffer is `Truncated`: the caller saw only a
    /// prefix of the body and cannot know the rest of the list.
    pub(crate) fn next_pkt(&mut self) -> Result<Pkt<'a>, GitPushError> {
        let rest = &self.buf[self.pos..];
        let Some(head) = rest.get(..4) else {
            return Err(GitPushError::Truncated);
        };
        let text = std::str::from_utf8(head).map_err(|_| GitPushError::BadPktLength)?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GitPushError::BadPktLength);
        }
        let len = usize::from_str_radix(text, 16).map_err(|_| GitPushError::BadPktLength)?;
        match len {
            0 => {
                self.pos += 4;
                Ok(Pkt::Flush)
            }
            // 0001 (delim) and 0002 (response end) belong to protocol v2, which push does not
            // use; 3 is not a valid length at all.
            1..=4 => Err(GitPushError::BadPktLength),
            _ if len > MAX_PKT_LEN => Err(GitPushError::BadPktLength),
            _ => {
                let payload = rest.get(4..len).ok_or(GitPushError::Truncated)?;
                self.pos += len;
                Ok(Pkt::Data(payload))
            }
        }
    }
}

/// Append one pkt-line carrying `payload` (at most `MAX_PKT_LEN - 4` bytes).
pub(crate) fn write_pkt(out: &mut Vec<u8>, payload: &[u8]) {
    debug_assert!(payload.len() + 4 <= MAX_PKT_LEN);
    out.extend_from_slice(format!("{:04x}", payload.len() + 4).as_bytes());
    out.extend_from_slice(payload);
}

/// Append a flush packet.
pub(crate) fn write_flush(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0000");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_then_flush_and_reports_the_position() {
        let buf = b"0009abcd\n0000PACK";
        let mut r = PktReader::new(buf);
        assert_eq!(r.next_pkt().unwrap(), Pkt::Data(b"abcd\n"));
        assert_eq!(r.next_pkt().unwrap(), Pkt::Flush);
        assert_eq!(&buf[r.position()..], b"PACK");
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_truncated_not_garbage() {
        let mut r = PktReader::new(b"0010abc");
        assert!(matches!(r.next_pkt(), Err(GitPushError::Truncated)));
        let mut r = PktReader::new(b"00");
        assert!(matches!(r.next_pkt(), Err(GitPushError::Truncated)));
    }

    #[test]
    fn invalid_lengths_are_rejected() {
        for bad in [&b"zzzz"[..], b"0001", b"0003", b"fff1xxxx", b"+01a"] {
            let mut r = PktReader::new(bad);
            assert!(
                matches!(r.next_pkt(), Err(GitPushError::BadPktLength)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn written_lines_read_back() {
        let mut out = Vec::new();
        write_pkt(&mut out, b"unpack ok\n");
        write_flush(&mut out);
        assert_eq!(out, b"000eunpack ok\n0000");
        let mut r = PktReader::new(&out);
        assert_eq!(r.next_pkt().unwrap(), Pkt::Data(b"unpack ok\n"));
    }
}
