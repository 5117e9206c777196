//! The agent-facing side: a rustls server config that presents a leaf for
//! whatever name the agent asked for, and an accept helper that covers
//! ClientHellos without SNI.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::alpn::{ALPN_H2, ALPN_HTTP1, Alpn};
use crate::ca::CertAuthority;
use crate::error::TlsError;
use crate::leaf_cache::LeafCache;
use crate::mint::LeafName;

/// Server-side session cache size (TLS 1.2 session IDs; TLS 1.3 uses
/// stateless tickets and needs no server state).
const SERVER_SESSION_CACHE: usize = 4096;

/// Resolves the leaf by the SNI in the ClientHello. Without SNI it aborts
/// the handshake: the caller must supply a name ([`CertAuthority::accept`]).
#[derive(Debug)]
struct SniResolver {
    leaves: Arc<LeafCache>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(sni) = hello.server_name() else {
            tracing::debug!("ClientHello without SNI and no fallback name; aborting handshake");
            return None;
        };
        resolve_name(&self.leaves, sni)
    }
}

/// Always presents the leaf for one name: used for connections whose
/// ClientHello carried no SNI, with the name the proxy chose.
#[derive(Debug)]
struct FixedNameResolver {
    leaves: Arc<LeafCache>,
    name: LeafName,
}

impl ResolvesServerCert for FixedNameResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.leaves.get(&self.name) {
            Ok(leaf) => Some(leaf),
            Err(e) => {
                tracing::warn!(name = %self.name.key(), error = %e, "cannot mint leaf");
                None
            }
        }
    }
}

fn resolve_name(leaves: &LeafCache, raw: &str) -> Option<Arc<CertifiedKey>> {
    let leaf = LeafName::parse(raw).and_then(|name| leaves.get(&name));
    match leaf {
        Ok(leaf) => Some(leaf),
        Err(e) => {
            // Returning None aborts the handshake: fail closed.
            tracing::warn!(sni = raw, error = %e, "cannot mint leaf");
            None
        }
    }
}

pub(crate) fn build_server_config(leaves: Arc<LeafCache>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { leaves }));
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    config.session_storage = ServerSessionMemoryCache::new(SERVER_SESSION_CACHE);
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(TlsError::Config)?;
    Ok(Arc::new(config))
}

/// A copy of `base` presenting leaves from `leaves`; the ticketer and the
/// session cache stay shared with `base`.
pub(crate) fn with_leaves(base: &ServerConfig, leaves: &Arc<LeafCache>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(base);
    config.cert_resolver = Arc::new(SniResolver {
        leaves: Arc::clone(leaves),
    });
    Arc::new(config)
}

/// An agent connection whose TLS the proxy has terminated.
pub struct Intercepted<IO> {
    pub stream: TlsStream<IO>,
    /// The name the presented leaf certifies (normalised SNI, or the
    /// fallback name when the agent sent no SNI).
    pub name: String,
    /// Whether `name` came from the agent's SNI.
    pub from_sni: bool,
}

impl<IO> Intercepted<IO> {
    /// The protocol negotiated with the agent.
    pub fn alpn(&self) -> Alpn {
        Alpn::from_negotiated(self.stream.get_ref().1.alpn_protocol())
    }
}

impl CertAuthority {
    /// The agent-facing config: leaves by SNI, ALPN h2 + http/1.1, session
    /// tickets and a session cache for resumption. ClientHellos without SNI
    /// are refused by this config; use [`CertAuthority::accept`] to serve
    /// them under a fallback name.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.inner.server_config)
    }

    /// Terminates the agent's TLS on `io`. The leaf is minted for the SNI;
    /// when the agent sent none, for `fallback_name` (typically the
    /// original destination IP, which yields an IP SAN).
    pub async fn accept<IO>(&self, io: IO, fallback_name: &str) -> Result<Intercepted<IO>, TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let handshake_err = |name: &str, source| TlsError::AgentHandshake {
            name: name.to_owned(),
            source,
        };
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
            .await
            .map_err(|e| handshake_err(fallback_name, e))?;
        let sni = start.client_hello().server_name().map(str::to_owned);
        let (name, from_sni, config) = match sni {
            Some(sni) => {
                let name = LeafName::parse(&sni)?;
                (name, true, self.server_config())
            }
            None => {
                let name = LeafName::parse(fallback_name)?;
                (name.clone(), false, self.fallback_config(name))
            }
        };
        let name = name.key();
        let stream = start
            .into_stream(config)
            .await
            .map_err(|e| handshake_err(&name, e))?;
        Ok(Intercepted {
            stream,
            name,
            from_sni,
        })
    }

    /// A copy of the shared config whose resolver ignores SNI. The ticketer
    /// and session cache are shared, so resumption still works.
    fn fallback_config(&self, name: LeafName) -> Arc<ServerConfig> {
        let mut config = ServerConfig::clone(&self.inner.server_config);
        config.cert_resolver = Arc::new(FixedNameResolver {
            leaves: Arc::clone(&self.inner.leaves),
            name,
        });
        Arc::new(config)
    }
}
