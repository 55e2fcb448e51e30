//! Architecture checks for the gateway workspace, run by CI through `cargo test --workspace`
//! (`tests/workspace.rs`). They keep the design's structural rules (DESIGN.md, "Layers of the
//! worker" and "Conventions") true as the code changes, where review alone would let them drift:
//!
//! 1. no import cycles between the files of any crate;
//! 2. the data plane's layers: each top-level module imports only layers below it
//!    (the table is [`table::DATA_PLANE`]);
//! 3. the HTTP/1 codec crate depends only on `bytes`, `http`, `httparse`, `httpdate`;
//! 4. no process-wide statics below the data plane's lifecycle;
//! 5. every module file starts with a `//!` paragraph;
//! 6. the data-plane library makes public only the modules its binary needs.
//!
//! The sources are read with syn, not compiled: [`tree`] finds every module file the way rustc
//! does (following `mod` declarations and `#[path]`), [`imports`] resolves every path that names
//! a module of the same crate, and each rule in [`rules`] turns what it finds into
//! [`Violation`](violation::Violation)s. Code under `#[cfg(test)]` is left out of the import
//! rules: tests may use helpers from anywhere.

pub mod attrs;
pub mod imports;
pub mod manifest;
pub mod rules;
pub mod table;
pub mod tree;
pub mod violation;
pub mod workspace;

#[cfg(test)]
mod fixture;
