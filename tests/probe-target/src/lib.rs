//! A loopback HTTP target for `kubectl rev-probe`'s tests: it counts every request it receives
//! (so a test can check the probe lost or hid nothing), and on command fails a fraction of
//! requests with 503 or stalls, holding every request that arrives for a while.
//!
//! It serves HTTP/1.1 and HTTP/2 without TLS (prior knowledge) on one port, or, started with
//! [`ProbeTarget::start_tls`], over TLS with a fresh self-signed certificate for `localhost` and
//! 127.0.0.1 (ALPN h2 and http/1.1). Control requests under `/__target/` are not counted:
//!
//! - `POST /__target/fail?fraction=0.25` — from now on one request in four answers 503
//!   (deterministically: exactly `fraction` of them, spread evenly); `fraction=0` stops it.
//! - `POST /__target/stall?ms=1000` — requests arriving in the next second are held until it
//!   ends (a frozen backend), then answered.
//! - `GET /__target/received` — how many requests were served so far (not counting control).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

/// What the target does with each request; shared by the server and its handle.
#[derive(Default)]
struct Behaviour {
    received: AtomicU64,
    /// Requests seen since the failure fraction was last set (decides which ones fail).
    since_fail_set: AtomicU64,
    /// Failing fraction in millionths.
    fail_ppm: AtomicU64,
    failed: AtomicU64,
    stall_until: Mutex<Option<Instant>>,
    last_host: Mutex<Option<String>>,
}

impl Behaviour {
    fn set_fail_fraction(&self, fraction: f64) {
        let ppm = (fraction.clamp(0.0, 1.0) * 1_000_000.0).round() as u64;
        self.fail_ppm.store(ppm, Ordering::SeqCst);
        self.since_fail_set.store(0, Ordering::SeqCst);
    }

    fn stall_for(&self, duration: Duration) {
        if let Ok(mut until) = self.stall_until.lock() {
            *until = Some(Instant::now() + duration);
        }
    }

    fn stalled_until(&self) -> Option<Instant> {
        let until = self.stall_until.lock().ok().and_then(|u| *u)?;
        (until > Instant::now()).then_some(until)
    }

    /// Whether the n-th request since the fraction was set fails: request n fails when
    /// floor((n+1)·f) > floor(n·f), which fails exactly ⌊N·f⌋ of N requests, evenly spread.
    fn next_fails(&self) -> bool {
        let ppm = self.fail_ppm.load(Ordering::SeqCst);
        if ppm == 0 {
            return false;
        }
        let n = self.since_fail_set.fetch_add(1, Ordering::SeqCst);
        (n + 1) * ppm / 1_000_000 > n * ppm / 1_000_000
    }
}

/// A running target; dropping it stops the server.
pub struct ProbeTarget {
    addr: SocketAddr,
    behaviour: Arc<Behaviour>,
    _shutdown: watch::Sender<()>,
}

impl ProbeTarget {
    /// Starts a target on a free loopback port.
    pub async fn start() -> std::io::Result<ProbeTarget> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a target on `addr` (port 0 picks a free one).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<ProbeTarget> {
        Self::serve(addr, None).await
    }

    /// Starts an HTTPS target on a free loopback port; returns it and the PEM certificate a
    /// client must trust (self-signed, for `localhost` and 127.0.0.1).
    pub async fn start_tls() -> std::io::Result<(ProbeTarget, String)> {
        let invalid = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .map_err(|e| invalid(&e))?;
        let pem = cert.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .map_err(|e| invalid(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let target = Self::serve(SocketAddr::from(([127, 0, 0, 1], 0)), Some(acceptor)).await?;
        Ok((target, pem))
    }

    async fn serve(
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<ProbeTarget> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let behaviour = Arc::new(Behaviour::default());
        let (shutdown, mut stopped) = watch::channel(());
        let served = behaviour.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stopped.changed() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let behaviour = served.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, behaviour.clone()));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        // A failed handshake (an untrusting client) just ends the connection.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Ok(ProbeTarget {
            addr,
            behaviour,
            _shutdown: shutdown,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far, control requests excluded.
    pub fn received(&self) -> u64 {
        self.behaviour.received.load(Ordering::SeqCst)
    }

    /// Requests answered 503 on purpose so far.
    pub fn failed(&self) -> u64 {
        self.behaviour.failed.load(Ordering::SeqCst)
    }

    /// The Host header (HTTP/1.1) or authority (HTTP/2) of the last request served.
    pub fn last_host(&self) -> Option<String> {
        self.behaviour.last_host.lock().ok().and_then(|h| h.clone())
    }

    /// From now on exactly `fraction` of the requests answer 503, evenly spread.
    pub fn fail_fraction(&self, fraction: f64) {
        self.behaviour.set_fail_fraction(fraction);
    }

    /// Holds every request that arrives in the next `duration` until it ends.
    pub fn stall_for(&self, duration: Duration) {
        self.behaviour.stall_for(duration);
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

fn query_value<'a>(req: &'a Request<Incoming>, key: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

async fn handle(
    req: Request<Incoming>,
    behaviour: Arc<Behaviour>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(control) = req.uri().path().strip_prefix("/__target/") {
        return Ok(match control {
            "received" => reply(
                StatusCode::OK,
                behaviour.received.load(Ordering::SeqCst).to_string(),
            ),
            "fail" => match query_value(&req, "fraction").and_then(|v| v.parse::<f64>().ok()) {
                Some(fraction) => {
                    behaviour.set_fail_fraction(fraction);
                    reply(StatusCode::OK, format!("failing {fraction}\n"))
                }
                None => reply(StatusCode::BAD_REQUEST, "want ?fraction=0..1\n"),
            },
            "stall" => match query_value(&req, "ms").and_then(|v| v.parse::<u64>().ok()) {
                Some(ms) => {
                    behaviour.stall_for(Duration::from_millis(ms));
                    reply(StatusCode::OK, format!("stalling {ms} ms\n"))
                }
                None => reply(StatusCode::BAD_REQUEST, "want ?ms=N\n"),
            },
            _ => reply(StatusCode::NOT_FOUND, "control: received, fail, stall\n"),
        });
    }
    behaviour.received.fetch_add(1, Ordering::SeqCst);
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if let Ok(mut last) = behaviour.last_host.lock() {
        *last = host;
    }
    if let Some(until) = behaviour.stalled_until() {
        tokio::time::sleep_until(until).await;
    }
    if behaviour.next_fails() {
        behaviour.failed.fetch_add(1, Ordering::SeqCst);
        return Ok(reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "failing on purpose\n",
        ));
    }
    Ok(reply(StatusCode::OK, "ok\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fraction_fails_exactly_that_share_evenly() {
        let b = Behaviour::default();
        b.set_fail_fraction(0.25);
        let fails: Vec<bool> = (0..8).map(|_| b.next_fails()).collect();
        assert_eq!(
            fails,
            [false, false, false, true, false, false, false, true]
        );
        b.set_fail_fraction(0.0);
        assert!(!(0..100).any(|_| b.next_fails()));
        b.set_fail_fraction(1.0);
        assert!((0..100).all(|_| b.next_fails()));
    }
}
