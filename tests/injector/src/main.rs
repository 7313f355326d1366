//! A stand-in for istiod's sidecar injector, for the local test cluster.
//!
//! The real Istio charts install the MutatingWebhookConfigurations, so the real kube-apiserver
//! decides *which* webhooks call this injector for a pod (DOMAIN §2). Each revision's webhook
//! URL points here with the revision in the path (`/inject/<rev>`). Like istiod, the injector
//! then decides itself whether to inject (`injectRequired`, with the revision's
//! `istio-sidecar-injector-<rev>` ConfigMap read from the API server), strips a sidecar an
//! earlier webhook injected, and builds one that looks like that revision's (DOMAIN §3).
//! istiod itself runs under kwok, i.e. not at all.

mod inject;
mod policy;

use std::{collections::BTreeMap, convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::{Context, Result, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview},
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Parser, Debug)]
#[command(about = "Serves Istio's injection and validation webhooks for the test cluster")]
struct Args {
    /// Address to listen on; the apiserver reaches it through the webhooks' clientConfig.url.
    #[arg(long, default_value = "127.0.0.1:15017")]
    listen: SocketAddr,
    /// PEM serving certificate (needs an IP SAN for the listen address).
    #[arg(long)]
    tls_cert: PathBuf,
    /// PEM private key of the serving certificate.
    #[arg(long)]
    tls_key: PathBuf,
    /// REVISION=PROXY_IMAGE, e.g. 1-30=docker.io/istio/proxyv2:1.30.0 (repeatable).
    #[arg(long = "revision", value_parser = parse_revision)]
    revisions: Vec<(String, String)>,
    /// File of REVISION=PROXY_IMAGE lines, re-read on every request so that a scenario can add
    /// a revision while the injector runs; entries here override --revision.
    #[arg(long)]
    revisions_file: Option<PathBuf>,
    /// Kubeconfig of the cluster whose `istio-sidecar-injector-<rev>` ConfigMaps configure each
    /// revision (read per request, as istiod watches them). Without it, the chart's defaults.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Namespace of the injector ConfigMaps (istiod's).
    #[arg(long, default_value = "istio-system")]
    istio_namespace: String,
}

fn parse_revision(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((rev, image)) if !rev.trim().is_empty() && !image.trim().is_empty() => {
            Ok((rev.trim().to_owned(), image.trim().to_owned()))
        }
        _ => Err(format!("expected REVISION=IMAGE, got {s:?}")),
    }
}

struct State {
    flags: BTreeMap<String, String>,
    file: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    istio_namespace: String,
    /// Made on first use: the injector starts before the API server does.
    client: tokio::sync::Mutex<Option<kube::Client>>,
}

impl State {
    /// The proxy image of `rev`, or None when no "istiod" of that revision is installed.
    async fn image_for(&self, rev: &str) -> Option<String> {
        if let Some(path) = &self.file
            && let Ok(text) = tokio::fs::read_to_string(path).await
        {
            let found = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| parse_revision(l).ok())
                .rfind(|(r, _)| r == rev);
            if let Some((_, image)) = found {
                return Some(image);
            }
        }
        self.flags.get(rev).cloned()
    }

    async fn client(&self) -> Result<Option<kube::Client>> {
        let Some(path) = &self.kubeconfig else {
            return Ok(None);
        };
        let mut slot = self.client.lock().await;
        if slot.is_none() {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
            *slot = Some(kube::Client::try_from(config)?);
        }
        Ok(slot.clone())
    }

    /// The revision's injector configuration, read now (istiod watches it; a test may edit it).
    async fn config_for(&self, rev: &str) -> Result<policy::Config> {
        let Some(client) = self.client().await? else {
            return Ok(policy::Config::chart_default());
        };
        let name = if rev.is_empty() || rev == "default" {
            "istio-sidecar-injector".to_owned()
        } else {
            format!("istio-sidecar-injector-{rev}")
        };
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(client, &self.istio_namespace);
        let Some(cm) = api.get_opt(&name).await? else {
            // No configuration (e.g. a revision served only through the revisions file).
            return Ok(policy::Config::chart_default());
        };
        let text = cm
            .data
            .as_ref()
            .and_then(|d| d.get("config"))
            .with_context(|| format!("ConfigMap {name} has no `config` key"))?;
        serde_saphyr::from_str(text).with_context(|| format!("parsing {name} config"))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let tls = tls_config(&args)?;
    let state = Arc::new(State {
        flags: args.revisions.into_iter().collect(),
        file: args.revisions_file,
        kubeconfig: args.kubeconfig,
        istio_namespace: args.istio_namespace,
        client: tokio::sync::Mutex::new(None),
    });
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!("rev-test-injector listening on https://{}", args.listen);
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, state) = (acceptor.clone(), state.clone());
        tokio::spawn(async move {
            // A failed handshake is the client's problem (e.g. a probe without the CA); keep serving.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = service_fn(move |req| handle(state.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn tls_config(args: &Args) -> Result<ServerConfig> {
    let certs = CertificateDer::pem_file_iter(&args.tls_cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading {}", args.tls_cert.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", args.tls_cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&args.tls_key)
        .with_context(|| format!("reading {}", args.tls_key.display()))?;
    // Explicit provider: kube's dependency graph may enable a second one, and then rustls
    // refuses to guess.
    let mut cfg =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    // Only HTTP/1 is served; advertising it keeps the apiserver from trying h2.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

type Resp = Response<Full<Bytes>>;

async fn handle(
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if method == Method::GET && path == "/healthz" {
        return Ok(reply(StatusCode::OK, "ok\n".into()));
    }
    if method != Method::POST {
        return Ok(reply(StatusCode::NOT_FOUND, "not found\n".into()));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                format!("reading body: {e}\n"),
            ));
        }
    };
    let review = if let Some(rev) = path
        .strip_prefix("/inject/")
        .filter(|r| !r.is_empty() && !r.contains('/'))
    {
        review_pod(&state, rev, &body).await
    } else if path == "/validate" || path.starts_with("/validate/") {
        review_any(&body)
    } else {
        return Ok(reply(StatusCode::NOT_FOUND, "not found\n".into()));
    };
    Ok(
        match review.and_then(|r| serde_json::to_vec(&r).context("encoding review")) {
            Ok(json) => Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(json.into()))
                .expect("static response parts"),
            Err(e) => reply(StatusCode::BAD_REQUEST, format!("{e:#}\n")),
        },
    )
}

fn reply(status: StatusCode, text: String) -> Resp {
    let mut r = Response::new(Full::new(text.into()));
    *r.status_mut() = status;
    r
}

/// Validation: istiod would check the Istio resource; the tests only need the webhook to answer
/// (so that creating Istio config neither hangs nor fails), hence always allowed.
fn review_any(body: &[u8]) -> Result<AdmissionReview<DynamicObject>> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).context("decoding AdmissionReview")?;
    let req: AdmissionRequest<DynamicObject> = review
        .try_into()
        .context("AdmissionReview without request")?;
    eprintln!(
        "validate {:?} {}/{}: allowed",
        req.kind.kind,
        req.namespace.as_deref().unwrap_or(""),
        req.name
    );
    Ok(AdmissionResponse::from(&req).into_review())
}

async fn review_pod(
    state: &State,
    rev: &str,
    body: &[u8],
) -> Result<AdmissionReview<DynamicObject>> {
    let review: AdmissionReview<Pod> =
        serde_json::from_slice(body).context("decoding AdmissionReview")?;
    let req: AdmissionRequest<Pod> = review
        .try_into()
        .context("AdmissionReview without request")?;
    let resp = AdmissionResponse::from(&req);
    let ns = req.namespace.as_deref().unwrap_or("");
    let Some(pod) = req.object.as_ref() else {
        return Ok(resp.into_review());
    };
    let name = pod
        .metadata
        .name
        .as_deref()
        .or(pod.metadata.generate_name.as_deref())
        .unwrap_or("");
    let Some(image) = state.image_for(rev).await else {
        // What the apiserver reports when a revision's istiod is gone: pod creation fails.
        eprintln!("inject/{rev} {ns}/{name}: unknown revision, denied");
        return Ok(resp
            .deny(format!(
                "rev-test-injector: no istiod serves revision {rev:?}"
            ))
            .into_review());
    };
    let config = match state.config_for(rev).await {
        Ok(config) => config,
        Err(e) => {
            // istiod without a readable configuration injects nothing: fail the call loudly.
            eprintln!("inject/{rev} {ns}/{name}: configuration: {e:#}");
            return Ok(resp
                .deny(format!("rev-test-injector: configuration of {rev}: {e:#}"))
                .into_review());
        }
    };
    let strict = policy::strict_values(policy::version_of_image(&image));
    if !policy::inject_required(&config, strict, ns, pod) {
        eprintln!("inject/{rev} {ns}/{name}: skipped by policy");
        return Ok(resp.into_review());
    }
    let ops = inject::patch(pod, rev, &image);
    eprintln!("inject/{rev} {ns}/{name}: {} patch ops", ops.len());
    if ops.is_empty() {
        return Ok(resp.into_review());
    }
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops))?;
    Ok(resp.with_patch(patch)?.into_review())
}
