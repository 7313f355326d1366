//! Shell completion, with namespaces, revisions, tags and kubeconfig names from the cluster.
//!
//! Two ways in, one engine (clap_complete's):
//!
//! - **`kubectl rev-relabel <TAB>`**: kubectl (≥ 1.26) looks on `PATH` for
//!   `kubectl_complete-rev_relabel`, runs it with the words after the plugin name (the last one
//!   being the word under the cursor, `""` for a new one) and reads cobra's `__complete` format:
//!   one candidate per line (`value<TAB>description`), then `:<directive>`. That executable is a
//!   link to the plugin itself: run under that name, the plugin answers instead of running.
//!   krew links only a manifest's one `bin` (krew issue #812), so users create the link.
//! - **`kubectl-rev_relabel <TAB>`** (direct calls, aliases): `--completion SHELL` prints
//!   clap_complete's registration script; the shell then calls the plugin back with
//!   `KUBECTL_REV_COMPLETE=<shell>`.
//!
//! Which argument completes what is decided by its clap id (see [`nouns_for`]), so plugins
//! declare nothing. Reading the cluster is metadata-only, bounded in time and silent on every
//! error: a completion that cannot reach the cluster offers nothing, never an error message.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::builder::StyledStr;
use clap::{Command, FromArgMatches, ValueEnum};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, CompleteEnv, EnvCompleter, Fish, Powershell, Zsh};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, ObjectList, PartialObjectMeta};

use crate::keys::{INJECTION as INJECTION_LABEL, REV as REV_LABEL, TAG as TAG_LABEL};

use crate::flags::ConnectionFlags;

/// The shells `--completion` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// The variable the `--completion` scripts set when they call the plugin back.
pub const CALLBACK_VAR: &str = "KUBECTL_REV_COMPLETE";

/// The prefix kubectl puts before a plugin's name to find its completion executable.
const HOOK_PREFIX: &str = "kubectl_complete-";

/// How long completion may wait for the cluster, unless `--request-timeout` says otherwise.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(5);

// cobra's ShellCompDirective bits (spf13/cobra completions.go), as kubectl relays them.
const DIRECTIVE_NO_SPACE: u8 = 2;
const DIRECTIVE_NO_FILE_COMP: u8 = 4;

/// `kubectl-rev_inventory` → `kubectl_complete-rev_inventory`: the executable kubectl runs to
/// complete `kubectl rev-inventory …`.
pub fn hook_name(executable: &str) -> String {
    let plugin = executable.strip_prefix("kubectl-").unwrap_or(executable);
    format!("{HOOK_PREFIX}{plugin}")
}

/// The file name a process was started as, without directory and `.exe`.
pub(crate) fn file_stem(arg0: &OsString) -> String {
    let name = Path::new(arg0)
        .file_name()
        .unwrap_or(arg0.as_os_str())
        .to_string_lossy();
    name.strip_suffix(".exe").unwrap_or(&name).to_string()
}

/// `Some("rev_inventory")` when started as kubectl's completion executable.
pub(crate) fn plugin_of_hook(stem: &str) -> Option<String> {
    stem.strip_prefix(HOOK_PREFIX).map(str::to_string)
}

/// Answers kubectl's plugin-completion call: `words` are the plugin's arguments, the last one
/// the word being completed. Returns cobra's `__complete` output.
pub(crate) fn answer_kubectl_hook(cmd: Command, plugin: &str, words: &[OsString]) -> String {
    let (before, current) = match words.split_last() {
        Some((current, before)) => (before.to_vec(), current.clone()),
        None => (Vec::new(), OsString::new()),
    };
    let mut cmd = with_cluster_completers(cmd, &before);
    let mut args = vec![OsString::from(format!("kubectl-{plugin}"))];
    args.extend(before);
    args.push(current.clone());
    let index = args.len() - 1;
    let cwd = std::env::current_dir().ok();
    let candidates =
        clap_complete::engine::complete(&mut cmd, args, index, cwd.as_deref()).unwrap_or_default();
    cobra_format(&candidates, &current.to_string_lossy())
}

/// Cobra's format. Like kubectl's own commands, an empty word offers nouns before flags:
/// flags only when nothing else fits or the word starts with `-`.
fn cobra_format(candidates: &[CompletionCandidate], current: &str) -> String {
    let is_flag = |c: &CompletionCandidate| c.get_value().to_string_lossy().starts_with('-');
    let offer_nouns_only = !current.starts_with('-') && candidates.iter().any(|c| !is_flag(c));
    let mut out = String::new();
    let mut no_space = false;
    for candidate in candidates {
        if candidate.is_hide_set() || (offer_nouns_only && is_flag(candidate)) {
            continue;
        }
        let value = candidate.get_value().to_string_lossy();
        // A directory or `--flag=` is a prefix of what comes next, not a finished word.
        no_space |= value.ends_with('/') || value.ends_with('=');
        out.push_str(&value);
        if let Some(help) = candidate
            .get_help()
            .map(first_line)
            .filter(|h| !h.is_empty())
        {
            out.push('\t');
            out.push_str(&help);
        }
        out.push('\n');
    }
    let directive = DIRECTIVE_NO_FILE_COMP | if no_space { DIRECTIVE_NO_SPACE } else { 0 };
    out.push_str(&format!(":{directive}\n"));
    out
}

fn first_line(help: &StyledStr) -> String {
    help.to_string()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Answers the `--completion` scripts' callback (`KUBECTL_REV_COMPLETE=<shell> plugin -- words`)
/// on stdout. False when this is not such a call.
pub(crate) fn answer_shell_callback(factory: fn() -> Command, args: &[OsString]) -> bool {
    if std::env::var_os(CALLBACK_VAR).is_none_or(|v| v.is_empty() || v == "0") {
        return false;
    }
    // args: plugin -- plugin word… current; the words before the current one scope the cluster.
    let words: Vec<OsString> = args
        .iter()
        .skip_while(|a| *a != "--")
        .skip(2)
        .cloned()
        .collect();
    let before = words
        .split_last()
        .map(|(_, b)| b.to_vec())
        .unwrap_or_default();
    let cwd = std::env::current_dir().ok();
    let answered = CompleteEnv::with_factory(move || with_cluster_completers(factory(), &before))
        .var(CALLBACK_VAR)
        .try_complete(args.iter().cloned(), cwd.as_deref());
    // A malformed callback (unknown shell) is the script's problem; say nothing, like any
    // other completion failure.
    answered.unwrap_or(true)
}

/// The script that makes `bin <TAB>` complete, for `--completion SHELL`.
pub(crate) fn registration_script(shell: Shell, bin: &str) -> Vec<u8> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Powershell => &Powershell,
    };
    let mut out = Vec::new();
    // The completer is found on PATH by name, as kubectl finds the plugin: the script keeps
    // working when krew moves the binary on upgrade.
    let _ = completer.write_registration(CALLBACK_VAR, bin, bin, bin, &mut out);
    out
}

/// What an argument completes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nouns {
    Namespaces,
    Revisions,
    RevisionsAndTags,
    Tags,
    Contexts,
    Clusters,
    Users,
    /// rev-relabel's `NAMESPACE... REVISION`: namespaces first, then the target as well.
    RelabelPositionals,
}

/// The clap ids that complete from the cluster or the kubeconfig. An id not listed completes
/// as clap knows it (possible values, paths) or not at all.
fn nouns_for(id: &str) -> Option<Nouns> {
    Some(match id {
        // ConnectionFlags, in every plugin
        "namespace" => Nouns::Namespaces,
        "contexts" => Nouns::Contexts,
        "cluster" => Nouns::Clusters,
        "user" => Nouns::Users,
        // rev-restart's NAMESPACE...
        "namespaces" => Nouns::Namespaces,
        // rev-relabel
        "args" => Nouns::RelabelPositionals,
        "from" => Nouns::Revisions,
        "tag" => Nouns::Tags,
        // rev-prune's OLD_REVISION
        "revision" => Nouns::Revisions,
        _ => return None,
    })
}

/// What the words typed so far say: the connection to read, and rev-relabel's form.
#[derive(Debug, Default, Clone)]
struct TypedSoFar {
    connection: ConnectionFlags,
    positionals: usize,
    undo: bool,
    /// `--tag`, `--from` or `-l`: the only positional left is the target revision.
    target_only: bool,
}

impl TypedSoFar {
    fn parse(cmd: &Command, before: &[OsString]) -> TypedSoFar {
        let args = std::iter::once(OsString::from(cmd.get_name())).chain(before.iter().cloned());
        let Ok(matches) = cmd.clone().ignore_errors(true).try_get_matches_from(args) else {
            return TypedSoFar::default();
        };
        let present = |id: &str| matches!(matches.try_contains_id(id), Ok(true));
        TypedSoFar {
            connection: ConnectionFlags::from_arg_matches(&matches).unwrap_or_default(),
            positionals: matches
                .try_get_raw("args")
                .ok()
                .flatten()
                .map_or(0, |values| values.len()),
            undo: matches!(matches.try_get_one::<bool>("undo"), Ok(Some(true))),
            target_only: present("tag") || present("from") || present("selector"),
        }
    }
}

/// The plugin's command with a completer on each argument [`nouns_for`] knows.
fn with_cluster_completers(mut cmd: Command, before: &[OsString]) -> Command {
    let typed = TypedSoFar::parse(&cmd, before);
    let lookup = Arc::new(ClusterLookup::new(typed.connection.clone()));
    let ids: Vec<(String, Nouns)> = cmd
        .get_arguments()
        .filter_map(|a| nouns_for(a.get_id().as_str()).map(|n| (a.get_id().to_string(), n)))
        .collect();
    for (id, nouns) in ids {
        let nouns = match nouns {
            Nouns::RelabelPositionals if typed.undo => Nouns::Namespaces,
            Nouns::RelabelPositionals if typed.target_only => Nouns::RevisionsAndTags,
            Nouns::RelabelPositionals if typed.positionals == 0 => Nouns::Namespaces,
            other => other,
        };
        let lookup = Arc::clone(&lookup);
        cmd = cmd.mut_arg(id, move |arg| {
            arg.add(ArgValueCompleter::new(move |current: &OsStr| {
                lookup.candidates(nouns, &current.to_string_lossy())
            }))
        });
    }
    cmd
}

/// Names from the cluster (read once per completion) and the kubeconfig.
struct ClusterLookup {
    connection: ConnectionFlags,
    names: OnceLock<ClusterNames>,
}

#[derive(Debug, Default)]
struct ClusterNames {
    /// Namespace → its injection label, shown beside it.
    namespaces: BTreeMap<String, Option<String>>,
    /// Revision → where it was seen.
    revisions: BTreeMap<String, String>,
    /// Tag → the revision it points at.
    tags: BTreeMap<String, String>,
}

impl ClusterLookup {
    fn new(mut connection: ConnectionFlags) -> ClusterLookup {
        // rev-inventory takes --context several times; completion asks the first cluster.
        connection.contexts.truncate(1);
        ClusterLookup {
            connection,
            names: OnceLock::new(),
        }
    }

    fn candidates(&self, nouns: Nouns, current: &str) -> Vec<CompletionCandidate> {
        let mut out = Vec::new();
        let mut push = |value: &str, help: Option<String>| {
            if value.starts_with(current) {
                out.push(CompletionCandidate::new(value).help(help.map(StyledStr::from)));
            }
        };
        match nouns {
            Nouns::Contexts | Nouns::Clusters | Nouns::Users => {
                for (name, help) in kubeconfig_names(&self.connection, nouns) {
                    push(&name, help);
                }
            }
            _ => {
                let names = self.names.get_or_init(|| self.read(nouns));
                let want_namespaces =
                    matches!(nouns, Nouns::Namespaces | Nouns::RelabelPositionals);
                let want_revisions = !matches!(nouns, Nouns::Namespaces | Nouns::Tags);
                let want_tags = matches!(
                    nouns,
                    Nouns::Tags | Nouns::RevisionsAndTags | Nouns::RelabelPositionals
                );
                if want_namespaces {
                    for (ns, label) in &names.namespaces {
                        push(ns, label.clone());
                    }
                }
                if want_revisions {
                    for (rev, seen) in &names.revisions {
                        push(rev, Some(format!("revision ({seen})")));
                    }
                }
                if want_tags {
                    for (tag, rev) in &names.tags {
                        push(tag, Some(format!("tag → {rev}")));
                    }
                }
            }
        }
        out
    }

    /// Reads what `nouns` needs, within the time limit; nothing on any error.
    fn read(&self, nouns: Nouns) -> ClusterNames {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return ClusterNames::default();
        };
        let limit = self
            .connection
            .request_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(CLUSTER_TIMEOUT);
        runtime.block_on(async {
            tokio::time::timeout(limit, read_names(&self.connection, nouns))
                .await
                .ok()
                .flatten()
                .unwrap_or_default()
        })
    }
}

async fn read_names(connection: &ConnectionFlags, nouns: Nouns) -> Option<ClusterNames> {
    let conn = crate::client::connect(connection, 0).await.ok()?;
    let client = conn.client;
    let mut names = ClusterNames::default();
    let want_namespaces = matches!(nouns, Nouns::Namespaces | Nouns::RelabelPositionals);
    let want_revisions = !matches!(nouns, Nouns::Namespaces);
    let (namespaces, webhooks, istiods) = tokio::join!(
        list_metadata_if::<Namespace>(want_namespaces, &client, None),
        list_metadata_if::<MutatingWebhookConfiguration>(want_revisions, &client, Some(REV_LABEL)),
        list_metadata_if::<Deployment>(want_revisions, &client, Some("app=istiod")),
    );
    for ns in namespaces.into_iter().flat_map(|l| l.items) {
        let labels = ns.metadata.labels.unwrap_or_default();
        // The label that decides injection (DOMAIN §2): the legacy one wins when present.
        let injection = labels
            .get(INJECTION_LABEL)
            .map(|v| format!("{INJECTION_LABEL}={v}"))
            .or_else(|| labels.get(REV_LABEL).map(|v| format!("{REV_LABEL}={v}")));
        if let Some(name) = ns.metadata.name {
            names.namespaces.insert(name, injection);
        }
    }
    for webhook in webhooks.into_iter().flat_map(|l| l.items) {
        let labels = webhook.metadata.labels.unwrap_or_default();
        let Some(rev) = labels.get(REV_LABEL).filter(|r| !r.is_empty()) else {
            continue;
        };
        // A tag's webhook carries istio.io/tag and its target's istio.io/rev (DOMAIN §1).
        match labels.get(TAG_LABEL) {
            Some(tag) => {
                names.tags.insert(tag.clone(), rev.clone());
            }
            None => {
                names
                    .revisions
                    .entry(rev.clone())
                    .or_insert_with(|| "injector".into());
            }
        }
    }
    for istiod in istiods.into_iter().flat_map(|l| l.items) {
        if let Some(rev) = istiod.metadata.labels.unwrap_or_default().get(REV_LABEL) {
            names.revisions.insert(rev.clone(), "istiod".into());
        }
    }
    Some(names)
}

/// A cluster-wide metadata-only list when it is wanted; a failed read is no candidates, not an
/// error (completion stays quiet).
async fn list_metadata_if<K>(
    wanted: bool,
    client: &kube::Client,
    labels: Option<&str>,
) -> Option<ObjectList<PartialObjectMeta<K>>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    if !wanted {
        return None;
    }
    let params = match labels {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    };
    Api::<K>::all(client.clone())
        .list_metadata(&params)
        .await
        .ok()
}

/// Context, cluster or user names of the kubeconfig the flags point at.
fn kubeconfig_names(connection: &ConnectionFlags, nouns: Nouns) -> Vec<(String, Option<String>)> {
    let Ok(kubeconfig) = crate::client::read_kubeconfig(connection) else {
        return Vec::new();
    };
    match nouns {
        Nouns::Contexts => kubeconfig
            .contexts
            .into_iter()
            .map(|c| {
                let cluster = c.context.map(|ctx| format!("cluster {}", ctx.cluster));
                (c.name, cluster)
            })
            .collect(),
        Nouns::Clusters => kubeconfig
            .clusters
            .into_iter()
            .map(|c| (c.name, None))
            .collect(),
        Nouns::Users => kubeconfig
            .auth_infos
            .into_iter()
            .map(|u| (u.name, None))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_follow_kubectls_lookup() {
        assert_eq!(
            hook_name("kubectl-rev_inventory"),
            "kubectl_complete-rev_inventory"
        );
        assert_eq!(
            plugin_of_hook(&file_stem(&OsString::from(
                "/home/u/.krew/bin/kubectl_complete-rev_relabel.exe"
            ))),
            Some("rev_relabel".to_string())
        );
        assert_eq!(plugin_of_hook("kubectl-rev_relabel"), None);
    }

    #[test]
    fn cobra_format_lists_values_with_descriptions_then_the_directive() {
        let candidates = vec![
            CompletionCandidate::new("bookinfo").help(Some("istio.io/rev=1-30".into())),
            CompletionCandidate::new("default"),
            CompletionCandidate::new("--dry-run").help(Some("none, client or server".into())),
        ];
        assert_eq!(
            cobra_format(&candidates, ""),
            "bookinfo\tistio.io/rev=1-30\ndefault\n:4\n"
        );
        // Nothing but flags fits (rev-inventory takes no positional): flags are offered.
        assert_eq!(
            cobra_format(&candidates[2..], ""),
            "--dry-run\tnone, client or server\n:4\n"
        );
        assert_eq!(
            cobra_format(&[CompletionCandidate::new("--namespace=")], "--name"),
            "--namespace=\n:6\n"
        );
    }
}
