//! An upgraded connection whose handshake carried an injected credential: the upstream's
//! bytes after the switch are WebSocket frames, scrubbed of the secret as they stream
//! ([`FrameScrubber`]). Only a WebSocket can be scrubbed, and only without extensions (a
//! compressed message hides the secret's bytes), so the request asks for none, an answer
//! that switches to anything else is withheld, and a frame that cannot be searched cuts
//! the connection.
use std::{io, sync::Arc};

use http::{HeaderMap, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{
    Echoes,
    frames::{FrameScrubber, Unscrubbable},
};

/// The request's offer of extensions (`permessage-deflate`) is dropped: the upstream then
/// sends its messages as they are.
pub fn no_extensions(request: &mut HeaderMap) {
    request.remove(header::SEC_WEBSOCKET_EXTENSIONS);
}

/// Why a credential must not go out on this upgrade, if it must not: the bytes after the
/// switch of any protocol but a WebSocket could not be scrubbed of it.
pub fn unscrubbable_request(request: &HeaderMap) -> Option<String> {
    let protocol = request
        .get(header::UPGRADE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let websocket = protocol
        .split(',')
        .all(|p| p.trim().eq_ignore_ascii_case("websocket"));
    (!websocket).then(|| {
        format!(
            "an injected credential goes on an upgrade to a WebSocket only, whose frames \
             Cordon scrubs of it; this request asked to upgrade to {protocol:?}"
        )
    })
}

/// Why the upstream's switch cannot be scrubbed, if it cannot: it named an extension
/// though none was offered. The reason quotes the upstream, so it is scrubbed too.
pub fn unscrubbable_switch(response: &HeaderMap, echoes: &Echoes) -> Option<String> {
    let named = response.get(header::SEC_WEBSOCKET_EXTENSIONS)?;
    let why = format!(
        "the upstream switched with extensions {:?} though none was offered; the frames of a \
         WebSocket whose handshake carried an injected credential are scrubbed of it, and \
         extended (compressed) ones cannot be, so it was withheld",
        String::from_utf8_lossy(named.as_bytes())
    );
    Some(echoes.scrub_text(&why))
}

/// Splices the two sides once both have switched: the agent's bytes go up as they are, the
/// upstream's come down scrubbed. A frame that cannot be searched ends both directions,
/// dropping what was held. (Spawned by the caller as a live connection the kill switch can
/// cut.)
pub async fn splice(client: OnUpgrade, upstream: OnUpgrade, echoes: Arc<Echoes>, agent: String) {
    let (Ok(c), Ok(u)) = tokio::join!(client, upstream) else {
        return;
    };
    let (mut client_read, mut client_write) = tokio::io::split(TokioIo::new(c));
    let (mut up_read, mut up_write) = tokio::io::split(TokioIo::new(u));
    let up = async {
        tokio::io::copy(&mut client_read, &mut up_write).await?;
        up_write.shutdown().await.map_err(Ended::from)
    };
    let down = scrub_down(&mut up_read, &mut client_write, FrameScrubber::new(echoes));
    match tokio::try_join!(up, down) {
        Ok(_) => {}
        Err(Ended::Cut(why)) => tracing::warn!(agent = %agent, "WebSocket cut: {why}"),
        Err(Ended::Io(e)) => tracing::debug!(agent = %agent, "WebSocket ended: {e}"),
    }
}

/// Why a scrubbed upgrade ended early.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The upstream sent what cannot be searched: both directions are cut.
    #[error(transparent)]
    Cut(#[from] Unscrubbable),
}

/// The upstream's bytes to the agent through `scrubber`, until the upstream ends.
async fn scrub_down<R, W>(
    from: &mut R,
    to: &mut W,
    mut scrubber: FrameScrubber,
) -> Result<(), Ended>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(buf.len());
    loop {
        let n = from.read(&mut buf).await?;
        out.clear();
        if n == 0 {
            scrubber.finish(&mut out);
            to.write_all(&out).await?;
            return Ok(to.shutdown().await?);
        }
        scrubber.feed(&buf[..n], &mut out)?;
        if !out.is_empty() {
            to.write_all(&out).await?;
            // A TLS or HTTP/2 writer may keep bytes buffered until flushed, and the agent
            // waits for them while the upstream is quiet.
            to.flush().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use cordon_connectors::Spellings;
    use cordon_vault::Secret;
    use http::HeaderValue;

    use super::*;

    #[test]
    fn a_credential_goes_on_a_websocket_upgrade_only() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert_eq!(unscrubbable_request(&h), None);
        for other in ["h2c", "tcp", "SPDY/3.1", "websocket, h2c"] {
            h.insert(header::UPGRADE, HeaderValue::from_static(other));
            assert!(unscrubbable_request(&h).is_some(), "{other}");
        }
    }

    #[test]
    fn a_switch_naming_an_extension_is_withheld_and_its_reason_scrubbed() {
        let echoes = Echoes::new(Secret::from_slice(b"tok_0123456789"), Spellings::default());
        let mut h = HeaderMap::new();
        assert_eq!(unscrubbable_switch(&h, &echoes), None);
        h.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static("permessage-deflate; x=tok_0123456789"),
        );
        let why = unscrubbable_switch(&h, &echoes).unwrap();
        assert!(why.contains("permessage-deflate"), "{why}");
        assert!(!why.contains("tok_0123456789"), "{why}");
    }

    #[tokio::test]
    async fn the_upstreams_frames_reach_the_agent_scrubbed_and_ended() {
        let secret = b"tok_0123456789abcdef";
        let echoes = Arc::new(Echoes::new(
            Secret::from_slice(secret),
            Spellings::default(),
        ));
        let (mut upstream, mut from) = tokio::io::duplex(64);
        let (mut to, mut agent) = tokio::io::duplex(64);
        let pump = tokio::spawn(async move {
            scrub_down(&mut from, &mut to, FrameScrubber::new(echoes)).await
        });
        let mut message = vec![0x81, 26];
        message.extend_from_slice(b"k=");
        message.extend_from_slice(secret);
        message.extend_from_slice(b";end");
        for piece in message.chunks(5) {
            upstream.write_all(piece).await.unwrap();
        }
        drop(upstream);
        let mut got = Vec::new();
        agent.read_to_end(&mut got).await.unwrap();
        assert!(pump.await.unwrap().is_ok());
        assert_eq!(got.len(), message.len());
        assert_eq!(&got[2..], b"k=[REDACTED]**********;end");
    }

    #[tokio::test]
    async fn a_frame_that_cannot_be_searched_cuts_the_stream_and_drops_what_was_held() {
        let echoes = Arc::new(Echoes::new(
            Secret::from_slice(b"tok_0123456789abcdef"),
            Spellings::default(),
        ));
        let (mut upstream, mut from) = tokio::io::duplex(64);
        let (mut to, mut agent) = tokio::io::duplex(64);
        let pump = tokio::spawn(async move {
            scrub_down(&mut from, &mut to, FrameScrubber::new(echoes)).await
        });
        // A fragment ending in the secret's first bytes (held), then a masked frame.
        upstream
            .write_all(&[0x01, 5, b'k', b'=', b't', b'o', b'k'])
            .await
            .unwrap();
        upstream
            .write_all(&[0x80, 0x81, 1, 2, 3, 4, b'x'])
            .await
            .unwrap();
        let ended = pump.await.unwrap();
        assert!(
            matches!(ended, Err(Ended::Cut(Unscrubbable::Masked))),
            "{ended:?}"
        );
        let mut got = Vec::new();
        agent.read_to_end(&mut got).await.unwrap();
        // What was released before the cut may or may not have gone out (the two writes
        // may arrive as one read); the held `tok` never does.
        assert!([0x01, 5, b'k', b'='].starts_with(&got), "{got:?}");
    }
}
