//! Connection flags → `kube::Client`, resolved the way kubectl resolves them.
//!
//! `Config::infer` ignores --kubeconfig/--context/--cluster/--user, so the kubeconfig is read
//! explicitly (KUBECONFIG may list several files, merged by kubectl's rules) and the other
//! flags are applied on top of the resulting `Config` (DOMAIN §8).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, client::ClientBuilder};

use crate::error::{Action, RevError};
use crate::flags::ConnectionFlags;

/// One cluster to talk to: the context it came from (for labelling multi-cluster output), its
/// client, and the server URL that errors name.
#[derive(Clone)]
pub struct Cluster {
    /// The kubeconfig context name, or the server URL when none applies.
    pub name: String,
    pub client: Client,
    /// Namespace from -n, else the context's namespace, else `default`.
    pub namespace: String,
    pub server: String,
}

impl Cluster {
    /// A cluster reached through an already built client (tests: a mocked API).
    pub fn from_client(client: Client, server: &str) -> Self {
        Self {
            name: server.to_string(),
            client,
            namespace: "default".into(),
            server: server.to_string(),
        }
    }

    /// Turns a kube error of `action` into the suite's error, naming this cluster's server.
    pub fn error(&self, action: Action) -> impl FnOnce(kube::Error) -> RevError + '_ {
        move |source| RevError::api(&self.server, action, source)
    }
}

/// Reads the kubeconfig the flags point at: --kubeconfig, else $KUBECONFIG (merged), else
/// ~/.kube/config.
pub fn read_kubeconfig(flags: &ConnectionFlags) -> Result<Kubeconfig, RevError> {
    let result = match &flags.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    };
    result.map_err(|e| RevError::Kubeconfig {
        message: "cannot read the file".into(),
        source: Some(Box::new(e)),
    })
}

/// All context names, for `--all-contexts`.
pub fn all_contexts(flags: &ConnectionFlags) -> Result<Vec<String>, RevError> {
    Ok(read_kubeconfig(flags)?
        .contexts
        .into_iter()
        .map(|c| c.name)
        .collect())
}

/// The namespace commands default to, as kubectl picks it: `-n`, else the current context's
/// namespace, else `default`. A dump has no context: `default` unless `-n` says otherwise.
pub fn current_namespace(
    flags: &ConnectionFlags,
    dumps: &crate::flags::DumpFlags,
) -> Result<String, RevError> {
    if let Some(ns) = &flags.namespace {
        return Ok(ns.clone());
    }
    if !dumps.from_file.is_empty() {
        return Ok("default".into());
    }
    let kubeconfig = match read_kubeconfig(flags) {
        Ok(kubeconfig) => kubeconfig,
        // As `resolve_config` connects: --server alone, or the pod's service account.
        Err(err) if flags.kubeconfig.is_none() => {
            if flags.server.is_some() {
                return Ok("default".into());
            }
            return Config::incluster()
                .map(|config| config.default_namespace)
                .map_err(|_| err);
        }
        Err(err) => return Err(err),
    };
    let context = flags
        .contexts
        .first()
        .cloned()
        .or(kubeconfig.current_context.clone());
    Ok(kubeconfig
        .contexts
        .iter()
        .find(|c| Some(&c.name) == context.as_ref())
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.namespace.clone())
        .unwrap_or_else(|| "default".into()))
}

/// Resolves a `Config` for one context (or the current one).
pub async fn resolve_config(
    flags: &ConnectionFlags,
    context: Option<&str>,
) -> Result<Config, RevError> {
    let kubeconfig = read_kubeconfig(flags);
    let mut config = match kubeconfig {
        Ok(kc) => {
            if let Some(name) = context
                && !kc.contexts.iter().any(|c| c.name == name)
            {
                let known: Vec<_> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                return Err(RevError::UnknownContext {
                    name: name.to_string(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                });
            }
            let options = KubeConfigOptions {
                context: context.map(str::to_string),
                cluster: flags.cluster.clone(),
                user: flags.user.clone(),
            };
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| RevError::Kubeconfig {
                    message: "cannot use the selected context".into(),
                    source: Some(Box::new(e)),
                })?
        }
        // Like kubectl: --server alone is enough, and inside a pod the service account is.
        Err(err) if flags.kubeconfig.is_none() => {
            if let Some(server) = &flags.server {
                Config::new(parse_server(server)?)
            } else if let Ok(config) = Config::incluster() {
                config
            } else {
                return Err(err);
            }
        }
        Err(err) => return Err(err),
    };
    apply_overrides(&mut config, flags)?;
    Ok(config)
}

fn parse_server(server: &str) -> Result<http::Uri, RevError> {
    server.parse().map_err(|e| RevError::Kubeconfig {
        message: format!("--server {server:?} is not a URL"),
        source: Some(Box::new(e)),
    })
}

/// Applies the flags that override parts of the kubeconfig, as kubectl does.
pub fn apply_overrides(config: &mut Config, flags: &ConnectionFlags) -> Result<(), RevError> {
    if let Some(server) = &flags.server {
        config.cluster_url = parse_server(server)?;
    }
    if let Some(ns) = &flags.namespace {
        config.default_namespace = ns.clone();
    }
    if let Some(token) = &flags.token {
        // A token flag replaces the kubeconfig's credentials rather than adding to them.
        config.auth_info.token = Some(token.clone().into());
        config.auth_info.token_file = None;
        config.auth_info.exec = None;
        config.auth_info.auth_provider = None;
    }
    if let Some(cert) = &flags.client_certificate {
        config.auth_info.client_certificate = Some(cert.display().to_string());
        config.auth_info.client_certificate_data = None;
    }
    if let Some(key) = &flags.client_key {
        config.auth_info.client_key = Some(key.display().to_string());
        config.auth_info.client_key_data = None;
    }
    if let Some(ca) = &flags.certificate_authority {
        let pem = std::fs::read(ca).map_err(|e| RevError::Kubeconfig {
            message: format!("cannot read --certificate-authority {}", ca.display()),
            source: Some(Box::new(e)),
        })?;
        config.root_cert =
            Some(
                pem_to_der_certs(&pem).map_err(|message| RevError::Kubeconfig {
                    message: format!("--certificate-authority {}: {message}", ca.display()),
                    source: None,
                })?,
            );
    }
    if flags.insecure_skip_tls_verify {
        config.accept_invalid_certs = true;
    }
    if let Some(name) = &flags.tls_server_name {
        config.tls_server_name = Some(name.clone());
    }
    if let Some(user) = &flags.as_user {
        config.auth_info.impersonate = Some(user.clone());
    }
    if !flags.as_groups.is_empty() {
        config.auth_info.impersonate_groups = Some(flags.as_groups.clone());
    }
    if let Some(uid) = &flags.as_uid {
        config.auth_info.impersonate_uid = Some(uid.clone());
    }
    // --request-timeout bounds connecting and sending here; waiting for an answer is bounded per
    // request by `RequestTimeoutLayer`, which lets watches run (kubectl's rollout status with the
    // same flag waits as long as the rollout takes).
    if let Some(timeout) = flags.request_timeout.filter(|t| !t.is_zero()) {
        config.connect_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
    }
    Ok(())
}

fn pem_to_der_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file".to_string())?;
    let mut certs = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let body = current.take().ok_or("unbalanced PEM markers")?;
            certs.push(
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .map_err(|e| format!("bad base64 in PEM: {e}"))?,
            );
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        }
    }
    if certs.is_empty() {
        return Err("no certificate in PEM file".into());
    }
    Ok(certs)
}

/// Builds a client for a resolved config: `--request-timeout` bounds each request but watches,
/// and requests are logged at `-v 6` and above.
pub fn build_client(
    config: Config,
    verbosity: u8,
    request_timeout: Option<Duration>,
) -> Result<Client, RevError> {
    let server = config.cluster_url.to_string();
    let builder = ClientBuilder::try_from(config).map_err(|e| RevError::Kubeconfig {
        message: format!("cannot build a client for {server}"),
        source: Some(Box::new(e)),
    })?;
    Ok(builder
        .with_layer(&RequestTimeoutLayer {
            timeout: request_timeout.filter(|t| !t.is_zero()),
        })
        .with_layer(&RequestLogLayer {
            enabled: verbosity >= 6,
        })
        .build())
}

/// `--request-timeout` for one request: how long to wait for the API server's answer. A watch
/// (`watch=true`) is exempt: it is meant to stay open.
#[derive(Clone, Copy)]
pub struct RequestTimeoutLayer {
    timeout: Option<Duration>,
}

impl<S> tower::Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    timeout: Option<Duration>,
}

/// The error a timed-out request ends with.
#[derive(Debug, thiserror::Error)]
#[error("no answer within --request-timeout ({0:?})")]
pub struct RequestTimedOut(Duration);

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for RequestTimeout<S>
where
    S: tower::Service<http::Request<ReqBody>>,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError>,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, tower::BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let is_watch = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
        let timeout = self.timeout.filter(|_| !is_watch);
        let fut = self.inner.call(req);
        Box::pin(async move {
            match timeout {
                None => fut.await.map_err(Into::into),
                Some(limit) => match tokio::time::timeout(limit, fut).await {
                    Ok(result) => result.map_err(Into::into),
                    Err(_) => Err(Box::new(RequestTimedOut(limit)) as tower::BoxError),
                },
            }
        })
    }
}

/// Connects to every cluster the flags name: each `--context`, or the current context.
pub async fn connect_all(
    flags: &ConnectionFlags,
    contexts: &[String],
    verbosity: u8,
) -> Result<Vec<Cluster>, RevError> {
    let mut out = Vec::new();
    if contexts.is_empty() {
        out.push(connect_one(flags, None, verbosity).await?);
    } else {
        for ctx in contexts {
            out.push(connect_one(flags, Some(ctx), verbosity).await?);
        }
    }
    Ok(out)
}

/// Connects to one cluster; plugins that act on a single cluster refuse several --context.
pub async fn connect(flags: &ConnectionFlags, verbosity: u8) -> Result<Cluster, RevError> {
    if flags.contexts.len() > 1 {
        return Err(RevError::Usage(
            "this command acts on one cluster: give --context once".into(),
        ));
    }
    connect_one(flags, flags.contexts.first().map(String::as_str), verbosity).await
}

async fn connect_one(
    flags: &ConnectionFlags,
    context: Option<&str>,
    verbosity: u8,
) -> Result<Cluster, RevError> {
    let config = resolve_config(flags, context).await?;
    let namespace = config.default_namespace.clone();
    let server = config.cluster_url.to_string();
    let name = match context {
        Some(c) => c.to_string(),
        None => read_kubeconfig(flags)
            .ok()
            .and_then(|kc| kc.current_context)
            .unwrap_or_else(|| server.clone()),
    };
    let client = build_client(config, verbosity, flags.request_timeout)?;
    Ok(Cluster {
        name,
        client,
        namespace,
        server,
    })
}

/// Logs each request like `kubectl --v=6`: method, URL, status and duration, to stderr.
#[derive(Clone, Copy)]
pub struct RequestLogLayer {
    enabled: bool,
}

impl<S> tower::Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestLog {
            inner,
            enabled: self.enabled,
        }
    }
}

#[derive(Clone)]
pub struct RequestLog<S> {
    inner: S,
    enabled: bool,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RequestLog<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let enabled = self.enabled;
        let line = format!("{} {}", req.method(), req.uri());
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            if enabled {
                let took = Duration::as_millis(&started.elapsed());
                match &result {
                    Ok(resp) => eprintln!("I {line} {} in {took} milliseconds", resp.status()),
                    Err(e) => eprintln!("I {line} failed after {took} milliseconds: {e}"),
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn kubeconfig_file(contents: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(contents)
    }

    /// Minimal temp file helper (no extra crate for one use).
    mod tempfile_path {
        use std::path::PathBuf;
        pub struct TempPath(pub PathBuf);
        impl TempPath {
            pub fn with(contents: &str) -> Self {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let path = std::env::temp_dir().join(format!(
                    "rev-kubeconfig-{}-{}.yaml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                let mut f = std::fs::File::create(&path).unwrap();
                super::Write::write_all(&mut f, contents.as_bytes()).unwrap();
                Self(path)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    const TWO_CONTEXTS: &str = r#"
apiVersion: v1
kind: Config
current-context: east
clusters:
- name: east
  cluster: {server: "https://127.0.0.1:6443"}
- name: west
  cluster: {server: "https://127.0.0.2:7443"}
users:
- name: admin
  user: {token: abc}
contexts:
- name: east
  context: {cluster: east, user: admin, namespace: bookinfo}
- name: west
  context: {cluster: west, user: admin}
"#;

    fn flags_for(path: &tempfile_path::TempPath) -> ConnectionFlags {
        ConnectionFlags {
            kubeconfig: Some(path.0.clone()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn context_flag_selects_cluster_and_namespace_defaults_from_it() {
        let file = kubeconfig_file(TWO_CONTEXTS);
        let flags = flags_for(&file);
        let east = resolve_config(&flags, None).await.unwrap();
        assert_eq!(east.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(east.default_namespace, "bookinfo");
        let west = resolve_config(&flags, Some("west")).await.unwrap();
        assert_eq!(west.cluster_url.to_string(), "https://127.0.0.2:7443/");
        assert_eq!(west.default_namespace, "default");
    }

    #[tokio::test]
    async fn overrides_apply_on_top_of_the_kubeconfig() {
        let file = kubeconfig_file(TWO_CONTEXTS);
        let mut flags = flags_for(&file);
        flags.server = Some("https://10.0.0.1:443".into());
        flags.namespace = Some("istio-system".into());
        flags.as_user = Some("jane".into());
        flags.as_groups = vec!["ops".into(), "sre".into()];
        flags.as_uid = Some("1234".into());
        flags.insecure_skip_tls_verify = true;
        flags.tls_server_name = Some("kubernetes".into());
        flags.request_timeout = Some(Duration::from_secs(7));
        let config = resolve_config(&flags, None).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://10.0.0.1:443/");
        assert_eq!(config.default_namespace, "istio-system");
        assert_eq!(config.auth_info.impersonate.as_deref(), Some("jane"));
        assert_eq!(
            config.auth_info.impersonate_groups,
            Some(vec!["ops".to_string(), "sre".to_string()])
        );
        assert_eq!(config.auth_info.impersonate_uid.as_deref(), Some("1234"));
        assert!(config.accept_invalid_certs);
        assert_eq!(config.tls_server_name.as_deref(), Some("kubernetes"));
        assert_eq!(config.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(
            config.read_timeout, None,
            "a read timeout would cut watches; RequestTimeoutLayer bounds each request instead"
        );
    }

    /// An inner service that answers after `delay` (tokio's paused clock makes it instant).
    #[derive(Clone)]
    struct SlowApi(Duration);

    impl tower::Service<http::Request<()>> for SlowApi {
        type Response = &'static str;
        type Error = tower::BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<&'static str, tower::BoxError>> + Send>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let delay = self.0;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok("answered")
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn request_timeout_bounds_requests_but_not_watches() {
        use tower::{Layer, Service};
        let layer = RequestTimeoutLayer {
            timeout: Some(Duration::from_secs(5)),
        };
        let mut api = layer.layer(SlowApi(Duration::from_secs(60)));
        let get = http::Request::get("/apis/apps/v1/namespaces/a/deployments/x")
            .body(())
            .unwrap();
        let err = api.call(get).await.unwrap_err();
        assert!(err.to_string().contains("--request-timeout"), "{err}");
        let watch =
            http::Request::get("/apis/apps/v1/namespaces/a/deployments?watch=true&fieldSelector=x")
                .body(())
                .unwrap();
        assert_eq!(api.call(watch).await.unwrap(), "answered");
    }

    #[tokio::test]
    async fn unknown_context_is_named_with_the_known_ones() {
        let file = kubeconfig_file(TWO_CONTEXTS);
        let err = resolve_config(&flags_for(&file), Some("north"))
            .await
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("\"north\"") && text.contains("east, west"),
            "{text}"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[tokio::test]
    async fn malformed_kubeconfig_is_a_clear_error() {
        let file = kubeconfig_file("clusters: [this is not: valid");
        let err = resolve_config(&flags_for(&file), None).await.err().unwrap();
        assert!(
            err.to_string().starts_with("cannot load kubeconfig"),
            "{err}"
        );
    }
}
