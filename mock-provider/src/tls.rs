//! HTTPS for the mock (`--tls-cert`, `--tls-key`): a connection whose
//! first byte opens a TLS handshake is served over rustls, and the SNI it
//! asked for is recorded with each of its requests; any other connection
//! is plain HTTP on the same port (tests read `/__mock/requests` that way).

use std::io;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// PEM files of the certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
}

/// TLS record type of a handshake: the first byte of a ClientHello.
const HANDSHAKE: u8 = 0x16;

pub fn acceptor(files: &TlsFiles) -> io::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("--tls-cert {}: {e}", files.cert)))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| io::Error::other(format!("--tls-key {}: {e}", files.key)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Whether the client starts a TLS handshake (peeked, nothing consumed).
pub async fn starts_tls(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(stream.peek(&mut first).await, Ok(1) if first == [HANDSHAKE])
}

/// Completes the handshake; returns the stream and the SNI it asked for.
pub async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> io::Result<(TlsStream<TcpStream>, Option<String>)> {
    let tls = acceptor.accept(stream).await?;
    let sni = tls.get_ref().1.server_name().map(str::to_string);
    Ok((tls, sni))
}
