//! Scrubbing an injected secret from the WebSocket frames (RFC 6455) an upstream sends the
//! agent after an upgrade that carried the secret: a server that reflects the handshake's
//! headers into a message must not hand the agent the key.
//!
//! The frames are read as they stream, never collected: each frame's head passes through as
//! it was, and every spelling found in a message's payload is overwritten with a marker of
//! the same length, so no frame's length changes. A message may be fragmented across frames
//! (with control frames between), so the search runs over the message's payload as one
//! sequence; the only bytes held back are a tail that could begin a spelling, and only until
//! the next payload bytes say whether it does. A message's end releases everything: a
//! message is answered whole, never held for the next one.
//!
//! What cannot be searched is refused, not passed: a masked frame, or one with a reserved
//! bit set (a compressed message, or an extension nobody negotiated, since Cordon strips the
//! agent's offer of extensions on such an upgrade), an unknown opcode, a malformed control
//! frame, or a continuation outside a message.
use std::sync::Arc;

use super::Echoes;

/// Why a stream cannot be scrubbed; the connection is then cut, and what was held is dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unscrubbable {
    #[error("the upstream sent a masked frame, which hides its payload from the search")]
    Masked,
    #[error(
        "the upstream sent a frame with reserved bits {0:#x} (compressed, or an extension \
         that was not negotiated)"
    )]
    Reserved(u8),
    #[error("the upstream sent a frame with unknown opcode {0:#x}")]
    Opcode(u8),
    #[error("the upstream sent a fragmented or oversized control frame")]
    Control,
    #[error(
        "the upstream sent more than {MAX_BEHIND} frames inside one message without the \
         payload that would release the bytes held before them"
    )]
    Stalled,
    #[error(
        "the upstream sent a frame out of sequence (a continuation outside a message, or a new message inside one)"
    )]
    Sequence,
}

/// Frame heads and control frames that may wait behind held bytes: a held tail is at most
/// one spelling long, and a server that sends this many frames without payload inside one
/// message is not answering it.
const MAX_BEHIND: usize = 256;

enum State {
    /// Reading a frame's head: its bytes so far.
    Head(Vec<u8>),
    /// In a data frame's payload: bytes to go, and whether the frame ends its message.
    Data { left: u64, fin: bool },
    /// A control frame (at most 125 bytes of payload), collected whole before it is scrubbed.
    Control { frame: Vec<u8>, left: usize },
}

pub struct FrameScrubber {
    echoes: Arc<Echoes>,
    state: State,
    in_message: bool,
    /// The current message's payload not yet passed on: a tail that could begin a spelling.
    held: Vec<u8>,
    /// Frame heads and whole control frames that arrived behind held bytes: each goes out
    /// right before the held byte at its offset.
    behind: Vec<(usize, Vec<u8>)>,
}

impl FrameScrubber {
    pub fn new(echoes: Arc<Echoes>) -> FrameScrubber {
        FrameScrubber {
            echoes,
            state: State::Head(Vec::with_capacity(10)),
            in_message: false,
            held: Vec::new(),
            behind: Vec::new(),
        }
    }

    /// Takes the next bytes of the stream, and appends to `out` what may now go to the agent.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), Unscrubbable> {
        while !input.is_empty() {
            match &mut self.state {
                State::Head(head) => {
                    let want = head_len(head)?;
                    let n = (want - head.len()).min(input.len());
                    head.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if head.len() == head_len(head)? {
                        let head = std::mem::take(head);
                        self.start_frame(head, out)?;
                    }
                }
                State::Data { left, fin } => {
                    let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                    *left -= n as u64;
                    let (ends, fin) = (*left == 0, *fin);
                    self.payload(&input[..n], out);
                    input = &input[n..];
                    if ends {
                        self.end_frame(fin, out);
                    }
                }
                State::Control { frame, left } => {
                    let n = (*left).min(input.len());
                    frame.extend_from_slice(&input[..n]);
                    *left -= n;
                    input = &input[n..];
                    if *left == 0 {
                        let frame = std::mem::take(frame);
                        self.control(frame, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The stream ended: what is held goes out (a spelling cut off by the end cannot be
    /// completed).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.release(self.held.len(), out);
    }

    fn start_frame(&mut self, head: Vec<u8>, out: &mut Vec<u8>) -> Result<(), Unscrubbable> {
        let fin = head[0] & 0x80 != 0;
        let opcode = head[0] & 0x0f;
        let len = payload_len(&head);
        self.state = State::Head(Vec::with_capacity(10));
        match opcode {
            0x8..=0xa => {
                if !fin || len > 125 {
                    return Err(Unscrubbable::Control);
                }
                // At most 125, checked above.
                let left = len as usize;
                if left == 0 {
                    self.control(head, out)?;
                } else {
                    self.state = State::Control { frame: head, left };
                }
            }
            0x0 if !self.in_message => return Err(Unscrubbable::Sequence),
            0x1 | 0x2 if self.in_message => return Err(Unscrubbable::Sequence),
            0x0..=0x2 => {
                self.in_message = true;
                self.pass(head, out)?;
                if len == 0 {
                    self.end_frame(fin, out);
                } else {
                    self.state = State::Data { left: len, fin };
                }
            }
            other => return Err(Unscrubbable::Opcode(other)),
        }
        Ok(())
    }

    /// Payload bytes of the current message: every spelling they complete is masked, and
    /// all but a tail that could begin one goes out.
    fn payload(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.held.extend_from_slice(bytes);
        let redactor = self.echoes.redactor();
        redactor.mask_in_place(&mut self.held);
        let open = redactor.open_prefix(&self.held);
        self.release(self.held.len() - open, out);
    }

    fn end_frame(&mut self, fin: bool, out: &mut Vec<u8>) {
        self.state = State::Head(Vec::with_capacity(10));
        if fin {
            self.in_message = false;
            self.release(self.held.len(), out);
        }
    }

    /// A whole control frame (a close reason, a ping's payload), scrubbed on its own: it is
    /// never fragmented.
    fn control(&mut self, mut frame: Vec<u8>, out: &mut Vec<u8>) -> Result<(), Unscrubbable> {
        self.state = State::Head(Vec::with_capacity(10));
        // A control frame's head is two bytes: its payload is at most 125.
        self.echoes.redactor().mask_in_place(&mut frame[2..]);
        self.pass(frame, out)
    }

    /// Bytes outside any message's payload: out now, unless payload bytes are held before them.
    fn pass(&mut self, bytes: Vec<u8>, out: &mut Vec<u8>) -> Result<(), Unscrubbable> {
        if self.held.is_empty() {
            out.extend_from_slice(&bytes);
        } else if self.behind.len() == MAX_BEHIND {
            return Err(Unscrubbable::Stalled);
        } else {
            self.behind.push((self.held.len(), bytes));
        }
        Ok(())
    }

    /// The first `n` held bytes go out, with what arrived between them.
    fn release(&mut self, n: usize, out: &mut Vec<u8>) {
        let mut at = 0;
        let mut still = Vec::new();
        for (offset, bytes) in self.behind.drain(..) {
            if offset <= n {
                out.extend_from_slice(&self.held[at..offset]);
                out.extend_from_slice(&bytes);
                at = offset;
            } else {
                still.push((offset - n, bytes));
            }
        }
        out.extend_from_slice(&self.held[at..n]);
        self.held.drain(..n);
        self.behind = still;
    }
}

/// How long the head begun in `head` is, once its first two bytes say; a head that cannot
/// be scrubbed is refused as soon as they do.
fn head_len(head: &[u8]) -> Result<usize, Unscrubbable> {
    if head.len() < 2 {
        return Ok(2);
    }
    let reserved = head[0] & 0x70;
    if reserved != 0 {
        return Err(Unscrubbable::Reserved(reserved));
    }
    if head[1] & 0x80 != 0 {
        return Err(Unscrubbable::Masked);
    }
    Ok(match head[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    })
}

/// The payload length a complete, unmasked head gives.
fn payload_len(head: &[u8]) -> u64 {
    match head[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([head[2], head[3]])),
        127 => u64::from_be_bytes(head[2..10].try_into().expect("a 10-byte head")),
        n => u64::from(n),
    }
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
