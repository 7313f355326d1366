//! Installing the plugins the way users do, with the real krew (sigs.k8s.io/krew, built by
//! tests/tools/build-krew.sh) in a temporary KREW_ROOT: release/dist.sh packs the host build as the
//! linux/amd64 archives and renders their manifests; `kubectl krew install --manifest --archive`
//! installs each; kubectl finds them through krew's bin links; shell completion of
//! `kubectl rev-relabel <TAB>` goes through kubectl's plugin-completion hook to the local
//! cluster; `kubectl krew uninstall` removes them; `kubectl krew index add` takes this
//! repository's index layout.
//!
//! $REV_KREW_E2E_STATE names the cluster's state dir (default: the default local cluster).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rev_e2e::{Cluster, show};

fn plugins(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("release/plugins.txt"))
        .expect("release/plugins.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn exe(plugin: &str) -> String {
    format!("kubectl-{}", plugin.replacen('-', "_", 1))
}

fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// A user's shell: only krew's bin directory and kubectl on PATH, krew in a temp root.
struct KrewUser<'a> {
    cluster: &'a Cluster,
    krew_root: PathBuf,
    krew_tools: PathBuf,
}

impl KrewUser<'_> {
    fn path(&self) -> String {
        format!(
            "{}:{}:{}:/usr/bin:/bin",
            self.krew_root.join("bin").display(),
            self.cluster.tools.display(),
            self.krew_tools.display()
        )
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", self.path())
            .env("HOME", &self.krew_root)
            .env("KREW_ROOT", &self.krew_root)
            // krew asks GitHub for newer krew releases now and then; there is no network here.
            .env("KREW_NO_UPGRADE_CHECK", "1")
            .env("KUBECONFIG", &self.cluster.kubeconfig)
            .env("NO_COLOR", "1")
            .current_dir(&self.cluster.root)
            .stdin(std::process::Stdio::null());
        cmd
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.command(&self.cluster.tools.join("kubectl").display().to_string())
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// What bash offers for `line<TAB>`, through kubectl's own completion script (as installed
    /// by `source <(kubectl completion bash)` over the bash-completion package, as kubectl's
    /// docs ask), which calls `kubectl __complete`.
    fn bash_complete(&self, line: &str) -> Vec<String> {
        let script = r#"
            source "$BASH_COMPLETION"
            source <(kubectl completion bash)
            read -ra COMP_WORDS <<<"$LINE"
            [[ "$LINE" == *" " ]] && COMP_WORDS+=("")
            COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
            COMP_LINE="$LINE"; COMP_POINT=${#LINE}; COMP_TYPE=9
            __start_kubectl kubectl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}"
        "#;
        let out = self
            .command("bash")
            .args(["-c", script])
            .env("LINE", line)
            .env("BASH_COMPLETION", bash_completion())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "bash completion of {line:?}: {}",
            show(&out)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// The bash-completion package's entry script, which kubectl's completion needs
/// (`_get_comp_words_by_ref`); installed with apt when missing, as a user would.
fn bash_completion() -> &'static str {
    const SCRIPT: &str = "/usr/share/bash-completion/bash_completion";
    if !Path::new(SCRIPT).is_file() {
        eprintln!("no bash-completion: installing Debian's bash-completion with apt-get");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(
            apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "bash-completion"]),
            "cannot install bash-completion: run `apt-get install bash-completion` as root"
        );
    }
    SCRIPT
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs the local cluster and Go: make e2e"]
fn krew_installs_every_plugin_and_kubectl_completes_through_it() {
    let cluster = match std::env::var_os("REV_KREW_E2E_STATE") {
        Some(state) => Cluster::fresh_in(&PathBuf::from(state)),
        None => Cluster::fresh(),
    };
    let root = cluster.root.clone();
    let plugins = plugins(&root);
    let temp = std::env::temp_dir().join(format!("rev-krew-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).expect("temp dir");

    let krew_tools = PathBuf::from(
        run_ok(
            Command::new("bash")
                .arg("tests/tools/build-krew.sh")
                .current_dir(&root),
            "tests/tools/build-krew.sh",
        )
        .trim(),
    );

    // The release packaging, on the host build (the same script `make dist` runs).
    let dist = temp.join("dist");
    run_ok(
        Command::new("bash")
            .args(["release/dist.sh", "--prebuilt"])
            .arg(&cluster.plugins)
            .arg("--out")
            .arg(&dist)
            .current_dir(&root),
        "release/dist.sh --prebuilt",
    );

    let user = KrewUser {
        cluster: &cluster,
        krew_root: temp.join("krew"),
        krew_tools: temp.join("krew-tools"),
    };
    // krew runs as `kubectl krew`: a plugin itself, named kubectl-krew on PATH.
    std::fs::create_dir_all(&user.krew_tools).expect("krew tools dir");
    std::fs::copy(
        krew_tools.join("kubectl-krew"),
        user.krew_tools.join("kubectl-krew"),
    )
    .expect("copy kubectl-krew");

    for plugin in &plugins {
        let manifest = dist.join(format!("krew-manifests/plugins/{plugin}.yaml"));
        let archive = dist.join(format!("{plugin}_{}_linux_amd64.tar.gz", version()));
        let out = user.kubectl_ok(&[
            "krew",
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={}", archive.display()),
        ]);
        assert!(
            out.contains(&format!("Installed plugin: {plugin}")),
            "{out}"
        );
        // The caveat tells users how to get completion; it is shown on install.
        assert!(
            out.contains(&format!(
                "kubectl_complete-{}",
                plugin.replacen('-', "_", 1)
            )),
            "{out}"
        );
        let store = user.krew_root.join(format!("store/{plugin}/{}", version()));
        for file in [exe(plugin), format!("{}.1", exe(plugin)), "LICENSE".into()] {
            assert!(
                store.join(&file).is_file(),
                "krew installed no {file} for {plugin}"
            );
        }
    }
    // The repository's index layout (krew-manifests/plugins/*.yaml, five platforms each) as a
    // custom index: krew clones it with git, which takes a local path. It comes before `krew
    // list`: every krew command but install and `index add` refuses to run without an index
    // (a user gets krew's default one from GitHub with `kubectl krew update`; no network here).
    let index = temp.join("index");
    std::fs::create_dir_all(&index).expect("index dir");
    run_ok(
        Command::new("cp")
            .args(["-R", "krew-manifests/plugins"])
            .arg(&index)
            .current_dir(&root),
        "copy index",
    );
    let git = |args: &[&str]| {
        run_ok(
            Command::new("git")
                .args(["-c", "user.name=e2e", "-c", "user.email=e2e@localhost"])
                .args(args)
                .current_dir(&index),
            "git",
        )
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "index"]);
    user.kubectl_ok(&["krew", "index", "add", "rev", &index.display().to_string()]);
    let found = user.kubectl_ok(&["krew", "search", "rev-"]);
    for plugin in &plugins {
        assert!(
            found.contains(&format!("rev/{plugin}")),
            "krew search: {found}"
        );
    }
    let info = user.kubectl_ok(&["krew", "info", "rev/rev-inventory"]);
    assert!(info.contains(&format!("VERSION: {}", version())), "{info}");
    assert!(
        info.contains(&format!("rev-inventory_{}_linux_amd64.tar.gz", version())),
        "{info}"
    );

    let listed = user.kubectl_ok(&["krew", "list"]);
    for plugin in &plugins {
        assert!(listed.contains(plugin.as_str()), "krew list: {listed}");
    }

    // kubectl's plugin lookup finds krew's links, and --version says what was installed.
    let found = user.kubectl_ok(&["plugin", "list"]);
    for plugin in &plugins {
        let link = user.krew_root.join("bin").join(exe(plugin));
        assert!(found.contains(&link.display().to_string()), "{found}");
        let version_text = user.kubectl_ok(&[plugin.as_str(), "--version"]);
        assert!(
            version_text.starts_with(&format!("kubectl {plugin} {}\n", version())),
            "{version_text}"
        );
        assert!(version_text.contains("\ncommit: "), "{version_text}");
        assert!(version_text.contains("\ntarget: "), "{version_text}");
    }

    // Completion: the link the caveat asks for, then bash → kubectl → kubectl_complete-*.
    for plugin in &plugins {
        let hook = user
            .krew_root
            .join("bin")
            .join(format!("kubectl_complete-{}", plugin.replacen('-', "_", 1)));
        std::os::unix::fs::symlink(exe(plugin), &hook).expect("completion link");
    }
    let offered = user.bash_complete("kubectl rev-relabel ");
    for ns in ["bookinfo", "default", "istio-system", "kube-system"] {
        assert!(
            offered.iter().any(|o| o == ns),
            "{ns} not offered: {offered:?}"
        );
    }
    assert!(
        offered.iter().all(|o| !o.starts_with('-')),
        "flags offered before nouns: {offered:?}"
    );
    let offered = user.bash_complete("kubectl rev-relabel book");
    assert_eq!(offered, ["bookinfo"]);
    // After the namespaces, the target: a revision or a tag.
    let offered = user.bash_complete("kubectl rev-relabel bookinfo ");
    assert!(offered.iter().any(|o| o == "1-30"), "{offered:?}");
    assert!(offered.iter().any(|o| o == "default"), "{offered:?}");
    let offered = user.bash_complete("kubectl rev-prune ");
    assert_eq!(offered, ["1-30"]);
    let offered = user.bash_complete("kubectl rev-restart -n istio-");
    assert!(offered.iter().any(|o| o == "istio-system"), "{offered:?}");
    let offered = user.bash_complete("kubectl rev-inventory --dry");
    assert!(
        offered.is_empty(),
        "inventory has no --dry-run: {offered:?}"
    );
    let offered = user.bash_complete("kubectl rev-inventory -o ");
    // kubectl has no `-o table` either: the default is no -o.
    assert_eq!(offered, ["wide", "json", "yaml", "name"]);

    // Uninstall: the links go, and kubectl no longer finds the plugins.
    for plugin in &plugins {
        user.kubectl_ok(&["krew", "uninstall", plugin.as_str()]);
        assert!(!user.krew_root.join("bin").join(exe(plugin)).exists());
        let out = user.kubectl(&[plugin.as_str(), "--version"]);
        assert!(!out.status.success(), "{plugin} still runs: {}", show(&out));
        assert!(
            !user.krew_root.join(format!("store/{plugin}")).exists(),
            "krew left {plugin}'s files"
        );
    }

    let _ = std::fs::remove_dir_all(&temp);
}
