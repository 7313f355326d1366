//! What users see: kubectl-style tables, JSON/YAML documents, progress on stderr, prompts.

pub mod inventory;
pub mod io;
pub mod plan;
pub mod progress;
pub mod prompt;
pub mod prune;
pub mod prune_clusters;
pub mod relabel;
pub mod restart;

use std::io::IsTerminal;

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::{Padding, Style};

use crate::error::RevError;

/// A kubectl-style table: no borders, upper-case headers, three spaces between columns, and
/// `<none>` for empty cells.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>, no_headers: bool) -> String {
    let mut builder = Builder::default();
    if !no_headers {
        builder.push_record(headers.iter().map(|h| h.to_uppercase()));
    }
    for row in rows {
        builder.push_record(row.into_iter().map(|cell| {
            if cell.is_empty() {
                "<none>".to_string()
            } else {
                cell
            }
        }));
    }
    let mut table = builder.build();
    table.with(Style::blank()).with(Padding::new(0, 2, 0, 0));
    let mut out = String::new();
    for line in table.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Colour only on a terminal and never with NO_COLOR (https://no-color.org).
pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn to_json<T: Serialize>(value: &T) -> Result<String, RevError> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| RevError::Encode {
            format: "JSON",
            source: Box::new(e),
        })
}

pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, RevError> {
    serde_saphyr::to_string(value).map_err(|e| RevError::Encode {
        format: "YAML",
        source: Box::new(e),
    })
}

/// Joins a list for a table cell; empty lists become `<none>` through `table`.
/// kubectl's `-o name` form, the same in every plugin: `<kind>[.<group>]/<name>`
/// (`deployment.apps/reviews-v1`, `namespace/bookinfo`), without the namespace, as kubectl
/// prints it, so the lines feed `kubectl … -n NS` and `xargs` alike.
pub fn object_name(api_version: &str, kind: &str, name: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    match api_version.rsplit_once('/') {
        Some((group, _)) => format!("{kind}.{group}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

pub fn join(items: &[String]) -> String {
    items.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_look_like_kubectl() {
        let out = table(
            &["name", "rev"],
            vec![
                vec!["bookinfo".into(), "1-20".into()],
                vec!["default".into(), String::new()],
            ],
            false,
        );
        assert_eq!(out, "NAME       REV\nbookinfo   1-20\ndefault    <none>\n");
        let out = table(&["name"], vec![vec!["a".into()]], true);
        assert_eq!(out, "a\n");
    }
}
