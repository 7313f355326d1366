//! I/O: carrying out a confirmed plan against the API. The only code besides the snapshot
//! reader that talks to the cluster.

pub mod diagnose;
pub mod helm;
pub mod lock;
pub mod prune;
pub mod relabel;
pub mod restart;

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use kube::api::{DeleteParams, PatchParams, PostParams};

use crate::error::{Action, RevError};
use crate::flags::DryRun;

/// Patch parameters for a plan step: the field manager, and `dryRun=All` for server dry-run.
pub fn patch_params(field_manager: &str, dry_run: DryRun) -> PatchParams {
    let mut params = PatchParams {
        field_manager: Some(field_manager.to_string()),
        ..Default::default()
    };
    if dry_run == DryRun::Server {
        params = params.dry_run();
    }
    params
}

pub fn post_params(field_manager: &str, dry_run: DryRun) -> PostParams {
    PostParams {
        dry_run: dry_run == DryRun::Server,
        field_manager: Some(field_manager.to_string()),
    }
}

pub fn delete_params(dry_run: DryRun) -> DeleteParams {
    DeleteParams {
        dry_run: dry_run == DryRun::Server,
        ..DeleteParams::background()
    }
}

/// How many times a guarded write is tried before giving up on a conflict.
pub const CONFLICT_ATTEMPTS: usize = 5;

/// client-go's `RetryOnConflict`: runs a guarded read-modify-write (`step`, given the attempt
/// number: 0 writes what was planned, later attempts re-read first), and on 409 Conflict waits
/// a jittered, growing delay and runs it again, [`CONFLICT_ATTEMPTS`] times at most. Any other
/// outcome is returned as is.
pub async fn retry_on_conflict<T>(
    action: Action,
    mut step: impl AsyncFnMut(usize) -> Result<T, RevError>,
) -> Result<T, RevError> {
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(10))
        .with_factor(3.0)
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(CONFLICT_ATTEMPTS - 1)
        .with_jitter()
        .build();
    let mut attempt = 0;
    loop {
        match step(attempt).await {
            Err(e) if e.status_code() == Some(409) => match delays.next() {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => {
                    return Err(RevError::Conflict {
                        action,
                        attempts: attempt + 1,
                    });
                }
            },
            other => return other,
        }
    }
}

/// Watches the object `name` until `done` says so (given the object, `None` once it is gone),
/// or `timeout` passes (`false`). The watch re-lists and resumes after a dropped connection or
/// a watch error, with kube's default backoff: transient trouble never ends the wait early.
pub async fn wait_until<K>(
    api: kube::Api<K>,
    name: &str,
    timeout: Duration,
    mut done: impl FnMut(Option<&K>) -> bool,
) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use futures::StreamExt;
    use kube::runtime::watcher::{self, Event};
    use kube::runtime::{WatchStreamExt, watcher as watch};

    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watch(api, config).default_backoff().boxed();
    let wait = async {
        // During a (re)list the object is known only once the list is done.
        let mut listed: Option<K> = None;
        while let Some(event) = events.next().await {
            let current = match event {
                Ok(Event::Init) => {
                    listed = None;
                    continue;
                }
                Ok(Event::InitApply(obj)) => {
                    listed = Some(obj);
                    continue;
                }
                Ok(Event::InitDone) => listed.take(),
                Ok(Event::Apply(obj)) => Some(obj),
                Ok(Event::Delete(_)) => None,
                // The stream has already backed off; it re-lists by itself.
                Err(_) => continue,
            };
            if done(current.as_ref()) {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(timeout, wait).await.unwrap_or(false)
}
