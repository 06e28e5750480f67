//! The http/https and connect checkers against real servers on 127.0.0.1:0:
//! axum for HTTP, hyper + tokio-rustls with an rcgen certificate for HTTPS,
//! and raw TCP listeners for servers that misbehave.
#![allow(clippy::unwrap_used)] // test setup: a failure here is a broken test machine

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use checkers::{Checker, Connect, Http, HttpOptions, ProbeError, Step, run_probe};
use regex::bytes::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const VHOST: &str = "www.example.test";
const DEADLINE: Duration = Duration::from_secs(2);

fn app() -> Router {
    Router::new()
        .route("/health", get(|| async { "Service Up" }))
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "Service Up") }),
        )
        .route("/other", get(|| async { "nothing to see" }))
        .route("/hang", get(std::future::pending::<&'static str>))
        .route(
            "/vhost",
            get(|headers: HeaderMap| async move {
                match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
                    Some(VHOST) => (StatusCode::OK, "Service Up"),
                    _ => (StatusCode::NOT_FOUND, "unknown site"),
                }
            }),
        )
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/health")]).into_response() }),
        )
        .route(
            "/a/b",
            get(|| async {
                (StatusCode::FOUND, [(header::LOCATION, "../health")]).into_response()
            }),
        )
        .route(
            "/away",
            // An address reserved for documentation: never followed, never contacted.
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://192.0.2.1/health")],
                )
                    .into_response()
            }),
        )
}

async fn http_server() -> SocketAddr {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app()).await });
    addr
}

/// A TLS acceptor with a self-signed certificate for VHOST.
fn acceptor() -> tokio_rustls::TlsAcceptor {
    let cert = rcgen::generate_simple_self_signed(vec![VHOST.to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// An HTTPS server with a self-signed certificate for VHOST; records the
/// SNI name each client sent.
async fn https_server() -> (SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let acceptor = acceptor();
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let snis = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&snis);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                seen.lock()
                    .unwrap()
                    .push(tls.get_ref().1.server_name().map(str::to_owned));
                let svc = hyper_util::service::TowerToHyperService::new(app());
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, snis)
}

/// A server that accepts, reads the request, writes `reply`, then holds
/// the connection open without another byte.
async fn raw_server(reply: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(reply).await;
            held.push(s);
        }
    });
    addr
}

fn opts(tls: bool, addr: SocketAddr, path: &str, receive: Option<&str>) -> HttpOptions {
    let mut o = HttpOptions::get(tls, addr.ip(), addr.port(), path);
    o.receive = receive.map(|r| Arc::new(Regex::new(r).unwrap()));
    o
}

async fn probe(o: HttpOptions) -> Result<(), ProbeError> {
    let c: Arc<dyn Checker> = Arc::new(Http::new(o).unwrap());
    run_probe(c, DEADLINE).await
}

#[tokio::test]
async fn up_when_2xx_and_the_body_matches() {
    let a = http_server().await;
    probe(opts(false, a, "/health", Some("Service Up")))
        .await
        .unwrap();
    probe(opts(false, a, "/other", None)).await.unwrap();
}

#[tokio::test]
async fn wrong_status_names_the_real_and_the_status() {
    let a = http_server().await;
    let e = probe(opts(false, a, "/down", Some("Service Up")))
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Answer);
    assert_eq!(
        e.to_string(),
        format!("GET http://{a}/down: status 503, want 2xx")
    );
}

#[tokio::test]
async fn body_mismatch() {
    let a = http_server().await;
    let e = probe(opts(false, a, "/other", Some("Service Up")))
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Answer);
    assert_eq!(
        e.to_string(),
        format!("GET http://{a}/other: status 200, body (14 bytes) does not match /Service Up/")
    );
}

#[tokio::test]
async fn only_the_first_max_body_bytes_are_read() {
    let a = http_server().await;
    let mut o = opts(false, a, "/health", Some("Up"));
    o.max_body = 4;
    let e = probe(o).await.unwrap_err();
    assert!(
        e.reason
            .contains("the first 4 bytes of the body do not match /Up/"),
        "{e}"
    );
}

#[tokio::test]
async fn refused() {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    let e = probe(opts(false, a, "/health", None)).await.unwrap_err();
    assert_eq!(e.step, Step::Connect);
    assert_eq!(
        e.to_string(),
        format!("GET http://{a}/health: connect: connection refused")
    );

    let c: Arc<dyn Checker> = Arc::new(Connect::new(a.ip(), a.port()));
    let e = run_probe(c, DEADLINE).await.unwrap_err();
    assert_eq!(e.to_string(), format!("connect {a}: connection refused"));
}

#[tokio::test]
async fn connect_up() {
    let a = http_server().await;
    let c: Arc<dyn Checker> = Arc::new(Connect::new(a.ip(), a.port()));
    run_probe(c, DEADLINE).await.unwrap();
}

#[tokio::test]
async fn accepts_then_never_answers_hits_the_deadline() {
    let a = raw_server(b"").await;
    let c: Arc<dyn Checker> = Arc::new(Http::new(opts(false, a, "/", None)).unwrap());
    let e = run_probe(c, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e.step, Step::Deadline);
    assert_eq!(
        e.to_string(),
        format!("GET http://{a}/: no answer within 300ms")
    );

    // A handler that never answers behind a working server: the same.
    let a = http_server().await;
    let c: Arc<dyn Checker> = Arc::new(Http::new(opts(false, a, "/hang", None)).unwrap());
    let e = run_probe(c, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e.step, Step::Deadline);
}

#[tokio::test]
async fn slow_body_hits_the_deadline() {
    let a = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nServ").await;
    let c: Arc<dyn Checker> = Arc::new(Http::new(opts(false, a, "/", Some("Service Up"))).unwrap());
    let e = run_probe(c, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(e.step, Step::Deadline, "{e}");
    // Without a receive pattern the body is not read: the status decides.
    let c: Arc<dyn Checker> = Arc::new(Http::new(opts(false, a, "/", None)).unwrap());
    run_probe(c, Duration::from_millis(300)).await.unwrap();
}

#[tokio::test]
async fn head() {
    let a = http_server().await;
    let mut o = opts(false, a, "/health", None);
    o.head = true;
    probe(o.clone()).await.unwrap();
    o.path = "/down".into();
    let e = probe(o).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("HEAD http://{a}/down: status 503, want 2xx")
    );
}

#[tokio::test]
async fn virtualhost_is_sent_as_host() {
    let a = http_server().await;
    let e = probe(opts(false, a, "/vhost", Some("Service Up")))
        .await
        .unwrap_err();
    assert!(e.reason.starts_with("status 404"), "{e}");
    let mut o = opts(false, a, "/vhost", Some("Service Up"));
    o.virtualhost = Some(VHOST.into());
    probe(o).await.unwrap();
}

#[tokio::test]
async fn redirects_are_followed_on_the_same_host_only() {
    let a = http_server().await;
    probe(opts(false, a, "/redirect", Some("Service Up")))
        .await
        .unwrap();
    let e = probe(opts(false, a, "/away", None)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "GET http://{a}/away: status 302, want 2xx (redirect to http://192.0.2.1/health not followed)"
        )
    );
}

#[tokio::test]
async fn https_with_virtualhost_sends_sni_and_host_to_the_real() {
    let (a, snis) = https_server().await;
    let mut o = opts(true, a, "/vhost", Some("Service Up"));
    o.virtualhost = Some(VHOST.into());
    probe(o).await.unwrap();
    assert_eq!(
        snis.lock().unwrap().last().cloned().flatten().as_deref(),
        Some(VHOST)
    );
    // Without the virtual host: no SNI (an IP address), wrong Host, 404.
    let e = probe(opts(true, a, "/vhost", None)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("GET https://{a}/vhost: status 404, want 2xx")
    );
}

#[tokio::test]
async fn https_certificates_are_not_verified_unless_asked() {
    let (a, _) = https_server().await;
    let mut o = opts(true, a, "/health", Some("Service Up"));
    o.virtualhost = Some(VHOST.into());
    probe(o.clone()).await.unwrap();
    o.verify_tls = true;
    let e = probe(o).await.unwrap_err();
    assert_eq!(e.step, Step::Tls, "{e}");
    assert!(
        e.reason
            .starts_with("TLS: invalid peer certificate: UnknownIssuer"),
        "{e}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_failure() {
    let a = http_server().await;
    let e = probe(opts(true, a, "/health", None)).await.unwrap_err();
    assert_eq!(e.step, Step::Tls, "{e}");
}

#[tokio::test]
async fn a_relative_redirect_is_resolved_as_a_url() {
    let a = http_server().await;
    probe(opts(false, a, "/a/b", Some("Service Up")))
        .await
        .unwrap();
}

#[tokio::test]
async fn endless_informational_answers_fail_at_once_and_hold_no_memory() {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                while s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_ok() {}
            });
        }
    });
    let e = probe(opts(false, a, "/", None)).await.unwrap_err();
    assert_eq!(e.step, Step::Exchange, "{e}");
    assert!(e.reason.contains("more than 16 informational"), "{e}");
}

#[tokio::test]
async fn an_https_body_ended_by_a_close_without_close_notify_is_whole() {
    // As many servers do (and curl accepts): HTTP/1.0, no Content-Length,
    // the TCP connection closed without TLS's close_notify.
    let acceptor = acceptor();
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(b"HTTP/1.0 200 OK\r\n\r\nService Up").await;
                let _ = tls.flush().await;
                // Dropped: the TCP connection closes, no close_notify.
            });
        }
    });
    probe(opts(true, a, "/", Some("Service Up"))).await.unwrap();
}
