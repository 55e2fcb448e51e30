//! The six rules, one module each. Every rule is a function from what it checks (a crate's module
//! tree, a crate directory) to the list of its violations, empty when the code keeps the rule;
//! `crate::workspace` runs them all over the real workspace.

pub mod codec;
pub mod cycles;
pub mod docs;
pub mod exposure;
pub mod layers;
pub mod statics;
