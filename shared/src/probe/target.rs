//! What to probe: `--url`s as given, a gateway Service's load-balancer address, or a local
//! port forwarded to a ready pod of a Service. Choosing the address and the pod is pure (and
//! tested on objects); reading the Service and pods and forwarding are the I/O around it.

use std::net::SocketAddr;

use http::Uri;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::flags::ProbeFlags;
use super::http::Endpoint;
use crate::client::Cluster;
use crate::error::{Action, RevError};

/// The probe target as the flags name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Urls(Vec<Uri>),
    Gateway {
        namespace: String,
        name: String,
    },
    PortForward {
        namespace: String,
        service: String,
        port: ServicePort,
    },
}

/// A Service port, by number or by name, as `kubectl port-forward svc/NAME:PORT` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServicePort {
    Number(u16),
    Name(String),
}

impl TargetSpec {
    /// Whether reaching the target needs the Kubernetes API.
    pub fn needs_api(&self) -> bool {
        !matches!(self, TargetSpec::Urls(_))
    }

    /// Reads the flags; `namespace` is -n (or the context's) for `--port-forward`.
    pub fn from_flags(flags: &ProbeFlags, namespace: &str) -> Result<TargetSpec, RevError> {
        if let Some(gateway) = &flags.gateway {
            let (ns, name) = gateway
                .split_once('/')
                .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
                .ok_or_else(|| {
                    RevError::Usage(format!(
                        "--gateway {gateway:?}: expected NAMESPACE/NAME of the gateway Service, e.g. istio-ingress/istio-ingressgateway-1-31"
                    ))
                })?;
            return Ok(TargetSpec::Gateway {
                namespace: ns.to_string(),
                name: name.to_string(),
            });
        }
        if let Some(forward) = &flags.port_forward {
            let usage = || {
                RevError::Usage(format!(
                    "--port-forward {forward:?}: expected svc/NAME:PORT, e.g. svc/productpage:9080 (-n names the namespace)"
                ))
            };
            let rest = forward
                .strip_prefix("svc/")
                .or_else(|| forward.strip_prefix("service/"))
                .or_else(|| forward.strip_prefix("services/"))
                .ok_or_else(usage)?;
            let (service, port) = rest.rsplit_once(':').ok_or_else(usage)?;
            if service.is_empty() || port.is_empty() {
                return Err(usage());
            }
            let port = match port.parse::<u16>() {
                Ok(0) => return Err(usage()),
                Ok(n) => ServicePort::Number(n),
                Err(_) => ServicePort::Name(port.to_string()),
            };
            return Ok(TargetSpec::PortForward {
                namespace: namespace.to_string(),
                service: service.to_string(),
                port,
            });
        }
        if flags.urls.is_empty() {
            return Err(RevError::Usage(
                "no probe target: give --url URL, --gateway NS/NAME or --port-forward svc/NAME:PORT".into(),
            ));
        }
        let urls = flags
            .urls
            .iter()
            .map(|url| {
                let uri: Uri = url
                    .parse()
                    .map_err(|e| RevError::Usage(format!("--url {url:?}: not a URL ({e})")))?;
                match uri.scheme_str() {
                    Some("http" | "https") if uri.host().is_some() => Ok(uri),
                    _ => Err(RevError::Usage(format!(
                        "--url {url:?}: give an absolute http:// or https:// URL"
                    ))),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(TargetSpec::Urls(urls))
    }
}

/// Endpoints for `urls`; with `--host`, each URL is requested under that name (Host header and
/// TLS server name) while its connections still go to the URL's own host and port.
pub fn url_endpoints(urls: &[Uri], host: Option<&str>) -> Result<Vec<Endpoint>, RevError> {
    urls.iter()
        .map(|uri| {
            let Some(host) = host else {
                return Ok(Endpoint {
                    uri: uri.clone(),
                    connect_to: None,
                });
            };
            let scheme = uri.scheme_str().unwrap_or("http");
            let port = uri
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 });
            let connect_host = uri
                .host()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_string();
            Ok(Endpoint {
                uri: with_authority(scheme, host, uri_path(uri))?,
                connect_to: Some((connect_host, port)),
            })
        })
        .collect()
}

fn uri_path(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

fn with_authority(scheme: &str, authority: &str, path: &str) -> Result<Uri, RevError> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| {
            RevError::Usage(format!(
                "cannot build a URL from {authority:?} and {path:?}: {e}"
            ))
        })
}

/// Where a gateway Service answers: its first load-balancer address and the port to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAddress {
    pub scheme: &'static str,
    pub host: String,
    pub port: u16,
}

/// The address of a gateway Service: `status.loadBalancer.ingress[0]` (IP, else hostname) and
/// its plain-HTTP port (named `http2`/`http*`, else port 80), or its HTTPS port (named `https*`
/// or 443) when it has no plain one. Istio's gateway chart names them `http2` (80) and `https` (443).
pub fn gateway_address(service: &Service) -> Result<GatewayAddress, RevError> {
    let name = format!(
        "{}/{}",
        service.metadata.namespace.as_deref().unwrap_or_default(),
        service.metadata.name.as_deref().unwrap_or_default()
    );
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|i| i.first());
    let host = ingress
        .and_then(|i| i.ip.clone().or_else(|| i.hostname.clone()))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| RevError::ProbeTarget {
            target: format!("gateway {name}"),
            why: "its Service has no load-balancer address (status.loadBalancer.ingress is empty)"
                .into(),
            hint: Some(format!(
                "wait for the load balancer (`kubectl get svc -n {0}`), or use --port-forward svc/{1}:PORT -n {0} on clusters without one",
                service.metadata.namespace.as_deref().unwrap_or_default(),
                service.metadata.name.as_deref().unwrap_or_default(),
            )),
        })?;
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .cloned()
        .unwrap_or_default();
    let named = |prefix: &str| {
        ports.iter().find(|p| {
            p.name
                .as_deref()
                .is_some_and(|n| n.starts_with(prefix) && !n.starts_with("https"))
        })
    };
    let plain = named("http2")
        .or_else(|| named("http"))
        .or_else(|| ports.iter().find(|p| p.port == 80));
    let secure = ports
        .iter()
        .find(|p| p.name.as_deref().is_some_and(|n| n.starts_with("https")) || p.port == 443);
    let (scheme, port) = match (plain, secure) {
        (Some(p), _) => ("http", p.port),
        (None, Some(p)) => ("https", p.port),
        (None, None) => {
            return Err(RevError::ProbeTarget {
                target: format!("gateway {name}"),
                why: "its Service has no HTTP port (none named http*/https* nor 80/443)".into(),
                hint: Some(format!("probe it with --url http://{host}:PORT/")),
            });
        }
    };
    let port = u16::try_from(port).map_err(|_| RevError::ProbeTarget {
        target: format!("gateway {name}"),
        why: format!("its port {port} is out of range"),
        hint: None,
    })?;
    Ok(GatewayAddress { scheme, host, port })
}

/// The pod and container port `--port-forward svc/NAME:PORT` connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardChoice {
    pub pod: String,
    pub container_port: u16,
}

fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Picks a ready pod among `pods` (already selected by the Service's selector) and resolves the
/// Service port to that pod's container port, as `kubectl port-forward svc/…` does: a numeric
/// targetPort is used as is, a named one is looked up among the pod's container ports.
pub fn forward_choice(
    service: &Service,
    pods: &[Pod],
    port: &ServicePort,
) -> Result<ForwardChoice, RevError> {
    let svc_name = service.metadata.name.as_deref().unwrap_or_default();
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .cloned()
        .unwrap_or_default();
    let svc_port = ports
        .iter()
        .find(|p| match port {
            ServicePort::Number(n) => p.port == i32::from(*n),
            ServicePort::Name(name) => p.name.as_deref() == Some(name.as_str()),
        })
        .ok_or_else(|| {
            let known: Vec<String> = ports
                .iter()
                .map(|p| match &p.name {
                    Some(n) => format!("{} ({n})", p.port),
                    None => p.port.to_string(),
                })
                .collect();
            RevError::Usage(format!(
                "Service {svc_name} has no port {} (it has: {})",
                match port {
                    ServicePort::Number(n) => n.to_string(),
                    ServicePort::Name(n) => n.clone(),
                },
                known.join(", ")
            ))
        })?;
    let mut ready: Vec<&Pod> = pods.iter().filter(|p| pod_ready(p)).collect();
    ready.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let pod = ready.first().ok_or_else(|| RevError::ProbeTarget {
        target: format!("svc/{svc_name}"),
        why: format!(
            "no ready pod behind it ({} pod(s) match its selector, none Ready)",
            pods.len()
        ),
        hint: Some("`kubectl get pods -l <the Service's selector>` shows why".into()),
    })?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let container_port = match &svc_port.target_port {
        None => svc_port.port,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()
            .into_iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| RevError::ProbeTarget {
                target: format!("svc/{svc_name}"),
                why: format!(
                    "pod {pod_name} has no container port named {name:?} (the Service's targetPort)"
                ),
                hint: None,
            })?,
    };
    let container_port = u16::try_from(container_port).map_err(|_| RevError::ProbeTarget {
        target: format!("svc/{svc_name}"),
        why: format!("pod {pod_name}'s port {container_port} is out of range"),
        hint: None,
    })?;
    Ok(ForwardChoice {
        pod: pod_name,
        container_port,
    })
}

/// A local loopback port whose connections are each carried to a pod's port over the API
/// server (kube's port-forward). Dropping it stops accepting.
pub struct PortForward {
    pub local: SocketAddr,
    pub choice: ForwardChoice,
    accept: JoinHandle<()>,
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl PortForward {
    /// Listens on 127.0.0.1 (a free port) and forwards each accepted connection through a new
    /// port-forward stream, so the probe's connection pool works as against a real address.
    pub async fn start(pods: Api<Pod>, choice: ForwardChoice) -> Result<PortForward, RevError> {
        let cannot_listen = |source| RevError::Local {
            what: "listen on loopback for --port-forward".into(),
            hint: None,
            source,
        };
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(cannot_listen)?;
        let local = listener.local_addr().map_err(cannot_listen)?;
        let (pod, port) = (choice.pod.clone(), choice.container_port);
        let accept = tokio::spawn(async move {
            let reported = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            while let Ok((mut conn, _)) = listener.accept().await {
                let (pods, pod, reported) = (pods.clone(), pod.clone(), reported.clone());
                tokio::spawn(async move {
                    let mut forwarder = match pods.portforward(&pod, &[port]).await {
                        Ok(f) => f,
                        Err(e) => {
                            // The probe records the failed requests; say once why they fail.
                            if !reported.swap(true, std::sync::atomic::Ordering::SeqCst) {
                                eprintln!(
                                    "warning: port-forward to pod {pod} port {port} failed: {}",
                                    crate::error::error_chain(&e)
                                );
                            }
                            return;
                        }
                    };
                    if let Some(mut upstream) = forwarder.take_stream(port) {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                    }
                    drop(forwarder);
                });
            }
        });
        Ok(PortForward {
            local,
            choice,
            accept,
        })
    }
}

/// A target ready to send to: its endpoints, and the port-forward that must live as long.
pub struct ResolvedTarget {
    pub endpoints: Vec<Endpoint>,
    /// What the target is, for the report's title.
    pub description: String,
    pub port_forward: Option<PortForward>,
}

/// Resolves the target through the API when it needs it (`client` is then required).
pub async fn resolve(
    spec: &TargetSpec,
    flags: &ProbeFlags,
    cluster: Option<&Cluster>,
) -> Result<ResolvedTarget, RevError> {
    let need_cluster = || {
        cluster.ok_or_else(|| {
            RevError::Usage("--gateway and --port-forward read the cluster: connect first".into())
        })
    };
    match spec {
        TargetSpec::Urls(urls) => Ok(ResolvedTarget {
            endpoints: url_endpoints(urls, flags.host.as_deref())?,
            description: urls
                .iter()
                .map(Uri::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            port_forward: None,
        }),
        TargetSpec::Gateway { namespace, name } => {
            resolve_gateway(need_cluster()?, namespace, name, flags).await
        }
        TargetSpec::PortForward {
            namespace,
            service,
            port,
        } => resolve_port_forward(need_cluster()?, namespace, service, port, flags).await,
    }
}

async fn get_service(cluster: &Cluster, namespace: &str, name: &str) -> Result<Service, RevError> {
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), namespace);
    services
        .get(name)
        .await
        .map_err(cluster.error(Action::new("get", "services").object(name, Some(namespace))))
}

/// `--gateway NS/NAME`: the gateway Service's load-balancer address and port.
async fn resolve_gateway(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    flags: &ProbeFlags,
) -> Result<ResolvedTarget, RevError> {
    let service = get_service(cluster, namespace, name).await?;
    let address = gateway_address(&service)?;
    let authority = if address.host.contains(':') {
        format!("[{}]:{}", address.host, address.port)
    } else {
        format!("{}:{}", address.host, address.port)
    };
    let url = with_authority(address.scheme, &authority, &flags.path)?;
    Ok(ResolvedTarget {
        endpoints: url_endpoints(std::slice::from_ref(&url), flags.host.as_deref())?,
        description: format!("gateway {namespace}/{name} at {url}"),
        port_forward: None,
    })
}

/// `--port-forward svc/NAME:PORT`: a loopback port forwarded to a ready pod the Service selects.
async fn resolve_port_forward(
    cluster: &Cluster,
    namespace: &str,
    service: &str,
    port: &ServicePort,
    flags: &ProbeFlags,
) -> Result<ResolvedTarget, RevError> {
    let svc = get_service(cluster, namespace, service).await?;
    let selector = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .ok_or_else(|| RevError::ProbeTarget {
            target: format!("svc/{service} in {namespace}"),
            why: "it has no selector, so no pod to forward to".into(),
            hint: Some("probe its endpoints with --url instead".into()),
        })?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(cluster.error(Action::new("list", "pods").in_namespace(namespace)))?;
    let choice = forward_choice(&svc, &list.items, port)?;
    let forward = PortForward::start(pods, choice.clone()).await?;
    let url = with_authority("http", &forward.local.to_string(), &flags.path)?;
    Ok(ResolvedTarget {
        endpoints: url_endpoints(std::slice::from_ref(&url), flags.host.as_deref())?,
        description: format!(
            "svc/{service} in {namespace} via pod {} port {} (port-forward)",
            choice.pod, choice.container_port
        ),
        port_forward: Some(forward),
    })
}
