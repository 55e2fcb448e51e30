//! Compiled regexes and regex sets remembered across route-table builds.
//!
//! Compiling a regex (and above all a `RegexSet`, which determinizes every pattern of a host
//! together) costs far more than everything else in a table build. Most revisions patch the
//! table and share the compiled regexes of untouched hosts; the full builds that remain (a full
//! push, a change of upstream names) take their regexes from this memo and compile only patterns
//! no recent build used. The memo holds what the last two full builds used, so its size follows
//! the served config; patches read it but add nothing. Builds only ever happen off the request
//! path.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use regex::{Regex, RegexSet, RegexSetBuilder};

/// A build's regexes stay remembered through the next build, so that re-applying or comparing
/// two revisions in a row compiles nothing twice.
const GENERATIONS_KEPT: u64 = 2;

/// A compiled value (`None`: it does not compile) and the last build generation that used it.
type Remembered<T> = (Option<T>, u64);

#[derive(Debug, Default)]
struct Memo {
    generation: u64,
    /// By pattern source; `None` remembers that the pattern does not compile.
    regexes: HashMap<Box<str>, Remembered<Regex>>,
    /// By the patterns of the set, in order.
    sets: HashMap<Box<[Box<str>]>, Remembered<RegexSet>>,
}

static MEMO: LazyLock<Mutex<Memo>> = LazyLock::new(Mutex::default);

thread_local! {
    /// Cleared while a table patch runs on this thread: a patch reads the memo but adds nothing,
    /// since no later build may ever ask for what it compiled.
    static REMEMBER: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with the memo read-only on this thread.
pub fn without_remembering<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REMEMBER.set(self.0);
        }
    }
    let _restore = Restore(REMEMBER.replace(false));
    f()
}

fn memo() -> MutexGuard<'static, Memo> {
    // The memo only caches; state left by a panicking build is still valid.
    MEMO.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Marks the start of a table build; returns its generation.
pub fn begin_build() -> u64 {
    let mut memo = memo();
    memo.generation += 1;
    memo.generation
}

/// Forgets what neither this build nor the ones just before it used.
pub fn end_build(generation: u64) {
    let mut memo = memo();
    let oldest_kept = generation.saturating_sub(GENERATIONS_KEPT - 1);
    memo.regexes.retain(|_, (_, used)| *used >= oldest_kept);
    memo.sets.retain(|_, (_, used)| *used >= oldest_kept);
}

/// The compiled `pattern`, compiled now only if no recent build had it.
pub fn regex(pattern: &str, compile: impl FnOnce(&str) -> Option<Regex>) -> Option<Regex> {
    let mut memo = memo();
    let generation = memo.generation;
    if let Some((regex, used)) = memo.regexes.get_mut(pattern) {
        *used = generation;
        return regex.clone();
    }
    if !REMEMBER.get() {
        drop(memo);
        return compile(pattern);
    }
    let regex = compile(pattern);
    memo.regexes
        .insert(pattern.into(), (regex.clone(), generation));
    regex
}

/// A set over `patterns` (in order) within `size_limit`, or `None` if it would be larger.
pub fn regex_set(patterns: &[&str], size_limit: usize) -> Result<RegexSet, regex::Error> {
    let key: Box<[Box<str>]> = patterns.iter().map(|p| Box::from(*p)).collect();
    {
        let mut memo = memo();
        let generation = memo.generation;
        if let Some((set, used)) = memo.sets.get_mut(&key) {
            *used = generation;
            if let Some(set) = set {
                return Ok(set.clone());
            }
        }
    }
    // Compiled without holding the lock: a big set takes a while.
    let built = RegexSetBuilder::new(patterns)
        .size_limit(size_limit)
        .build();
    if REMEMBER.get() {
        let mut memo = memo();
        let generation = memo.generation;
        memo.sets
            .insert(key, (built.as_ref().ok().cloned(), generation));
    }
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(pattern: &str) -> Option<Regex> {
        Regex::new(pattern).ok()
    }

    #[test]
    fn a_pattern_is_compiled_once_while_builds_use_it() {
        let generation = begin_build();
        let first = regex("memo-test-[0-9]+", compile);
        end_build(generation);
        let generation = begin_build();
        let second = regex("memo-test-[0-9]+", |_| panic!("compiled again"));
        end_build(generation);
        assert_eq!(
            first.map(|r| r.as_str().to_owned()),
            second.map(|r| r.as_str().to_owned())
        );
    }

    #[test]
    fn sets_of_the_same_patterns_are_shared() {
        let patterns = ["memo-set-a", "memo-set-b[0-9]"];
        let generation = begin_build();
        let set = regex_set(&patterns, 1 << 20);
        end_build(generation);
        assert!(set.is_ok_and(|s| s.is_match("memo-set-b7")));
        let again = regex_set(&patterns, 1 << 20);
        assert!(again.is_ok_and(|s| s.matches("memo-set-a").matched(0)));
    }
}
