//! The README's tables are the ones users read: the exit codes and finding codes they list are
//! exactly the ones the plugins use.

use rev_shared::analysis::FindingCode;
use rev_shared::error::exit;

/// The README's text under `heading` (a `## ` or `### ` line), up to the next heading.
fn readme_section(heading: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md beside the workspace");
    let section = readme
        .split(&format!("{heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("a \"{heading}\" section in README.md"));
    section.split("\n#").next().unwrap_or_default().to_string()
}

/// The cells of each table row, header and separator rows included.
fn table_rows(section: &str) -> Vec<Vec<String>> {
    section
        .lines()
        .filter_map(|line| line.strip_prefix('|')?.strip_suffix('|'))
        .map(|row| {
            row.split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_readme_exit_code_table_lists_exactly_the_codes_in_use() {
    let mut documented: Vec<u8> = table_rows(&readme_section("## Exit codes"))
        .iter()
        .filter_map(|cells| cells.first()?.parse().ok())
        .collect();
    documented.sort_unstable();
    let mut used = exit::ALL.to_vec();
    used.sort_unstable();
    assert_eq!(documented, used);
}

#[test]
fn the_readme_finding_code_table_lists_every_code_with_its_severities() {
    let rows = table_rows(&readme_section("### Finding codes"));
    let documented: Vec<(String, String)> = rows
        .iter()
        .filter_map(|cells| {
            let code = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((code.to_string(), cells.get(1)?.clone()))
        })
        .collect();
    let in_code: Vec<(String, String)> = FindingCode::ALL
        .iter()
        .map(|code| {
            let severities: Vec<&str> = code.severities().iter().map(|s| s.as_str()).collect();
            (code.as_str().to_string(), severities.join(", "))
        })
        .collect();
    assert_eq!(
        documented, in_code,
        "README rows (code, severity) vs FindingCode::ALL"
    );
}
