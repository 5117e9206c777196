//! Streaming replies on the control socket, for answers too long (export)
//! or open-ended (`tail -f`) for one line. After the request the daemon
//! writes any number of frames, one JSON object per line:
//!
//! ```text
//! {"line":"#41 2025-05-01T12:00:00Z DENY request ..."}   one output line, verbatim
//! {"keepalive":true}                                    nothing new (lets the daemon notice a gone client)
//! {"ok":true,"end":true,"body":{...}}                   done
//! {"ok":false,"end":true,"error":"..."}                 failed (possibly after some lines)
//! ```
//!
//! A plain one-line `Reply` (e.g. a refusal) also ends the stream. A stream
//! that stops without an end frame is an error: the output is incomplete.
use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    client::{ClientError, connect},
    proto::Request,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keepalive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub body: Value,
}

impl Frame {
    pub fn line(text: String) -> Frame {
        Frame {
            line: Some(text),
            ..Frame::default()
        }
    }

    pub fn keepalive() -> Frame {
        Frame {
            keepalive: true,
            ..Frame::default()
        }
    }

    pub fn done(body: Value) -> Frame {
        Frame {
            ok: Some(true),
            end: true,
            body,
            ..Frame::default()
        }
    }

    pub fn failed(error: impl Into<String>) -> Frame {
        Frame {
            ok: Some(false),
            end: true,
            error: Some(error.into()),
            ..Frame::default()
        }
    }

    /// The frame as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut buf = serde_json::to_vec(self)
            .unwrap_or_else(|_| br#"{"ok":false,"end":true,"error":"unencodable frame"}"#.to_vec());
        buf.push(b'\n');
        buf
    }

    fn is_final(&self) -> bool {
        self.end || self.ok.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Writing the received lines out failed (e.g. a closed pipe).
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
    #[error("the daemon closed the stream before it was complete")]
    Truncated,
}

/// Sends `req` and hands every streamed line to `on_line` until the end
/// frame, whose body it returns. `idle` bounds the wait for each frame.
pub fn call_stream(
    socket: &Path,
    req: &Request,
    idle: Duration,
    mut on_line: impl FnMut(&str) -> std::io::Result<()>,
) -> Result<Value, StreamError> {
    let mut stream = connect(socket)?;
    let io = |source| ClientError::Io {
        path: socket.into(),
        source,
    };
    stream.set_read_timeout(Some(idle)).map_err(io)?;
    let mut line = serde_json::to_vec(req).map_err(|e| ClientError::BadReply(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut buf = String::new();
    loop {
        buf.clear();
        if reader.read_line(&mut buf).map_err(io)? == 0 {
            return Err(StreamError::Truncated);
        }
        let frame: Frame =
            serde_json::from_str(&buf).map_err(|e| ClientError::BadReply(e.to_string()))?;
        if let Some(text) = &frame.line {
            on_line(text).map_err(StreamError::Output)?;
        }
        if frame.is_final() {
            return match frame.ok {
                Some(true) => Ok(frame.body),
                _ => Err(ClientError::Refused(
                    frame.error.unwrap_or_else(|| "request refused".into()),
                )
                .into()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::Reply;

    #[test]
    fn frames_round_trip_and_only_end_frames_are_final() {
        for (f, last) in [
            (Frame::line("#1 x".into()), false),
            (Frame::keepalive(), false),
            (Frame::done(serde_json::json!({"records": 3})), true),
            (Frame::failed("disk"), true),
        ] {
            let bytes = f.to_line();
            assert_eq!(bytes.last(), Some(&b'\n'));
            let back: Frame = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back, f);
            assert_eq!(back.is_final(), last);
        }
    }

    #[test]
    fn a_plain_refusal_reply_ends_the_stream() {
        let reply = serde_json::to_vec(&Reply::err("needs root")).unwrap();
        let f: Frame = serde_json::from_slice(&reply).unwrap();
        assert!(f.is_final());
        assert_eq!(f.ok, Some(false));
        assert_eq!(f.error.as_deref(), Some("needs root"));
    }

    #[test]
    fn a_line_that_looks_like_an_end_frame_stays_data() {
        let f = Frame::line(r#"{"ok":true,"end":true}"#.into());
        let back: Frame = serde_json::from_slice(&f.to_line()).unwrap();
        assert!(!back.is_final());
    }
}
