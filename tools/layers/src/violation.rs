//! What every check returns: a broken rule, the file (and line, where one exists) that breaks
//! it, and a sentence that says what to change. Checks collect all of them instead of stopping at
//! the first, so that one CI run shows everything that needs fixing.

use std::fmt;

/// The rules, named as they appear in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A crate's module tree could not be read: a missing module file, a parse error, an
    /// unreadable manifest. Reported once, because every other rule sees less than it should.
    ModuleTree,
    /// Rule 1: no import cycles between the files of a crate.
    ImportCycle,
    /// Rule 2: the data plane's layers.
    Layers,
    /// Rule 3: the HTTP/1 codec crate stands alone.
    CodecStandalone,
    /// Rule 4: no process-wide statics below the worker's lifecycle.
    NoStatics,
    /// Rule 5: every module file starts with a `//!` paragraph.
    ModuleDocs,
    /// Rule 6: the data-plane library exposes only what its binary and benchmarks need.
    LibExposure,
}

impl Rule {
    /// The short name shown in brackets in every message.
    pub fn name(self) -> &'static str {
        match self {
            Rule::ModuleTree => "module-tree",
            Rule::ImportCycle => "import-cycle",
            Rule::Layers => "layers",
            Rule::CodecStandalone => "codec-standalone",
            Rule::NoStatics => "no-statics",
            Rule::ModuleDocs => "module-docs",
            Rule::LibExposure => "lib-exposure",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// The file, relative to the workspace root (or to the fixture root in tests).
    pub file: String,
    /// The 1-based line, when the violation is at one place (a cycle is not).
    pub line: Option<usize>,
    pub rule: Rule,
    pub message: String,
}

impl Violation {
    pub fn new(rule: Rule, file: impl Into<String>, line: Option<usize>, message: String) -> Self {
        Violation {
            file: file.into(),
            // syn reports line 0 for spans it has no position for; that is no line at all.
            line: line.filter(|&line| line > 0),
            rule,
            message,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: [{}] {}", self.file, self.rule, self.message),
            None => write!(f, "{}: [{}] {}", self.file, self.rule, self.message),
        }
    }
}

/// All violations, one per line, for a test failure message.
pub fn render(violations: &[Violation]) -> String {
    let mut out = String::new();
    for violation in violations {
        out.push_str(&violation.to_string());
        out.push('\n');
    }
    out
}
