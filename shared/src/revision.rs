//! Revision and version names, and the minor-version skip policy (DOMAIN §1, §5). Pure.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::RevError;

/// The revision label value of an install without a `revision` chart value (DOMAIN §1).
pub const DEFAULT_REVISION: &str = "default";

/// A validated revision or tag name: the value of the `istio.io/rev` label.
///
/// Istio appends it to object names (`istiod-<rev>`), so it must be a DNS-1123 label; the same
/// rule makes it a valid label value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RevisionName(String);

impl RevisionName {
    pub fn parse(input: &str) -> Result<Self, RevError> {
        let problem = dns_label_problem(input);
        match problem {
            None => Ok(Self(input.to_string())),
            Some(why) => Err(RevError::InvalidName {
                input: input.to_string(),
                why,
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `1-20` → `(1, 20)`: revisions named after a version, as the guide recommends.
    pub fn as_minor_version(&self) -> Option<(u64, u64)> {
        let (major, minor) = self.0.split_once('-')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    }
}

impl fmt::Display for RevisionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RevisionName {
    type Err = RevError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn dns_label_problem(input: &str) -> Option<&'static str> {
    if input.is_empty() {
        return Some("it is empty");
    }
    if input.len() > 63 {
        return Some("it is longer than 63 characters");
    }
    if !input
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("only lower-case letters, digits and '-' are allowed (use 1-20, not 1.20)");
    }
    if input.starts_with('-') || input.ends_with('-') {
        return Some("it must start and end with a letter or digit");
    }
    None
}

/// An Istio version as found in image tags and Helm `appVersion`: `1.20.2`, `1.20.2-solo`,
/// `1.19.3-solo-fips-distroless`. Digests and non-numeric tags are not versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IstioVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: Option<u64>,
    /// Everything after the numeric part, without the leading `-` (`solo-fips-distroless`).
    pub suffix: Option<String>,
}

impl IstioVersion {
    /// Parses a version or an image tag; `None` for digests, `latest` and other non-versions.
    pub fn parse(input: &str) -> Option<Self> {
        let input = input.strip_prefix('v').unwrap_or(input);
        let (numbers, suffix) = match input.split_once('-') {
            Some((n, s)) => (n, Some(s)),
            None => (input, None),
        };
        let mut parts = numbers.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        if suffix.is_some_and(str::is_empty) {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
            suffix: suffix.map(str::to_string),
        })
    }

    /// The version part of an image reference: `docker.io/istio/pilot:1.20.2` → `1.20.2`.
    /// Digest references (`…@sha256:…`) carry no version.
    pub fn from_image(image: &str) -> Option<Self> {
        if image.contains('@') {
            return None;
        }
        let last = image.rsplit('/').next()?;
        let (_, tag) = last.split_once(':')?;
        Self::parse(tag)
    }

    /// The revision name the guide derives from a version: `1.20.2` → `1-20`.
    pub fn revision_name(&self) -> RevisionName {
        RevisionName(format!("{}-{}", self.major, self.minor))
    }

    pub fn same_minor(&self, other: &IstioVersion) -> bool {
        self.major == other.major && self.minor == other.minor
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        if let Some(suffix) = &self.suffix {
            write!(f, "-{suffix}")?;
        }
        Ok(())
    }
}

/// How far a canary upgrade may jump (DOMAIN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipVerdict {
    /// Same minor, or one forward: what the guide does.
    Fine,
    /// Two minors forward: supported for canary upgrades, but the guide asks for one at a time.
    Warn,
    /// Back to an older minor of the same major: a rollback, the canary upgrade's normal exit
    /// (the proxies move back with their namespace, so none is ahead of its control plane).
    Back,
    /// More than two minors forward, or a different major: refused without an explicit
    /// override.
    Refuse,
}

pub fn skip_verdict(from: (u64, u64), to: (u64, u64)) -> SkipVerdict {
    if from.0 != to.0 {
        return SkipVerdict::Refuse;
    }
    match to.1.cmp(&from.1) {
        Ordering::Less => SkipVerdict::Back,
        Ordering::Equal => SkipVerdict::Fine,
        Ordering::Greater => match to.1 - from.1 {
            1 => SkipVerdict::Fine,
            2 => SkipVerdict::Warn,
            _ => SkipVerdict::Refuse,
        },
    }
}

/// Minor versions between two versions of the same major (`None` across majors).
pub fn minor_distance(a: (u64, u64), b: (u64, u64)) -> Option<u64> {
    (a.0 == b.0).then(|| a.1.abs_diff(b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_names_follow_dns_label_rules() {
        for ok in ["1-20", "default", "canary", "prod-1", "a"] {
            assert!(RevisionName::parse(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "1.20",
            "Prod",
            "-1-20",
            "1-20-",
            "rev_1",
            &"a".repeat(64),
        ] {
            assert!(RevisionName::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn malformed_revision_error_says_how_to_fix_it() {
        let err = RevisionName::parse("1.20").unwrap_err().to_string();
        assert!(err.contains("1.20") && err.contains("1-20"), "{err}");
    }

    #[test]
    fn versions_parse_with_solo_suffixes() {
        let v = IstioVersion::parse("1.19.3-solo-fips-distroless").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 19, Some(3)));
        assert_eq!(v.suffix.as_deref(), Some("solo-fips-distroless"));
        assert_eq!(v.to_string(), "1.19.3-solo-fips-distroless");
        assert_eq!(
            IstioVersion::parse("1.20.2-solo")
                .unwrap()
                .revision_name()
                .as_str(),
            "1-20"
        );
        assert_eq!(IstioVersion::parse("1.20").unwrap().patch, None);
    }

    #[test]
    fn digests_and_words_are_not_versions() {
        assert_eq!(
            IstioVersion::from_image("docker.io/istio/pilot@sha256:abcd"),
            None
        );
        assert_eq!(
            IstioVersion::from_image("docker.io/istio/pilot:latest"),
            None
        );
        assert_eq!(IstioVersion::from_image("docker.io/istio/pilot"), None);
        assert_eq!(IstioVersion::parse("1.20.x"), None);
        assert_eq!(IstioVersion::parse("1.20.2-"), None);
        let v = IstioVersion::from_image("localhost:5000/istio/pilot:1.20.2").unwrap();
        assert_eq!(v.to_string(), "1.20.2");
    }

    #[test]
    fn skip_policy_allows_one_warns_two_refuses_more() {
        assert_eq!(skip_verdict((1, 19), (1, 20)), SkipVerdict::Fine);
        assert_eq!(skip_verdict((1, 20), (1, 20)), SkipVerdict::Fine);
        assert_eq!(skip_verdict((1, 18), (1, 20)), SkipVerdict::Warn);
        assert_eq!(skip_verdict((1, 17), (1, 20)), SkipVerdict::Refuse);
        assert_eq!(skip_verdict((1, 20), (1, 19)), SkipVerdict::Back);
        assert_eq!(skip_verdict((1, 20), (2, 0)), SkipVerdict::Refuse);
    }

    #[test]
    fn revision_names_map_to_minor_versions() {
        let r = RevisionName::parse("1-20").unwrap();
        assert_eq!(r.as_minor_version(), Some((1, 20)));
        assert_eq!(
            RevisionName::parse("canary").unwrap().as_minor_version(),
            None
        );
    }
}
