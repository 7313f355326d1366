//! I/O: carrying out a confirmed plan against the API. The only code besides the snapshot
//! reader that talks to the cluster.

pub mod helm;
pub mod prune;
pub mod relabel;
pub mod restart;

use kube::api::{DeleteParams, PatchParams, PostParams};

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
