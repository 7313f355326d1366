//! The probe's HTTP client: hyper's pooled client over rustls (the TLS stack kube already
//! uses), HTTP/1.1 and HTTP/2, with a resolver that sends a named virtual host (`--host`, also
//! the TLS server name) to the address the target was resolved to, as curl's `--resolve` and
//! vegeta's `-connect-to` do.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::flags::HttpVersion;
use crate::error::{RevError, error_chain};

/// Where one target URL's connections go: `uri` is what is requested (its host is the Host
/// header and TLS server name); `connect_to` overrides the address connections are made to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub uri: Uri,
    pub connect_to: Option<(String, u16)>,
}

/// TLS and protocol choices for the probe's connections.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub version: HttpVersion,
    pub cacert: Option<std::path::PathBuf>,
    pub insecure_skip_tls_verify: bool,
    pub connect_timeout: Option<Duration>,
}

/// Names the resolver sends elsewhere than DNS would.
#[derive(Clone, Default)]
struct TargetResolver {
    overrides: Arc<HashMap<String, (String, u16)>>,
}

type ResolveFuture =
    Pin<Box<dyn Future<Output = std::io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower::Service<Name> for TargetResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = ResolveFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        // Port 0 lets the connector put the URL's port in; an override keeps its own.
        let (host, port) = self
            .overrides
            .get(name.as_str())
            .cloned()
            .unwrap_or_else(|| (name.as_str().to_string(), 0));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect();
            Ok(addrs.into_iter())
        })
    }
}

type Connector = HttpsConnector<HttpConnector<TargetResolver>>;

/// What each request of the run sends; endpoints take turns.
#[derive(Clone)]
pub struct RequestTemplate {
    pub method: Method,
    pub endpoints: Vec<Endpoint>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RequestTemplate {
    /// Builds the template from the probe's flags: `-X`, `-H "Name: value"`, `--body`/`@FILE`,
    /// `--host` (the Host header of every request).
    pub fn new(
        method: &str,
        endpoints: Vec<Endpoint>,
        headers: &[String],
        host: Option<&str>,
        body: Option<&str>,
    ) -> Result<RequestTemplate, RevError> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| RevError::Usage(format!("-X {method:?}: not an HTTP method")))?;
        let mut header_map = HeaderMap::new();
        for header in headers {
            let (name, value) = header.split_once(':').ok_or_else(|| {
                RevError::Usage(format!("-H {header:?}: expected \"Name: value\""))
            })?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| RevError::Usage(format!("-H {header:?}: bad header name")))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| RevError::Usage(format!("-H {header:?}: bad header value")))?;
            header_map.append(name, value);
        }
        if let Some(host) = host {
            let value = HeaderValue::from_str(host)
                .map_err(|_| RevError::Usage(format!("--host {host:?}: not a valid host")))?;
            header_map.insert(HOST, value);
        }
        let body = match body {
            Some(path) if path.starts_with('@') => {
                let path = &path[1..];
                Bytes::from(std::fs::read(path).map_err(|e| RevError::Dump {
                    path: path.to_string(),
                    message: "--body @FILE reads the request body from FILE".into(),
                    source: Some(e),
                })?)
            }
            Some(text) => Bytes::from(text.to_string()),
            None => Bytes::new(),
        };
        if endpoints.is_empty() {
            return Err(RevError::Usage(
                "no probe target: give --url, --gateway or --port-forward".into(),
            ));
        }
        Ok(RequestTemplate {
            method,
            endpoints,
            headers: header_map,
            body,
        })
    }

    /// The `n`-th request of the run.
    fn request(&self, n: u64) -> Option<Request<Full<Bytes>>> {
        let endpoint = self
            .endpoints
            .get((n % self.endpoints.len().max(1) as u64) as usize)?;
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(endpoint.uri.clone())
            .body(Full::new(self.body.clone()))
            .ok()?;
        request.headers_mut().extend(self.headers.clone());
        Some(request)
    }
}

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: u16,
    pub bytes_in: u64,
    pub error: Option<String>,
}

/// A pooled client bound to one request template.
#[derive(Clone)]
pub struct ProbeClient {
    client: Client<Connector, Full<Bytes>>,
    template: Arc<RequestTemplate>,
    timeout: Duration,
}

impl ProbeClient {
    pub fn new(
        template: RequestTemplate,
        options: &ClientOptions,
        timeout: Duration,
    ) -> Result<ProbeClient, RevError> {
        let overrides: HashMap<String, (String, u16)> = template
            .endpoints
            .iter()
            .filter_map(|e| Some((e.uri.host()?.to_string(), e.connect_to.clone()?)))
            .collect();
        let mut http = HttpConnector::new_with_resolver(TargetResolver {
            overrides: Arc::new(overrides),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(options.connect_timeout.or(Some(timeout)));
        let tls = tls_config(options)?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let https = match options.version {
            HttpVersion::Auto => builder.enable_all_versions().wrap_connector(http),
            HttpVersion::Http1 => builder.enable_http1().wrap_connector(http),
            HttpVersion::Http2 => builder.enable_http2().wrap_connector(http),
        };
        let client = Client::builder(TokioExecutor::new())
            // Over plain http://, HTTP/2 can only be spoken by prior knowledge (h2c).
            .http2_only(options.version == HttpVersion::Http2)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(ProbeClient {
            client,
            template: Arc::new(template),
            timeout,
        })
    }

    pub fn template(&self) -> &RequestTemplate {
        &self.template
    }

    /// How long one request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends the `n`-th request and reads its whole body (vegeta does: a response is over when
    /// its body is), within the per-request timeout.
    pub async fn send(&self, n: u64) -> Outcome {
        let Some(request) = self.template.request(n) else {
            return Outcome {
                status: 0,
                bytes_in: 0,
                error: Some("cannot build the request".into()),
            };
        };
        let label = format!("{} {}", request.method(), request.uri());
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| error_chain(&e))?;
            let status = response.status();
            let mut body = response.into_body();
            let mut bytes_in = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("reading the body: {}", error_chain(&e)))?;
                if let Some(data) = frame.data_ref() {
                    bytes_in += data.len() as u64;
                }
            }
            Ok::<_, String>((status, bytes_in))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, bytes_in))) => Outcome {
                status: status.as_u16(),
                bytes_in,
                // vegeta records a non-2xx/3xx status as its error ("503 Service Unavailable").
                error: (!(200..400).contains(&status.as_u16())).then(|| {
                    format!(
                        "{} {}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or_default()
                    )
                    .trim_end()
                    .to_string()
                }),
            },
            Ok(Err(message)) => Outcome {
                status: 0,
                bytes_in: 0,
                error: Some(format!("{label}: {message}")),
            },
            Err(_) => Outcome {
                status: 0,
                bytes_in: 0,
                error: Some(format!(
                    "{label}: no complete response within --probe-timeout {}",
                    super::report::go_duration(self.timeout.as_nanos() as u64)
                )),
            },
        }
    }
}

fn tls_config(options: &ClientOptions) -> Result<ClientConfig, RevError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(RevError::Tls)?;
    if options.insecure_skip_tls_verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let roots = match &options.cacert {
        // Like curl's --cacert and kubectl's --certificate-authority: these CAs replace the system's.
        Some(path) => ca_file_roots(path)?,
        None => system_roots(),
    };
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn ca_file_roots(path: &Path) -> Result<RootCertStore, RevError> {
    let unreadable = |message: String| RevError::Dump {
        path: path.display().to_string(),
        message: format!("{message} (--cacert wants PEM certificates)"),
        source: None,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(e.to_string()))? {
        let cert = cert.map_err(|e| unreadable(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| unreadable(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(unreadable("no certificate in the file".into()));
    }
    Ok(roots)
}

fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates leave fewer roots; a TLS target then fails with a clear
    // verification error naming --cacert, rather than the probe refusing to start.
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    roots
}

/// `--probe-insecure-skip-tls-verify`: accepts any certificate, still checks handshake
/// signatures so the connection works at all.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
