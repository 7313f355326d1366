//! Every krew manifest follows krew's rules (DOMAIN §8): the index layout, the name matching the
//! file, a `v`-prefixed version equal to the crate's, the five platforms, archives that yield
//! the binary kubectl looks up, its man page and the LICENSE; and each is its template rendered
//! (release/dist.sh), not a hand edit. krew's own validator and real installs of every archive
//! run in release/check-dist.sh (make dist) and the krew e2e.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manifest {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    version: String,
    homepage: Option<String>,
    short_description: String,
    description: String,
    caveats: Option<String>,
    platforms: Vec<Platform>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Platform {
    selector: Selector,
    uri: String,
    sha256: String,
    files: Vec<FileOp>,
    bin: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Selector {
    match_labels: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOp {
    from: String,
    to: String,
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// release/plugins.txt: the one list of plugins.
fn plugins() -> Vec<String> {
    std::fs::read_to_string(repo().join("release/plugins.txt"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn manifest_dir() -> PathBuf {
    repo().join("krew-manifests/plugins")
}

fn file_names(dir: PathBuf) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn one_manifest_per_plugin_in_krew_index_layout() {
    let wanted: BTreeSet<String> = plugins().iter().map(|p| format!("{p}.yaml")).collect();
    assert_eq!(file_names(manifest_dir()), wanted);
    assert_eq!(
        file_names(repo().join("krew-manifests/templates")),
        wanted,
        "one template per plugin"
    );
}

/// The manifest minus its platforms (and the template minus its comment) are the same text:
/// descriptions are edited in the template and rendered by release/dist.sh.
#[test]
fn manifests_are_their_templates_rendered() {
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    for plugin in plugins() {
        let template =
            std::fs::read_to_string(repo().join(format!("krew-manifests/templates/{plugin}.yaml")))
                .unwrap();
        let manifest =
            std::fs::read_to_string(manifest_dir().join(format!("{plugin}.yaml"))).unwrap();
        let strip = |text: &str| -> String {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .take_while(|l| *l != "  platforms:")
                .collect::<Vec<_>>()
                .join("\n")
        };
        let homepage = manifest
            .lines()
            .find_map(|l| l.strip_prefix("  homepage: "))
            .unwrap();
        let rendered = strip(&template)
            .replace("@VERSION@", &version)
            .replace("@HOMEPAGE@", homepage);
        assert_eq!(strip(&manifest), rendered, "{plugin}: run make dist");
    }
}

#[test]
fn manifests_follow_krew_rules() {
    let crate_version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let license = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../LICENSE"));
    assert!(
        std::fs::read_to_string(license)
            .unwrap()
            .contains("Apache License"),
        "LICENSE is Apache-2.0"
    );
    for plugin in plugins() {
        let plugin = plugin.as_str();
        let text = std::fs::read_to_string(manifest_dir().join(format!("{plugin}.yaml"))).unwrap();
        let m: Manifest = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{plugin}: {e}"));
        assert_eq!(
            m.api_version,
            "krew.googlecontainertools.github.com/v1alpha2"
        );
        assert_eq!(m.kind, "Plugin");
        assert_eq!(
            m.metadata.name, plugin,
            "metadata.name equals the file name"
        );
        assert_eq!(
            m.spec.version, crate_version,
            "{plugin}: version is v + the crate's"
        );
        assert!(m.spec.homepage.is_some_and(|h| h.starts_with("https://")));
        assert!(!m.spec.short_description.is_empty() && m.spec.short_description.len() <= 80);
        assert!(!m.spec.description.trim().is_empty());
        // krew links only `bin`: the caveat tells users how to get kubectl's completion hook.
        let hook = format!("kubectl_complete-{}", plugin.replacen('-', "_", 1));
        assert!(
            m.spec.caveats.as_deref().is_some_and(|c| c.contains(&hook)),
            "{plugin}: caveats name {hook}"
        );

        let platforms: BTreeSet<(String, String)> = m
            .spec
            .platforms
            .iter()
            .map(|p| {
                (
                    p.selector.match_labels["os"].clone(),
                    p.selector.match_labels["arch"].clone(),
                )
            })
            .collect();
        let wanted: BTreeSet<(String, String)> = [
            ("linux", "amd64"),
            ("linux", "arm64"),
            ("darwin", "amd64"),
            ("darwin", "arm64"),
            ("windows", "amd64"),
        ]
        .iter()
        .map(|(o, a)| (o.to_string(), a.to_string()))
        .collect();
        assert_eq!(platforms, wanted, "{plugin}");

        // krew links `kubectl-<name with - as _>` itself; the archive's binary has that name.
        let bin = format!("kubectl-{}", plugin.replacen('-', "_", 1));
        for p in &m.spec.platforms {
            let windows = p.selector.match_labels["os"] == "windows";
            let exe = if windows {
                format!("{bin}.exe")
            } else {
                bin.clone()
            };
            assert_eq!(p.bin, exe, "{plugin}");
            assert!(p.uri.starts_with("https://"));
            assert!(
                p.uri.ends_with(if windows { ".zip" } else { ".tar.gz" }),
                "{}",
                p.uri
            );
            // https://github.com/<owner>/<repo>/releases/download/<version>/<plugin>_<version>_<os>_<arch>
            let (os, arch) = (
                &p.selector.match_labels["os"],
                &p.selector.match_labels["arch"],
            );
            let archive = format!("/{plugin}_{}_{os}_{arch}.", m.spec.version);
            assert!(
                p.uri.starts_with("https://github.com/")
                    && p.uri
                        .contains(&format!("/releases/download/{}/", m.spec.version))
                    && p.uri.contains(&archive),
                "uri names the release, plugin, version and platform: {}",
                p.uri
            );
            assert_eq!(p.sha256.len(), 64);
            // All zeros between releases (release/dist.sh --manifests-only); make dist writes the
            // archives' real values and release/check-dist.sh compares them.
            assert!(
                p.sha256
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            let from: BTreeSet<&str> = p.files.iter().map(|f| f.from.as_str()).collect();
            assert!(
                from.contains(exe.as_str())
                    && from.contains(format!("{bin}.1").as_str())
                    && from.contains("LICENSE"),
                "{plugin}: binary, man page and LICENSE: {from:?}"
            );
            assert!(p.files.iter().all(|f| f.to == "."));
        }
    }
}
