//! One mutating run at a time: a `coordination.k8s.io` Lease the cluster holds, per namespace a
//! run changes, or for the whole cluster (prune, tags). Like leader election: the holder renews
//! it while running and releases it on exit; another run takes it over only once it has expired
//! (a run that was killed), or with `--break-lock`, which warns naming the holder.
//!
//! A namespace run and a cluster run exclude each other: a namespace run also checks the
//! cluster Lease, and a cluster run checks that no namespace Lease is held.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{ListParams, PostParams};
use tokio::task::JoinHandle;

use crate::client::Cluster;
use crate::error::{Action, RevError};
use crate::output::io::Io;

/// The Lease of a namespace run, in that namespace.
pub const NAMESPACE_LEASE: &str = "kubectl-rev";
/// The Lease of a cluster run (prune, tags), where cluster-wide Leases live.
pub const CLUSTER_LEASE: &str = "kubectl-rev-cluster";
pub const CLUSTER_LEASE_NAMESPACE: &str = "kube-system";
/// Marks the suite's Leases, so a cluster run finds the namespace ones in one list.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kubectl-rev");
/// Long enough to ride out a slow API server; a killed run frees it within this time.
pub const LEASE_SECONDS: i32 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// What a run locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockScope {
    /// The whole cluster: `rev-prune`, `rev-relabel --tag`.
    Cluster,
    /// These namespaces: `rev-relabel`, `rev-restart`.
    Namespaces(Vec<String>),
}

/// A run's claim: which cluster, what, and who (shown to whoever is refused).
pub struct LockRequest<'a> {
    pub cluster: &'a Cluster,
    pub scope: LockScope,
    /// `rev-restart`, `rev-prune 1-19`, ...
    pub command: String,
}

/// Who holds a Lease, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub identity: String,
    pub renewed: Option<Timestamp>,
    pub expired: bool,
}

/// The Leases a run holds; renewed in the background until [`RunLock::release`].
pub struct RunLock {
    leases: Vec<(Api<Lease>, String)>,
    identity: String,
    renewer: JoinHandle<()>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// `rev-restart by alice@laptop (pid 4242)`.
pub fn identity(command: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{command} by {user}@{host} (pid {})", std::process::id())
}

/// Whether `lease` is held by someone at `now`: a holder whose last renewal is younger than
/// the lease duration.
pub fn holder(lease: &Lease, now: Timestamp) -> Option<Holder> {
    let spec = lease.spec.as_ref()?;
    let identity = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    let expired = match renewed {
        Some(at) => now.as_second() - at.as_second() >= seconds,
        None => true,
    };
    Some(Holder {
        identity,
        renewed,
        expired,
    })
}

fn lease_object(name: &str, namespace: &str, identity: &str, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.into()),
            lease_duration_seconds: Some(LEASE_SECONDS),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

fn leases_resource() -> &'static str {
    "leases.coordination.k8s.io"
}

/// Takes every Lease of `request`, or none: refused (exit 1) naming the holder when one is held
/// and `break_lock` is off. Without RBAC for Leases the run goes on with a warning: the lock
/// protects against a second run, it must not stop the first.
pub async fn acquire(
    request: LockRequest<'_>,
    break_lock: bool,
    io: &mut Io,
) -> Result<Option<RunLock>, RevError> {
    let cluster = request.cluster;
    let me = identity(&request.command);
    let targets: Vec<(String, String)> = match &request.scope {
        LockScope::Cluster => vec![(
            CLUSTER_LEASE_NAMESPACE.to_string(),
            CLUSTER_LEASE.to_string(),
        )],
        LockScope::Namespaces(names) => names
            .iter()
            .map(|ns| (ns.clone(), NAMESPACE_LEASE.to_string()))
            .collect(),
    };
    match check_other_scope(cluster, &request.scope).await {
        Ok(Some((where_, held))) => refuse_or_warn(&where_, &held, break_lock, io)?,
        Ok(None) => {}
        Err(e) if e.status_code() == Some(403) => return Ok(unlocked(&e, io)),
        Err(e) => return Err(e),
    }
    let mut taken: Vec<(Api<Lease>, String)> = Vec::new();
    for (namespace, name) in targets {
        let api: Api<Lease> = Api::namespaced(cluster.client.clone(), &namespace);
        match take(cluster, &api, &namespace, &name, &me, break_lock, io).await {
            Ok(()) => taken.push((api, name)),
            Err(e) if e.status_code() == Some(403) && taken.is_empty() => {
                return Ok(unlocked(&e, io));
            }
            Err(e) => {
                release_all(&taken, &me).await;
                return Err(e);
            }
        }
    }
    let renewer = tokio::spawn(renew(taken.clone(), me.clone()));
    Ok(Some(RunLock {
        leases: taken,
        identity: me,
        renewer,
    }))
}

fn unlocked(error: &RevError, io: &mut Io) -> Option<RunLock> {
    io.err(&format!(
        "warning: no run lock ({error}): another run at the same time is not excluded\n"
    ));
    None
}

/// The other kind of scope may be held: a cluster run while we lock namespaces, or namespace
/// runs while we lock the cluster.
async fn check_other_scope(
    cluster: &Cluster,
    scope: &LockScope,
) -> Result<Option<(String, Holder)>, RevError> {
    let now = Timestamp::now();
    match scope {
        LockScope::Namespaces(_) => {
            let api: Api<Lease> = Api::namespaced(cluster.client.clone(), CLUSTER_LEASE_NAMESPACE);
            let lease = api.get_opt(CLUSTER_LEASE).await.map_err(
                cluster.error(
                    Action::new("get", leases_resource())
                        .object(CLUSTER_LEASE, Some(CLUSTER_LEASE_NAMESPACE)),
                ),
            )?;
            Ok(lease
                .as_ref()
                .and_then(|l| holder(l, now))
                .filter(|h| !h.expired)
                .map(|h| ("the cluster".to_string(), h)))
        }
        LockScope::Cluster => {
            let api: Api<Lease> = Api::all(cluster.client.clone());
            let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
            let leases = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(cluster.error(Action::new("list", leases_resource())))?;
            Ok(leases.items.iter().find_map(|l| {
                let held = holder(l, now).filter(|h| !h.expired)?;
                (l.metadata.name.as_deref() == Some(NAMESPACE_LEASE)).then(|| {
                    let ns = l.metadata.namespace.clone().unwrap_or_default();
                    (format!("namespace {ns}"), held)
                })
            }))
        }
    }
}

fn refuse_or_warn(
    where_: &str,
    held: &Holder,
    break_lock: bool,
    io: &mut Io,
) -> Result<(), RevError> {
    if break_lock {
        io.err(&format!(
            "warning: breaking the run lock of {where_} held by {}\n",
            held.identity
        ));
        return Ok(());
    }
    Err(RevError::Locked {
        scope: where_.to_string(),
        holder: held.identity.clone(),
        renewed: held.renewed.map(|t| t.to_string()),
    })
}

/// Creates the Lease, or takes it over when it is free, expired, or `break_lock`; each write
/// carries the resourceVersion read, so two runs racing for it cannot both win.
async fn take(
    cluster: &Cluster,
    api: &Api<Lease>,
    namespace: &str,
    name: &str,
    me: &str,
    break_lock: bool,
    io: &mut Io,
) -> Result<(), RevError> {
    let now = Timestamp::now();
    let action = |verb: &str| Action::new(verb, leases_resource()).object(name, Some(namespace));
    let scope = format!("namespace {namespace}");
    let where_ = if name == CLUSTER_LEASE {
        "the cluster"
    } else {
        scope.as_str()
    };
    let lost_race = |e: kube::Error, verb: &str| match &e {
        kube::Error::Api(status) if status.code == 409 => RevError::Locked {
            scope: where_.to_string(),
            holder: "another run that took it at the same moment".into(),
            renewed: None,
        },
        _ => RevError::api(&cluster.server, action(verb), e),
    };
    let existing = api
        .get_opt(name)
        .await
        .map_err(cluster.error(action("get")))?;
    let Some(existing) = existing else {
        let lease = lease_object(name, namespace, me, now);
        api.create(&PostParams::default(), &lease)
            .await
            .map_err(|e| lost_race(e, "create"))?;
        return Ok(());
    };
    if let Some(held) = holder(&existing, now).filter(|h| !h.expired) {
        refuse_or_warn(where_, &held, break_lock, io)?;
    }
    let mut lease = lease_object(name, namespace, me, now);
    lease.metadata.resource_version = existing.metadata.resource_version.clone();
    api.replace(name, &PostParams::default(), &lease)
        .await
        .map_err(|e| lost_race(e, "update"))?;
    Ok(())
}

/// Renews each Lease while the run lasts; a failed renewal is retried at the next tick (the
/// Lease stays valid for LEASE_SECONDS since the last good one).
async fn renew(leases: Vec<(Api<Lease>, String)>, me: String) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        for (api, name) in &leases {
            let Ok(mut lease) = api.get(name).await else {
                continue;
            };
            let ours = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(me.as_str());
            if !ours {
                // Broken by someone with --break-lock: theirs now; do not fight over it.
                continue;
            }
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(MicroTime(Timestamp::now()));
            }
            let _ = api.replace(name, &PostParams::default(), &lease).await;
        }
    }
}

/// Frees the Leases this run holds (only those still its own).
async fn release_all(leases: &[(Api<Lease>, String)], me: &str) {
    for (api, name) in leases {
        let Ok(mut lease) = api.get(name).await else {
            continue;
        };
        let Some(spec) = lease.spec.as_mut() else {
            continue;
        };
        if spec.holder_identity.as_deref() != Some(me) {
            continue;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        let _ = api.replace(name, &PostParams::default(), &lease).await;
    }
}

impl RunLock {
    /// Frees the Leases at the end of the run (whatever its outcome). Best effort: a Lease that
    /// cannot be freed expires after LEASE_SECONDS.
    pub async fn release(self) {
        self.renewer.abort();
        release_all(&self.leases, &self.identity).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder_identity: Option<&str>, renewed_seconds_ago: i64) -> Lease {
        let now = Timestamp::now();
        let at = Timestamp::from_second(now.as_second() - renewed_seconds_ago).unwrap_or(now);
        let mut lease = lease_object(NAMESPACE_LEASE, "bookinfo", "x", at);
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = holder_identity.map(str::to_string);
        }
        lease
    }

    #[test]
    fn a_lease_is_held_until_its_duration_has_passed_since_the_last_renewal() {
        let now = Timestamp::now();
        let fresh = holder(&lease(Some("rev-restart by a@b (pid 1)"), 5), now).expect("held");
        assert!(!fresh.expired);
        assert_eq!(fresh.identity, "rev-restart by a@b (pid 1)");
        let stale = holder(&lease(Some("rev-restart by a@b (pid 1)"), 31), now).expect("held");
        assert!(
            stale.expired,
            "a killed run frees it after {LEASE_SECONDS}s"
        );
    }

    #[test]
    fn a_released_lease_has_no_holder() {
        assert_eq!(holder(&lease(None, 0), Timestamp::now()), None);
        assert_eq!(holder(&lease(Some(""), 0), Timestamp::now()), None);
    }

    #[test]
    fn the_identity_names_the_command_and_the_process() {
        let id = identity("rev-prune 1-19");
        assert!(id.starts_with("rev-prune 1-19 by "), "{id}");
        assert!(
            id.ends_with(&format!("(pid {})", std::process::id())),
            "{id}"
        );
    }
}
