//! Compiled regexes and regex sets remembered across route-table builds.
//!
//! Compiling a regex (and above all a `RegexSet`, which determinizes every pattern of a host
//! together) costs far more than everything else in a table build. Most revisions patch the
//! table and share the compiled regexes of untouched hosts; the full builds that remain (a full
//! push, a change of upstream names) take their regexes from this memo and compile only patterns
//! no recent build used. The memo holds what the last two full builds used, so its size follows
//! the served config; patches read it but add nothing. Builds only ever happen off the request
//! path. Each worker's served config owns one memo, shared by the tables built and patched for
//! it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use regex::{Regex, RegexSet, RegexSetBuilder};

/// A build's regexes stay remembered through the next build, so that re-applying or comparing
/// two revisions in a row compiles nothing twice.
const GENERATIONS_KEPT: u64 = 2;

/// A compiled value (`None`: it does not compile) and the last build generation that used it.
type Remembered<T> = (Option<T>, u64);

#[derive(Debug, Default)]
pub struct RegexMemo {
    inner: Mutex<Memo>,
}

#[derive(Debug, Default)]
struct Memo {
    generation: u64,
    /// By pattern source; `None` remembers that the pattern does not compile.
    regexes: HashMap<Box<str>, Remembered<Regex>>,
    /// By the patterns of the set, in order.
    sets: HashMap<Box<[Box<str>]>, Remembered<RegexSet>>,
}

/// One table build's use of a memo: a full build remembers what it compiles and, when it ends,
/// forgets what no recent build used; a patch only reads.
#[derive(Debug)]
pub struct Regexes<'m> {
    memo: Option<&'m RegexMemo>,
    remember: bool,
}

impl RegexMemo {
    fn lock(&self) -> MutexGuard<'_, Memo> {
        // The memo only caches; state left by a panicking build is still valid.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a full build.
    pub fn full_build(&self) -> Regexes<'_> {
        self.lock().generation += 1;
        Regexes {
            memo: Some(self),
            remember: true,
        }
    }

    /// Starts a patch, which reads the memo but adds nothing: no later build may ever ask for
    /// what it compiled.
    pub fn patch(&self) -> Regexes<'_> {
        Regexes {
            memo: Some(self),
            remember: false,
        }
    }
}

impl Regexes<'static> {
    /// Compiles everything and remembers nothing.
    pub fn none() -> Self {
        Regexes {
            memo: None,
            remember: false,
        }
    }
}

impl Regexes<'_> {
    /// The compiled `pattern`, compiled now only if no recent build had it.
    pub fn regex(
        &self,
        pattern: &str,
        compile: impl FnOnce(&str) -> Option<Regex>,
    ) -> Option<Regex> {
        let Some(memo) = self.memo else {
            return compile(pattern);
        };
        let mut memo = memo.lock();
        let generation = memo.generation;
        if let Some((regex, used)) = memo.regexes.get_mut(pattern) {
            *used = generation;
            return regex.clone();
        }
        if !self.remember {
            drop(memo);
            return compile(pattern);
        }
        let regex = compile(pattern);
        memo.regexes
            .insert(pattern.into(), (regex.clone(), generation));
        regex
    }

    /// A set over `patterns` (in order) within `size_limit`, or the error that it would be
    /// larger.
    pub fn regex_set(
        &self,
        patterns: &[&str],
        size_limit: usize,
    ) -> Result<RegexSet, regex::Error> {
        let build = || {
            RegexSetBuilder::new(patterns)
                .size_limit(size_limit)
                .build()
        };
        let Some(memo) = self.memo else {
            return build();
        };
        let key: Box<[Box<str>]> = patterns.iter().map(|p| Box::from(*p)).collect();
        {
            let mut memo = memo.lock();
            let generation = memo.generation;
            if let Some((set, used)) = memo.sets.get_mut(&key) {
                *used = generation;
                if let Some(set) = set {
                    return Ok(set.clone());
                }
            }
        }
        // Compiled without holding the lock: a big set takes a while.
        let built = build();
        if self.remember {
            let mut memo = memo.lock();
            let generation = memo.generation;
            memo.sets
                .insert(key, (built.as_ref().ok().cloned(), generation));
        }
        built
    }
}

impl Drop for Regexes<'_> {
    /// The end of a full build: forgets what neither it nor the ones just before it used.
    fn drop(&mut self) {
        let (Some(memo), true) = (self.memo, self.remember) else {
            return;
        };
        let mut memo = memo.lock();
        let oldest_kept = memo.generation.saturating_sub(GENERATIONS_KEPT - 1);
        memo.regexes.retain(|_, (_, used)| *used >= oldest_kept);
        memo.sets.retain(|_, (_, used)| *used >= oldest_kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(pattern: &str) -> Option<Regex> {
        Regex::new(pattern).ok()
    }

    #[test]
    fn a_pattern_is_compiled_once_while_builds_use_it() {
        let memo = RegexMemo::default();
        let build = memo.full_build();
        let first = build.regex("memo-test-[0-9]+", compile);
        drop(build);
        let build = memo.full_build();
        let second = build.regex("memo-test-[0-9]+", |_| panic!("compiled again"));
        drop(build);
        assert_eq!(
            first.map(|r| r.as_str().to_owned()),
            second.map(|r| r.as_str().to_owned())
        );
    }

    #[test]
    fn sets_of_the_same_patterns_are_shared() {
        let memo = RegexMemo::default();
        let patterns = ["memo-set-a", "memo-set-b[0-9]"];
        let build = memo.full_build();
        let set = build.regex_set(&patterns, 1 << 20);
        drop(build);
        assert!(set.is_ok_and(|s| s.is_match("memo-set-b7")));
        let again = memo.patch().regex_set(&patterns, 1 << 20);
        assert!(again.is_ok_and(|s| s.matches("memo-set-a").matched(0)));
    }

    #[test]
    fn a_patch_remembers_nothing_and_old_builds_are_forgotten() {
        let memo = RegexMemo::default();
        let _ = memo.patch().regex("memo-patch", compile);
        assert!(memo.lock().regexes.is_empty());
        let _ = memo.full_build().regex("memo-old", compile);
        let _ = memo.full_build();
        assert!(
            memo.lock().regexes.contains_key("memo-old"),
            "kept one build"
        );
        let _ = memo.full_build();
        assert!(!memo.lock().regexes.contains_key("memo-old"));
    }
}
