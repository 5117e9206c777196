//! A strict reader of chunked request bodies: it only has to know where the
//! body ends, and it refuses every chunk line hyper might read another way
//! (whitespace after the size, a bare LF, an oversized size), so the next
//! head starts where hyper's does.
use crate::Problem;

/// Longest chunk-size line (size and extensions) and trailer section kept.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) enum Chunk {
    /// Reading the hex size; `digits` so far, `value` so far.
    Size {
        digits: u8,
        value: u64,
    },
    /// In `;ext` after the size, `len` bytes of it seen.
    Extension {
        size: u64,
        len: usize,
    },
    /// Seen the CR ending the size line.
    SizeLf {
        size: u64,
    },
    Data(u64),
    /// After a chunk's data: expecting CR (false) or LF (true).
    DataEnd(bool),
    /// After the last chunk: trailer lines until an empty one. `line` is
    /// the length of the current line, `total` of the whole section.
    Trailer {
        line: usize,
        cr: bool,
        total: usize,
    },
}

impl Chunk {
    pub(crate) fn start() -> Chunk {
        Chunk::Size {
            digits: 0,
            value: 0,
        }
    }

    /// Consumes body bytes. Returns how many were used and whether the body
    /// ended (then the rest of `data` is the next head).
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<(usize, bool), Problem> {
        let mut used = 0;
        while used < data.len() {
            if let Chunk::Data(n) = self {
                let take = (*n).min((data.len() - used) as u64);
                *n -= take;
                used += take as usize;
                if *n == 0 {
                    *self = Chunk::DataEnd(false);
                }
                continue;
            }
            let b = data[used];
            used += 1;
            if self.step(b)? {
                return Ok((used, true));
            }
        }
        Ok((used, false))
    }

    /// One byte outside chunk data; true when the body has ended.
    fn step(&mut self, b: u8) -> Result<bool, Problem> {
        match self {
            Chunk::Size { digits, value } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if *digits == 16 {
                        return Err(Problem::BadChunk("chunk size too large"));
                    }
                    let v = (b as char).to_digit(16).unwrap_or(0) as u64;
                    *value = (*value << 4) | v;
                    *digits += 1;
                }
                b';' if *digits > 0 => {
                    *self = Chunk::Extension {
                        size: *value,
                        len: 1,
                    }
                }
                b'\r' if *digits > 0 => *self = Chunk::SizeLf { size: *value },
                _ => return Err(Problem::BadChunk("invalid chunk size line")),
            },
            Chunk::Extension { size, len } => match b {
                b'\r' => *self = Chunk::SizeLf { size: *size },
                b'\n' => return Err(Problem::BadChunk("bare LF in a chunk extension")),
                _ => {
                    *len += 1;
                    if *len > MAX_LINE {
                        return Err(Problem::BadChunk("chunk extension too long"));
                    }
                }
            },
            Chunk::SizeLf { size } => {
                if b != b'\n' {
                    return Err(Problem::BadChunk("chunk size line not ended by CRLF"));
                }
                *self = if *size == 0 {
                    Chunk::Trailer {
                        line: 0,
                        cr: false,
                        total: 0,
                    }
                } else {
                    Chunk::Data(*size)
                };
            }
            Chunk::Data(_) => unreachable!("chunk data is consumed in bulk by feed"),
            Chunk::DataEnd(seen_cr) => match (b, *seen_cr) {
                (b'\r', false) => *seen_cr = true,
                (b'\n', true) => *self = Chunk::start(),
                _ => return Err(Problem::BadChunk("chunk data not followed by CRLF")),
            },
            Chunk::Trailer { line, cr, total } => {
                *total += 1;
                if *total > MAX_TRAILERS {
                    return Err(Problem::BadChunk("trailer section too large"));
                }
                match (b, *cr) {
                    (b'\r', false) => *cr = true,
                    (b'\n', true) => {
                        if *line == 0 {
                            return Ok(true);
                        }
                        *line = 0;
                        *cr = false;
                    }
                    (b'\n', false) => return Err(Problem::BadChunk("bare LF in a trailer")),
                    (_, true) => return Err(Problem::BadChunk("bare CR in a trailer")),
                    _ => *line += 1,
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&[u8]]) -> Result<Option<usize>, Problem> {
        let mut c = Chunk::start();
        let mut offset = 0;
        for p in parts {
            let (used, done) = c.feed(p)?;
            if done {
                return Ok(Some(offset + used));
            }
            offset += p.len();
        }
        Ok(None)
    }

    #[test]
    fn a_body_split_anywhere_ends_at_the_same_byte() {
        let whole: &[u8] = b"4;name=v\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nGET";
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(
                body(&[a, b]).unwrap(),
                Some(whole.len() - 3),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn lines_hyper_might_read_differently_are_refused() {
        for bad in [
            &b"4 \r\nWiki\r\n0\r\n\r\n"[..],
            b"4\nWiki\r\n0\r\n\r\n",
            b"4\r\nWiki\n0\r\n\r\n",
            b"\r\n",
            b"x\r\n",
            b"11111111111111111\r\n",
            b"0\r\nX: 1\n\r\n",
            b"4;a\nb\r\nWiki\r\n0\r\n\r\n",
        ] {
            assert!(body(&[bad]).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn an_unfinished_body_is_not_ended() {
        assert_eq!(body(&[b"4\r\nWi"]).unwrap(), None);
        assert_eq!(body(&[b"0\r\n"]).unwrap(), None);
    }
}
