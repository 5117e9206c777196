//! Incremental splitting of a server-sent-events stream into raw events (a run of lines ended
//! by an empty line; lines end in CRLF, LF or CR), and reading an event's `data`.

/// How far [`event_end`] has looked into a buffer, kept between calls so every byte is
/// examined once however the stream is chunked.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scan {
    /// Start of the first line not yet known to be complete.
    pub line_start: usize,
    /// Bytes before this hold no line terminator past `line_start`.
    pub searched: usize,
}

/// Where the first complete event of `buf` ends. `None` until a blank line arrives.
pub(crate) fn event_end(buf: &[u8], scan: &mut Scan) -> Option<usize> {
    loop {
        let from = scan.line_start.max(scan.searched);
        let Some(rel) = buf[from..].iter().position(|&b| b == b'\r' || b == b'\n') else {
            scan.searched = buf.len();
            return None;
        };
        let j = from + rel;
        let term = if buf[j] == b'\r' {
            // A CR at the very end may be the first half of CRLF.
            match buf.get(j + 1) {
                None => {
                    scan.searched = j;
                    return None;
                }
                Some(b'\n') => 2,
                Some(_) => 1,
            }
        } else {
            1
        };
        let empty = j == scan.line_start;
        scan.line_start = j + term;
        scan.searched = scan.line_start;
        if empty {
            return Some(scan.line_start);
        }
    }
}

/// The lines of one raw event, each with its terminator.
pub(crate) fn lines(event: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < event.len() {
        match event[i] {
            b'\r' if event.get(i + 1) == Some(&b'\n') => {
                out.push(&event[start..i + 2]);
                i += 2;
                start = i;
            }
            b'\r' | b'\n' => {
                out.push(&event[start..i + 1]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < event.len() {
        out.push(&event[start..]);
    }
    out
}

/// A line without its terminator.
pub(crate) fn content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The value of a `data` line (one leading space removed), or `None` for other lines.
pub(crate) fn data_value(line: &[u8]) -> Option<&[u8]> {
    let c = content(line);
    let rest = if c == b"data" {
        &[][..]
    } else {
        c.strip_prefix(b"data:")?
    };
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

/// The event's data: its data lines joined by LF, as an SSE client dispatches it.
pub(crate) fn data(event: &[u8]) -> Option<Vec<u8>> {
    let values: Vec<&[u8]> = lines(event).into_iter().filter_map(data_value).collect();
    if values.is_empty() {
        return None;
    }
    Some(values.join(&b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_end_at_a_blank_line_with_any_terminator() {
        for stream in [
            &b"data: a\n\nrest"[..],
            b"data: a\r\n\r\nrest",
            b"data: a\r\rrest",
        ] {
            let mut scan = Scan::default();
            let end = event_end(stream, &mut scan).unwrap();
            assert_eq!(&stream[end..], b"rest");
        }
    }

    #[test]
    fn an_event_split_anywhere_is_found_once_complete() {
        let stream = b"event: message\r\ndata: {\"a\":1}\r\n\r\n";
        for cut in 0..stream.len() {
            let mut scan = Scan::default();
            assert_eq!(event_end(&stream[..cut], &mut scan), None, "cut {cut}");
            // resume with the whole stream from the kept position
            assert_eq!(
                event_end(stream, &mut scan),
                Some(stream.len()),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn data_lines_are_joined_and_other_fields_ignored() {
        let ev = b"id: 4\nevent: message\ndata: {\"a\":\ndata:1}\n: comment\n\n";
        assert_eq!(data(ev).unwrap(), b"{\"a\":\n1}");
        assert_eq!(data(b"event: ping\n\n"), None);
        assert_eq!(data(b"data\n\n").unwrap(), b"");
    }
}
