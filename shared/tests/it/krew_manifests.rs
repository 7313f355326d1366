//! Every krew manifest follows krew's rules (DOMAIN §8): the index layout, the name matching the
//! file, a `v`-prefixed version equal to the crate's, the five platforms, archives that yield
//! the binary kubectl looks up and the LICENSE.

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

const PLUGINS: [&str; 6] = [
    "rev-inventory",
    "rev-relabel",
    "rev-restart",
    "rev-prune",
    "rev-probe",
    "rev-plan",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../krew-manifests/plugins"
    ))
}

#[test]
fn one_manifest_per_plugin_in_krew_index_layout() {
    let found: BTreeSet<String> = std::fs::read_dir(manifest_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let wanted: BTreeSet<String> = PLUGINS.iter().map(|p| format!("{p}.yaml")).collect();
    assert_eq!(found, wanted);
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
    for plugin in PLUGINS {
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
            assert!(
                p.uri.contains(&m.spec.version),
                "uri names the version: {}",
                p.uri
            );
            assert_eq!(p.sha256.len(), 64);
            assert!(
                p.sha256
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            let from: BTreeSet<&str> = p.files.iter().map(|f| f.from.as_str()).collect();
            assert!(
                from.contains(exe.as_str()) && from.contains("LICENSE"),
                "{plugin}: {from:?}"
            );
            assert!(p.files.iter().all(|f| f.to == "."));
        }
    }
}
