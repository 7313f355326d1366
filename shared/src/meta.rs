//! What every plugin says about itself, behind one call: [`parse`] replaces `Cli::parse()` in
//! each `main` and adds, without touching the plugin's own flags,
//!
//! - `--version` (version, commit, build date, target; `-V` for the version alone),
//! - `--completion SHELL`: the shell's completion script (bash, zsh, fish, powershell),
//! - kubectl's plugin-completion hook: run as `kubectl_complete-rev_inventory` (a link to the
//!   plugin), it answers `kubectl rev-inventory <TAB>` in cobra's `__complete` format,
//! - the man page (`--generate-man`, hidden: `make dist` puts it in every archive).
//!
//! Flags rather than `version`/`completion` subcommands: rev-relabel and rev-restart take
//! namespace names as positionals, and a subcommand would shadow a namespace called `version`.

use std::ffi::OsString;
use std::io::Write;
use std::sync::OnceLock;

use clap::{Arg, ArgAction, Command, CommandFactory, Parser};

use crate::completion::{self, Shell};

/// Where and from what a binary was built. Release builds (`make dist`) stamp the commit, the
/// build date and the Rust target through the environment (`REV_GIT_COMMIT`, `REV_BUILD_DATE`,
/// `REV_BUILD_TARGET`); other builds say `unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// `v` + the crate version, as krew and `kubectl version` spell versions.
    pub version: String,
    pub commit: &'static str,
    pub build_date: &'static str,
    /// The Rust target triple, when the build named it.
    pub target: Option<&'static str>,
    /// Go's `os/arch` spelling, as krew's platform selectors and `kubectl version` use it.
    pub platform: String,
}

impl BuildInfo {
    pub fn current() -> BuildInfo {
        BuildInfo {
            version: format!("v{}", env!("CARGO_PKG_VERSION")),
            commit: option_env!("REV_GIT_COMMIT").unwrap_or("unknown"),
            build_date: option_env!("REV_BUILD_DATE").unwrap_or("unknown"),
            target: option_env!("REV_BUILD_TARGET"),
            platform: format!("{}/{}", go_os(std::env::consts::OS), go_arch()),
        }
    }

    /// The lines after `kubectl rev-x vX.Y.Z` in `--version`.
    pub fn long_version(&self) -> String {
        let target = match self.target {
            Some(triple) => format!("{triple} ({})", self.platform),
            None => self.platform.clone(),
        };
        format!(
            "{}\ncommit: {}\nbuilt:  {}\ntarget: {}",
            self.version, self.commit, self.build_date, target
        )
    }
}

fn go_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// `-V` and `--version` need `'static` strings (clap without its `string` feature).
fn version_strings() -> (&'static str, &'static str) {
    static STRINGS: OnceLock<(String, String)> = OnceLock::new();
    let (short, long) = STRINGS.get_or_init(|| {
        let info = BuildInfo::current();
        (info.version.clone(), info.long_version())
    });
    (short, long)
}

const COMPLETION_FLAG: &str = "completion";
const MAN_FLAG: &str = "generate-man";

/// The plugin's command with what this module adds: version texts, `--completion`,
/// `--generate-man`.
pub fn command<P: CommandFactory>() -> Command {
    let (short, long) = version_strings();
    P::command()
        .version(short)
        .long_version(long)
        .arg(
            Arg::new(COMPLETION_FLAG)
                .long(COMPLETION_FLAG)
                .value_name("SHELL")
                .value_parser(clap::value_parser!(Shell))
                // Exclusive: answered even where the plugin requires an argument (rev-prune).
                .exclusive(true)
                .help("Print the completion script for SHELL and exit"),
        )
        .arg(
            Arg::new(MAN_FLAG)
                .long(MAN_FLAG)
                .action(ArgAction::SetTrue)
                .exclusive(true)
                .hide(true)
                .help("Print the man page (roff) and exit"),
        )
}

/// Parses the command line like `P::parse()`, after answering what is not the plugin's job:
/// completion requests (kubectl's hook, or the shell script's callback) and `--completion`,
/// `--generate-man`, `--version`, `--help` all print and exit here.
pub fn parse<P: Parser>() -> P {
    let args: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = args.first().map(completion::file_stem).unwrap_or_default();
    if let Some(plugin) = completion::plugin_of_hook(&invoked_as) {
        let out = completion::answer_kubectl_hook(command::<P>(), &plugin, &args[1..]);
        print_and_exit(out.as_bytes());
    }
    if completion::answer_shell_callback(command::<P>, &args) {
        print_and_exit(b"");
    }

    let mut cmd = command::<P>();
    let matches = cmd
        .try_get_matches_from_mut(&args)
        .unwrap_or_else(|e| e.exit());
    if let Some(shell) = matches.get_one::<Shell>(COMPLETION_FLAG) {
        let bin = executable_name(&invoked_as, &cmd);
        print_and_exit(&completion::registration_script(*shell, &bin));
    }
    if matches.get_flag(MAN_FLAG) {
        print_and_exit(&man_page(cmd));
    }
    P::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
}

/// The plugin's executable name (`kubectl-rev_inventory`): what shells complete and kubectl
/// runs. From the command's name when run under another name (tests, a renamed copy).
fn executable_name(invoked_as: &str, cmd: &Command) -> String {
    if invoked_as.starts_with("kubectl-") {
        invoked_as.to_string()
    } else {
        executable_for(cmd.get_name())
    }
}

/// `kubectl rev-inventory` → `kubectl-rev_inventory` (kubectl's plugin lookup, DOMAIN §8).
pub fn executable_for(command_name: &str) -> String {
    let plugin = command_name
        .strip_prefix("kubectl ")
        .unwrap_or(command_name);
    format!("kubectl-{}", plugin.replace('-', "_"))
}

/// The man page of a plugin's command (section 1), named after its executable.
pub fn man_page(cmd: Command) -> Vec<u8> {
    let title = executable_for(cmd.get_name());
    // The page is the same for every platform (make dist renders it once): the version alone,
    // not the target of the binary that rendered it.
    let cmd = cmd.long_version(None);
    let mut out = Vec::new();
    // Rendering into a Vec cannot fail.
    let build_date = BuildInfo::current().build_date;
    let _ = clap_mangen::Man::new(cmd)
        .title(title)
        .date(build_date.get(..10).unwrap_or(""))
        .source(format!("kubectl rev-* v{}", env!("CARGO_PKG_VERSION")))
        .manual("kubectl plugins")
        .render(&mut out);
    out
}

fn print_and_exit(bytes: &[u8]) -> ! {
    let mut stdout = std::io::stdout().lock();
    let code = match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        // `… | head` closing the pipe is a normal end (Rust ignores SIGPIPE).
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(_) => 1,
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_names_follow_kubectls_plugin_lookup() {
        assert_eq!(
            executable_for("kubectl rev-inventory"),
            "kubectl-rev_inventory"
        );
        assert_eq!(executable_for("rev-prune"), "kubectl-rev_prune");
    }

    #[test]
    fn long_version_names_commit_date_and_target() {
        let info = BuildInfo {
            version: "v1.2.3".into(),
            commit: "0123abc",
            build_date: "2026-11-27T09:00:00Z",
            target: Some("aarch64-unknown-linux-musl"),
            platform: "linux/arm64".into(),
        };
        assert_eq!(
            info.long_version(),
            "v1.2.3\ncommit: 0123abc\nbuilt:  2026-11-27T09:00:00Z\ntarget: aarch64-unknown-linux-musl (linux/arm64)"
        );
    }

    #[test]
    fn platform_uses_gos_names() {
        let platform = BuildInfo::current().platform;
        assert!(
            [
                "linux/amd64",
                "linux/arm64",
                "darwin/amd64",
                "darwin/arm64",
                "windows/amd64"
            ]
            .contains(&platform.as_str())
                || !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")),
            "{platform}"
        );
    }
}
