//! Helm v3/v4 release records (DOMAIN §6): Secrets `sh.helm.release.v1.<name>.v<N>` whose
//! `release` key holds base64(gzip(JSON)). k8s-openapi already removed the API's own base64
//! layer, so one more decode remains; records without the gzip magic are plain JSON.

use std::io::Read;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    pub version: i64,
    pub status: String,
    pub chart: String,
    pub chart_version: String,
    pub app_version: Option<String>,
    /// The user-supplied `revision` value (Istio charts); empty or absent means `default`.
    pub revision_value: Option<String>,
    /// The user-supplied values (`config`), as `helm get values` shows them: what an upgrade
    /// to a new revision carries over (`rev-plan --values-dir`).
    #[serde(skip)]
    pub values: serde_json::Value,
    /// The rendered manifest: what an uninstall deletes.
    #[serde(skip)]
    pub manifest: String,
    pub hooks: Vec<HelmHook>,
    /// Names of every record Secret seen for this release (history included).
    pub secret_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmHook {
    pub name: String,
    pub kind: String,
    pub events: Vec<String>,
}

impl HelmRelease {
    pub fn is_istio_chart(&self) -> bool {
        matches!(
            self.chart.as_str(),
            "base" | "istiod" | "gateway" | "cni" | "ztunnel" | "istiod-remote"
        )
    }
}

#[derive(Deserialize)]
struct RawRelease {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    version: i64,
    #[serde(default)]
    info: Option<RawInfo>,
    #[serde(default)]
    chart: Option<RawChart>,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    manifest: String,
    #[serde(default)]
    hooks: Option<Vec<RawHook>>,
}

#[derive(Deserialize)]
struct RawInfo {
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct RawChart {
    metadata: Option<RawChartMeta>,
}

#[derive(Deserialize)]
struct RawChartMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "appVersion")]
    app_version: Option<String>,
}

#[derive(Deserialize)]
struct RawHook {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    events: Vec<String>,
}

/// Decodes the `release` payload of a Helm record (after the API's base64 layer).
pub fn decode_release_payload(payload: &[u8]) -> Result<serde_json::Value, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(trim_ascii(payload))
        .map_err(|e| format!("release data is not base64: {e}"))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("release data is not valid gzip: {e}"))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| format!("release data is not JSON: {e}"))
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

pub fn decode_release_secret(secret: &Secret) -> Result<HelmRelease, String> {
    let payload = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or("no `release` key")?;
    let value = decode_release_payload(&payload.0)?;
    let raw: RawRelease =
        serde_json::from_value(value).map_err(|e| format!("unexpected release JSON: {e}"))?;
    let meta = raw.chart.and_then(|c| c.metadata);
    let revision_value = raw
        .config
        .as_ref()
        .and_then(|c| c.get("revision"))
        .and_then(|r| r.as_str())
        .map(str::to_string);
    Ok(HelmRelease {
        name: raw.name,
        namespace: if raw.namespace.is_empty() {
            secret.metadata.namespace.clone().unwrap_or_default()
        } else {
            raw.namespace
        },
        version: raw.version,
        status: raw.info.map(|i| i.status).unwrap_or_default(),
        chart: meta.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
        chart_version: meta.as_ref().map(|m| m.version.clone()).unwrap_or_default(),
        app_version: meta.and_then(|m| m.app_version),
        revision_value,
        values: raw.config.unwrap_or(serde_json::Value::Null),
        manifest: raw.manifest,
        hooks: raw
            .hooks
            .unwrap_or_default()
            .into_iter()
            .map(|h| HelmHook {
                name: h.name,
                kind: h.kind,
                events: h.events,
            })
            .collect(),
        secret_name: secret.metadata.name.clone().unwrap_or_default(),
    })
}

/// Encodes a release JSON the way Helm stores it (gzip, then base64): fixtures and tests use it.
pub fn encode_release_payload(release: &serde_json::Value, gzip: bool) -> Vec<u8> {
    use std::io::Write;
    let json = serde_json::to_vec(release).unwrap_or_default();
    let bytes = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = enc.write_all(&json);
        enc.finish().unwrap_or_default()
    } else {
        json
    };
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret_with(payload: Vec<u8>) -> Secret {
        let mut s = Secret {
            type_: Some("helm.sh/release.v1".into()),
            ..Default::default()
        };
        s.metadata.name = Some("sh.helm.release.v1.istiod-1-20.v2".into());
        s.metadata.namespace = Some("istio-system".into());
        s.data = Some([("release".to_string(), ByteString(payload))].into());
        s
    }

    fn release_json() -> serde_json::Value {
        serde_json::json!({
            "name": "istiod-1-20", "namespace": "istio-system", "version": 2,
            "info": {"status": "deployed"},
            "chart": {"metadata": {"name": "istiod", "version": "1.20.2", "appVersion": "1.20.2"}},
            "config": {"revision": "1-20"},
            "manifest": "---\nkind: Deployment\n",
            "hooks": [{"name": "cleanup", "kind": "Job", "events": ["pre-delete"]}]
        })
    }

    #[test]
    fn gzip_and_plain_records_decode_alike() {
        for gzip in [true, false] {
            let r =
                decode_release_secret(&secret_with(encode_release_payload(&release_json(), gzip)))
                    .unwrap();
            assert_eq!(r.name, "istiod-1-20");
            assert_eq!(r.chart, "istiod");
            assert_eq!(r.app_version.as_deref(), Some("1.20.2"));
            assert_eq!(r.revision_value.as_deref(), Some("1-20"));
            assert_eq!(r.values, serde_json::json!({"revision": "1-20"}));
            assert_eq!(r.status, "deployed");
            assert_eq!(r.version, 2);
            assert_eq!(r.hooks[0].events, vec!["pre-delete"]);
            assert!(r.manifest.contains("Deployment"));
        }
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        assert!(decode_release_secret(&secret_with(b"!!!".to_vec())).is_err());
        let not_json = base64::engine::general_purpose::STANDARD.encode(b"nope");
        assert!(decode_release_secret(&secret_with(not_json.into_bytes())).is_err());
        let mut truncated = encode_release_payload(&release_json(), true);
        truncated.truncate(20);
        assert!(decode_release_secret(&secret_with(truncated)).is_err());
    }
}
