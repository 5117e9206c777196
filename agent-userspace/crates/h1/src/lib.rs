//! The HTTP/1 request framer Cordon puts in front of hyper.
//!
//! hyper normalises what it parses: it drops `Content-Length` when
//! `Transfer-Encoding` is present and only measures a header block that
//! arrives in pieces. The checks that must see the message as sent
//! (request smuggling, oversized heads) therefore run on the bytes, before
//! hyper reads them. To leave no room for the two readers to disagree, the
//! framer is a gate rather than a second opinion:
//! - each head is parsed once, by `httparse` with hyper's defaults (the
//!   parser hyper itself uses), so both see the same head end and headers;
//! - any head whose body framing is not unambiguous (both framing headers,
//!   several `Content-Length`s, a transfer coding other than a final
//!   `chunked`, an unparseable head, one over the limit) is refused, and
//!   no byte from its first one onward is handed to hyper;
//! - chunked bodies are followed strictly, so a body is never read as a
//!   head; a chunk line hyper might read another way is refused.
//!
//! What hyper receives is thus only messages whose framing both readers
//! compute the same way.
mod chunk;
mod framer;
mod problem;

pub use framer::Framer;
pub use problem::Problem;

/// hyper's default limit on the number of headers in a request.
pub const MAX_HEADERS: usize = 100;
