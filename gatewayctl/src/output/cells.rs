//! The pieces every table of `output` is made of: reading rows from API documents, a borderless
//! table, and the cells for values that may be missing. A leaf of its own, so that the renderers
//! of `output` and of its parts (`certificates`) share them without importing each other.

use comfy_table::{Table, TableStyle};
use serde::Deserialize;
use serde_json::Value;

use super::error::{OutputError, shape};

pub(super) fn rows<T: for<'de> Deserialize<'de>>(
    items: &[Value],
    what: &'static str,
) -> Result<Vec<T>, OutputError> {
    items
        .iter()
        .map(|item| T::deserialize(item).map_err(|e| shape(what, e)))
        .collect()
}

/// A borderless table like `kubectl get`: columns separated by spaces, no trailing blanks.
pub(super) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(TableStyle::new());
    table.force_no_tty();
    table.set_header(header.to_vec());
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    table
}

pub(super) fn finish(table: &Table) -> String {
    let mut text = table.trim_fmt();
    text.push('\n');
    text
}

pub(super) fn or_dash(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => "-".to_owned(),
    }
}

pub(super) fn revision_cell(revision: Option<u64>) -> String {
    revision.map_or_else(|| "-".to_owned(), |r| r.to_string())
}
