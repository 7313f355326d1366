//! Helm's release storage, written the way `helm uninstall` writes it (DOMAIN §6): the newest
//! record marked `uninstalling` first, every record Secret deleted last, so `helm ls` stops
//! listing the release only once its objects are gone. And the `helm` binary, for releases
//! whose delete hooks only Helm can run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams, Preconditions};

use crate::client::Cluster;
use crate::error::{Action, RevError};
use crate::flags::{ConnectionFlags, DryRun};
use crate::snapshot::helm::{decode_release_payload, encode_release_payload};

const RELEASE_TYPE: &str = "helm.sh/release.v1";

/// Every record Secret of a release (history included), oldest first.
pub async fn list_records(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
) -> Result<Vec<Secret>, RevError> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let params = ListParams::default().labels(&format!("owner=helm,name={release}"));
    let list = api
        .list(&params)
        .await
        .map_err(cluster.error(Action::new("list", "secrets").in_namespace(namespace)))?;
    let mut records: Vec<Secret> = list
        .items
        .into_iter()
        .filter(|s| s.type_.as_deref() == Some(RELEASE_TYPE))
        .collect();
    records.sort_by_key(record_version);
    Ok(records)
}

fn record_version(secret: &Secret) -> i64 {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("version"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn record_status(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("status"))
        .map(String::as_str)
}

/// Marks the newest record `uninstalling`, as Helm does before deleting anything: an
/// interrupted prune leaves the release visibly half-removed (`helm ls -a`), and a re-run
/// finishes it. Replaced with its resourceVersion, so a concurrent Helm write wins.
pub async fn mark_uninstalling(
    cluster: &Cluster,
    newest: &Secret,
    dry_run: DryRun,
) -> Result<(), RevError> {
    if record_status(newest) == Some("uninstalling") {
        return Ok(());
    }
    let name = newest.metadata.name.clone().unwrap_or_default();
    let namespace = newest.metadata.namespace.clone().unwrap_or_default();
    let payload = newest
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| RevError::InvalidData {
            what: format!("Helm record {namespace}/{name}"),
            why: "it has no `release` key; run `helm uninstall` by hand".into(),
        })?;
    let mut release = decode_release_payload(&payload.0).map_err(|e| RevError::InvalidData {
        what: format!("Helm record {namespace}/{name}"),
        why: format!("{e}; run `helm uninstall` by hand"),
    })?;
    if let Some(info) = release.get_mut("info").and_then(|i| i.as_object_mut()) {
        info.insert("status".into(), "uninstalling".into());
        info.insert("deleted".into(), jiff::Timestamp::now().to_string().into());
        info.insert(
            "description".into(),
            "Deletion in progress (or silently failed)".into(),
        );
    }
    let mut updated = newest.clone();
    updated.metadata.managed_fields = None;
    updated
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("status".into(), "uninstalling".into());
    updated.data.get_or_insert_with(Default::default).insert(
        "release".into(),
        ByteString(encode_release_payload(&release, true)),
    );
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &namespace);
    let params = PostParams {
        dry_run: dry_run == DryRun::Server,
        field_manager: Some("kubectl-rev-prune".into()),
    };
    api.replace(&name, &params, &updated)
        .await
        .map_err(cluster.error(Action::new("update", "secrets").object(&name, Some(&namespace))))?;
    Ok(())
}

/// Deletes every record of the release: afterwards `helm ls` no longer lists it.
pub async fn delete_records(
    cluster: &Cluster,
    records: &[Secret],
    dry_run: DryRun,
) -> Result<usize, RevError> {
    let mut deleted = 0;
    for record in records {
        let name = record.metadata.name.clone().unwrap_or_default();
        let namespace = record.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &namespace);
        let mut params = super::delete_params(dry_run);
        params.preconditions = record.metadata.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        });
        match api.delete(&name, &params).await {
            Ok(_) => deleted += 1,
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(cluster.error(
                    Action::new("delete", "secrets").object(&name, Some(&namespace)),
                )(e));
            }
        }
    }
    Ok(deleted)
}

/// The first `helm` executable on PATH.
pub fn find_helm_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(if cfg!(windows) { "helm.exe" } else { "helm" }))
        .find(|candidate| candidate.is_file())
}

/// The connection flags Helm understands, mapped to its names; the ones it has no flag for.
/// The bearer token is not among them: it goes through Helm's environment
/// ([`HELM_TOKEN_ENV`]), never on a command line any local user can read.
pub fn helm_connection_args(flags: &ConnectionFlags) -> (Vec<String>, Vec<&'static str>) {
    let mut args = Vec::new();
    let mut unsupported = Vec::new();
    let mut push = |flag: &str, value: String| {
        args.push(flag.to_string());
        args.push(value);
    };
    if let Some(k) = &flags.kubeconfig {
        push("--kubeconfig", k.display().to_string());
    }
    if let Some(c) = flags.contexts.first() {
        push("--kube-context", c.clone());
    }
    if let Some(s) = &flags.server {
        push("--kube-apiserver", s.clone());
    }
    if let Some(u) = &flags.as_user {
        push("--kube-as-user", u.clone());
    }
    for g in &flags.as_groups {
        push("--kube-as-group", g.clone());
    }
    if let Some(ca) = &flags.certificate_authority {
        push("--kube-ca-file", ca.display().to_string());
    }
    if let Some(name) = &flags.tls_server_name {
        push("--kube-tls-server-name", name.clone());
    }
    if flags.insecure_skip_tls_verify {
        args.push("--kube-insecure-skip-tls-verify".into());
    }
    if flags.cluster.is_some() {
        unsupported.push("--cluster");
    }
    if flags.user.is_some() {
        unsupported.push("--user");
    }
    if flags.client_certificate.is_some() || flags.client_key.is_some() {
        unsupported.push("--client-certificate/--client-key");
    }
    if flags.as_uid.is_some() {
        unsupported.push("--as-uid");
    }
    (args, unsupported)
}

/// Helm reads `--kube-token` from this environment variable too.
pub const HELM_TOKEN_ENV: &str = "HELM_KUBETOKEN";

/// `helm uninstall` for a release with delete hooks: Helm runs them, waits, and purges the
/// records. Server dry-run maps to `helm uninstall --dry-run`, which changes nothing.
pub async fn run_helm_uninstall(
    helm: &Path,
    release: &str,
    namespace: &str,
    flags: &ConnectionFlags,
    timeout: Duration,
    dry_run: DryRun,
) -> Result<(), RevError> {
    let (connection, unsupported) = helm_connection_args(flags);
    if !unsupported.is_empty() {
        return Err(RevError::Refused(crate::error::Refusal::ByHand(format!(
            "helm has no equivalent of {}: run `helm uninstall {release} -n {namespace}` yourself, then re-run",
            unsupported.join(", ")
        ))));
    }
    let mut command = std::process::Command::new(helm);
    command
        .args(["uninstall", release, "-n", namespace, "--wait", "--timeout"])
        .arg(format!("{}s", timeout.as_secs().max(1)))
        .args(connection);
    if let Some(token) = &flags.token {
        command.env(HELM_TOKEN_ENV, token);
    }
    if dry_run == DryRun::Server {
        command.arg("--dry-run");
    }
    let shown = format!("helm uninstall {release} -n {namespace}");
    let spawn_error = |source| RevError::Spawn {
        program: helm.display().to_string(),
        source,
    };
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .map_err(spawn_error)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(RevError::Helm {
            command: shown,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}
