//! TLS for the line-protocol checkers (pops, imaps, STARTTLS): one client
//! configuration per choice of verification, built once and shared.
//!
//! ldirectord verifies no certificate (its POP3/IMAP/HTTPS clients run
//! without verification), so neither does lvsd unless `verifycert=yes`;
//! then the system's trust store decides (rustls-platform-verifier).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate, but still checks that the server holds its
/// key (the handshake signatures), so the exchange is real TLS.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn build(verify: bool) -> Result<Arc<ClientConfig>, crate::SetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::SetupError::Tls(e.to_string()))?;
    let config = if verify {
        rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier(builder)
            .map_err(|e| crate::SetupError::Tls(format!("the system's trust store: {e}")))?
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// The shared client configuration: verifying certificates or not.
pub(crate) fn client_config(verify: bool) -> Result<Arc<ClientConfig>, crate::SetupError> {
    static VERIFY: OnceLock<Result<Arc<ClientConfig>, crate::SetupError>> = OnceLock::new();
    static ANY: OnceLock<Result<Arc<ClientConfig>, crate::SetupError>> = OnceLock::new();
    let cell = if verify { &VERIFY } else { &ANY };
    cell.get_or_init(|| build(verify)).clone()
}
