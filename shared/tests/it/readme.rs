//! The README's exit-code table is the one users read: it lists exactly the codes the plugins
//! use.

use rev_shared::error::exit;

#[test]
fn the_readme_exit_code_table_lists_exactly_the_codes_in_use() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md beside the workspace");
    let section = readme
        .split("## Exit codes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("an \"Exit codes\" section");
    let mut documented: Vec<u8> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|row| row.split(" |").next())
        .filter_map(|code| code.trim().parse().ok())
        .collect();
    documented.sort_unstable();
    let mut used = exit::ALL.to_vec();
    used.sort_unstable();
    assert_eq!(documented, used);
}
