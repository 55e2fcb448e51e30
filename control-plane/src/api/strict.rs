//! Strict reading of the JSON and YAML documents that people write: a key given twice in one
//! mapping is refused (readers usually keep the last one silently, so one of two intended
//! settings would be lost without a word), and so is a document nested deeper than
//! [`MAX_DEPTH`] levels or one that YAML aliases blow up past its budget (the "billion laughs").
//! Values come out as [`serde_json::Value`], and a whole-config document one entity at a time
//! ([`read_lists`]), so that a large document is never held twice.
//!
//! YAML is read with serde-saphyr, which streams (libyaml-based readers hold every event of a
//! document in memory first) and bounds nesting in its scanner, where libyaml's cost grows with
//! the square of the nesting depth. Plain scalars resolve as YAML 1.2's core schema: `yes`,
//! `012` and `1_000` are strings, as the YAML the gateway writes expects.
//!
//! The control plane and gatewayctl compile this same file, so that both refuse the same
//! documents with the same messages; it depends on nothing of either.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The deepest nesting of mappings and lists a document may have; the top-level mapping is
/// level 1. The model needs about 6 (`routes[0].retries.on[0]`); the rest is headroom, and
/// this bounds the recursion of every reader.
pub const MAX_DEPTH: usize = 64;

/// However large the body limit, YAML aliases may make a document at most this many times
/// larger than its text…
const EXPANSION_FACTOR: usize = 16;
/// …or this large, whichever is more, so that small documents may use anchors freely.
const EXPANSION_FLOOR: usize = 256 * 1024;
/// Longer keys are cut in messages: a message must not repeat a megabyte of input.
const SHOWN_KEY_CHARS: usize = 64;

/// How a document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// JSON when the media type says so or the text starts with `{` or `[`, else YAML. (YAML
    /// is a superset of JSON, but JSON's reader gives the familiar errors.)
    pub fn detect(bytes: &[u8], content_type: Option<&str>) -> Format {
        let json_type = content_type.is_some_and(|t| t.contains("json"));
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if json_type || matches!(first, Some(b'{' | b'[')) {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// What a document may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The size of the largest document, in bytes: its text must fit (the caller checks
    /// that), and so must the document once its YAML aliases are expanded, measured as
    /// compact JSON.
    pub max_bytes: usize,
    pub max_depth: usize,
}

impl Limits {
    pub fn new(max_bytes: usize) -> Limits {
        Limits {
            max_bytes,
            max_depth: MAX_DEPTH,
        }
    }

    /// What a document of `len` bytes may grow to: a small multiple of itself, capped by the
    /// limit, so that the work an alias bomb causes is bounded by its own size.
    pub fn expansion_budget(&self, len: usize) -> usize {
        len.saturating_mul(EXPANSION_FACTOR)
            .max(EXPANSION_FLOOR)
            .min(self.max_bytes)
    }
}

/// A line and column (both from 1) in the document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

fn at(position: &Option<Position>) -> String {
    position.map_or_else(String::new, |p| {
        format!(" (line {}, column {})", p.line, p.column)
    })
}

fn place(field: &Option<String>) -> String {
    match field.as_deref() {
        Some(field) if !field.is_empty() => format!(" at `{field}`"),
        _ => String::new(),
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Not JSON (or not YAML): the reader's own message, which says where.
    #[error("{message}")]
    Syntax { format: Format, message: String },
    /// `field` is the path of the second occurrence, e.g. `routes[3].hosts`.
    #[error("duplicate key `{key}`{}{}", place(&Some(field.clone())), at(position))]
    DuplicateKey {
        key: String,
        field: String,
        position: Option<Position>,
    },
    /// `field` is where the limit was crossed, when the reader knows.
    #[error("nested deeper than {limit} levels{}{}", place(field), at(position))]
    TooDeep {
        limit: usize,
        field: Option<String>,
        position: Option<Position>,
    },
    #[error(
        "the document is larger than {limit} bytes once its aliases are expanded{}",
        at(position)
    )]
    TooLarge {
        limit: usize,
        position: Option<Position>,
    },
}

impl ReadError {
    /// The path into the document that the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ReadError::DuplicateKey { field, .. } => Some(field),
            ReadError::TooDeep { field, .. } => field.as_deref(),
            ReadError::Syntax { .. } | ReadError::TooLarge { .. } => None,
        }
    }
}

/// Where a value is in the document; built on the stack as the readers descend, and only
/// turned into text for a message.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(parent, key) => {
                if !matches!(parent, Path::Root) {
                    write!(f, "{parent}.")?;
                }
                write!(f, "{}", shown(key))
            }
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

fn shown(key: &str) -> String {
    match key.char_indices().nth(SHOWN_KEY_CHARS) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_owned(),
    }
}

/// A problem found by the readers below, kept beside the reader's own error (which can only
/// carry text) so that it can be reported with its structure.
enum Problem {
    DuplicateKey { key: String, field: String },
    TooDeep { field: String },
    TooLarge,
}

/// State shared by every reader of one document.
struct Ctx {
    max_depth: usize,
    budget: usize,
    spent: Cell<usize>,
    problem: RefCell<Option<Problem>>,
}

impl Ctx {
    fn new(limits: &Limits, len: usize) -> Ctx {
        Ctx {
            max_depth: limits.max_depth,
            budget: limits.expansion_budget(len),
            spent: Cell::new(0),
            problem: RefCell::new(None),
        }
    }

    fn refuse<E: de::Error>(&self, problem: Problem) -> E {
        let text = match &problem {
            Problem::DuplicateKey { key, field } => format!("duplicate key `{key}` at `{field}`"),
            Problem::TooDeep { field } => format!("nested too deeply at `{field}`"),
            Problem::TooLarge => "the document expands past its budget".to_owned(),
        };
        *self.problem.borrow_mut() = Some(problem);
        // Not `custom`: serde-saphyr gives only its own kinds of error a position.
        E::invalid_value(
            de::Unexpected::Other(&text),
            &"a document within the limits",
        )
    }

    /// Charges the size the value would take as compact JSON (less separators, so that a JSON
    /// document never costs more than its own text).
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let spent = self.spent.get().saturating_add(bytes);
        self.spent.set(spent);
        if spent > self.budget {
            return Err(self.refuse(Problem::TooLarge));
        }
        Ok(())
    }

    fn enter<E: de::Error>(&self, depth: usize, path: &Path<'_>) -> Result<(), E> {
        if depth > self.max_depth {
            return Err(self.refuse(Problem::TooDeep {
                field: path.to_string(),
            }));
        }
        self.charge(2)
    }

    fn duplicate<E: de::Error>(&self, key: &str, parent: &Path<'_>) -> E {
        self.refuse(Problem::DuplicateKey {
            key: shown(key),
            field: Path::Key(parent, key).to_string(),
        })
    }

    /// The error to report: a problem found here, else the reader's own.
    fn error(&self, format: Format, reader: ReaderError) -> ReadError {
        let position = reader.position;
        match self.problem.borrow_mut().take() {
            Some(Problem::DuplicateKey { key, field }) => ReadError::DuplicateKey {
                key,
                field,
                position,
            },
            Some(Problem::TooDeep { field }) => ReadError::TooDeep {
                limit: self.max_depth,
                field: Some(field),
                position,
            },
            Some(Problem::TooLarge) => ReadError::TooLarge {
                limit: self.budget,
                position,
            },
            None => match reader.kind {
                ReaderLimit::None => ReadError::Syntax {
                    format,
                    message: reader.message,
                },
                ReaderLimit::Depth => ReadError::TooDeep {
                    limit: self.max_depth,
                    field: None,
                    position,
                },
                ReaderLimit::Size => ReadError::TooLarge {
                    limit: self.budget,
                    position,
                },
            },
        }
    }
}

/// A map key: always text (a YAML key that is a number is read as its text).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_string(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a text key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

/// Reads any value into a [`Value`], refusing duplicate keys, too deep nesting and too much
/// expansion. `depth` is that of the enclosing container (0 for the document itself).
#[derive(Clone, Copy)]
struct ValueSeed<'c, 'p> {
    ctx: &'c Ctx,
    path: Path<'p>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.ctx.charge(1)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.ctx.charge(1)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.ctx.charge(1)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.ctx.charge(1)?;
        // As serde_json's own reader: a number JSON cannot hold is null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.ctx.charge(v.len().saturating_add(2))?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.ctx.charge(v.len().saturating_add(2))?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.ctx.charge(1)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.depth + 1;
        self.ctx.enter(depth, &self.path)?;
        let mut items = Vec::new();
        loop {
            let seed = ValueSeed {
                ctx: self.ctx,
                path: Path::Index(&self.path, items.len()),
                depth,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.depth + 1;
        self.ctx.enter(depth, &self.path)?;
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            self.ctx.charge(key.len().saturating_add(3))?;
            if object.contains_key(&key) {
                return Err(self.ctx.duplicate(&key, &self.path));
            }
            let value = map.next_value_seed(ValueSeed {
                ctx: self.ctx,
                path: Path::Key(&self.path, &key),
                depth,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// What the top of a whole-config document turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopLevel {
    /// A mapping: its keys that are not one of the lists, and the lists whose value is
    /// neither a list nor null (each reported once; their items were not passed on).
    Mapping {
        unknown: Vec<String>,
        not_lists: Vec<String>,
    },
    /// Nothing at all (an empty YAML document, or `null`).
    Empty,
    /// Something else: "a list", "a string", …
    Other(&'static str),
}

/// A list of a whole-config document, whose items are passed on one at a time.
struct ListSeed<'c, 'p, 's> {
    ctx: &'c Ctx,
    path: Path<'p>,
    which: usize,
    sink: &'s mut dyn FnMut(usize, usize, Value),
}

/// Whether a list's value was a list (or null).
enum ListShape {
    List,
    Other,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_, '_> {
    type Value = ListShape;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ListShape, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ListSeed<'_, '_, '_> {
    fn value(&self) -> ValueSeed<'_, '_> {
        ValueSeed {
            ctx: self.ctx,
            path: self.path,
            depth: 1,
        }
    }
}

/// A list's value that is not a list: read (and checked) like any value, then reported.
macro_rules! not_a_list {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<E: de::Error>(self, $($arg: $ty),*) -> Result<ListShape, E> {
            self.value().$method($($arg),*).map(|_| ListShape::Other)
        }
    )*};
}

impl<'de> Visitor<'de> for ListSeed<'_, '_, '_> {
    type Value = ListShape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    not_a_list! {
        visit_bool(v: bool);
        visit_i64(v: i64);
        visit_u64(v: u64);
        visit_f64(v: f64);
        visit_str(v: &str);
        visit_string(v: String);
    }

    fn visit_unit<E: de::Error>(self) -> Result<ListShape, E> {
        self.ctx.charge(1)?;
        Ok(ListShape::List)
    }

    fn visit_none<E: de::Error>(self) -> Result<ListShape, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<ListShape, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ListShape, A::Error> {
        self.value().visit_map(map).map(|_| ListShape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListShape, A::Error> {
        let depth = 2;
        self.ctx.enter(depth, &self.path)?;
        let sink = self.sink;
        let mut index = 0;
        loop {
            let seed = ValueSeed {
                ctx: self.ctx,
                path: Path::Index(&self.path, index),
                depth,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => sink(self.which, index, item),
                None => return Ok(ListShape::List),
            }
            index += 1;
        }
    }
}

/// The top of a whole-config document.
struct TopSeed<'c, 'n, 's> {
    ctx: &'c Ctx,
    lists: &'n [&'n str],
    sink: &'s mut dyn FnMut(usize, usize, Value),
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_> {
    type Value = TopLevel;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<TopLevel, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl TopSeed<'_, '_, '_> {
    fn value(&self) -> ValueSeed<'_, 'static> {
        ValueSeed {
            ctx: self.ctx,
            path: Path::Root,
            depth: 0,
        }
    }
}

/// A document that is not a mapping: read (and checked) like any value, then named.
macro_rules! not_a_mapping {
    ($($method:ident($($arg:ident: $ty:ty),*) => $name:literal;)*) => {$(
        fn $method<E: de::Error>(self, $($arg: $ty),*) -> Result<TopLevel, E> {
            self.value().$method($($arg),*).map(|_| TopLevel::Other($name))
        }
    )*};
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_> {
    type Value = TopLevel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    not_a_mapping! {
        visit_bool(v: bool) => "a boolean";
        visit_i64(v: i64) => "a number";
        visit_u64(v: u64) => "a number";
        visit_f64(v: f64) => "a number";
        visit_str(v: &str) => "a string";
        visit_string(v: String) => "a string";
    }

    fn visit_unit<E: de::Error>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Empty)
    }

    fn visit_none<E: de::Error>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Empty)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<TopLevel, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TopLevel, A::Error> {
        self.value()
            .visit_seq(seq)
            .map(|_| TopLevel::Other("a list"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        self.ctx.enter(1, &Path::Root)?;
        let mut seen: Vec<String> = Vec::new();
        let mut unknown = Vec::new();
        let mut not_lists = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            self.ctx.charge(key.len().saturating_add(3))?;
            if seen.contains(&key) {
                return Err(self.ctx.duplicate(&key, &Path::Root));
            }
            let path = Path::Key(&Path::Root, &key);
            match self.lists.iter().position(|list| *list == key) {
                Some(which) => {
                    let seed = ListSeed {
                        ctx: self.ctx,
                        path,
                        which,
                        sink: &mut *self.sink,
                    };
                    if let ListShape::Other = map.next_value_seed(seed)? {
                        not_lists.push(key.clone());
                    }
                }
                None => {
                    map.next_value_seed(ValueSeed {
                        ctx: self.ctx,
                        path,
                        depth: 1,
                    })?;
                    unknown.push(key.clone());
                }
            }
            // The keys are few (one per list, or a typo): a list is enough.
            seen.push(key);
        }
        Ok(TopLevel::Mapping { unknown, not_lists })
    }
}

/// What a reader's own error says, and whether it is about one of the limits.
struct ReaderError {
    message: String,
    position: Option<Position>,
    kind: ReaderLimit,
}

enum ReaderLimit {
    None,
    Depth,
    Size,
}

fn json_error(error: &serde_json::Error) -> ReaderError {
    ReaderError {
        message: error.to_string(),
        position: (error.line() > 0).then(|| Position {
            line: error.line() as u64,
            column: error.column() as u64,
        }),
        kind: ReaderLimit::None,
    }
}

fn yaml_error(error: &serde_saphyr::Error) -> ReaderError {
    use serde_saphyr::budget::BudgetBreach;
    use serde_saphyr::granit_parser::ErrorKind;
    use serde_saphyr::{Error, ExternalMessageSource};

    let mut inner = error;
    while let Error::WithSnippet { error, .. } | Error::AliasError { error, .. } = inner {
        inner = error;
    }
    let kind = match inner {
        Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        }
        | Error::AliasReplayStackDepthExceeded { .. } => ReaderLimit::Depth,
        Error::ExternalMessage { source, .. } => match &**source {
            ExternalMessageSource::Parser(scan)
                if matches!(scan.kind(), ErrorKind::RecursionLimitExceeded) =>
            {
                ReaderLimit::Depth
            }
            _ => ReaderLimit::None,
        },
        Error::Budget { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayCounterOverflow { .. } => ReaderLimit::Size,
        _ => ReaderLimit::None,
    };
    ReaderError {
        message: error.to_string(),
        position: error.location().map(|l| Position {
            line: l.line(),
            column: l.column(),
        }),
        kind,
    }
}

/// serde-saphyr's settings: YAML 1.2's core schema, every key passed on (so that the readers
/// above find duplicates and name them as for JSON), and each of its own limits set from ours.
/// Its depth limits are one level above ours where it can, so that ours, which know the path,
/// speak first; its flow-nesting limit is in the scanner, ahead of any reader, and equals ours.
fn yaml_options(limits: &Limits, budget: usize) -> serde_saphyr::Options {
    use serde_saphyr::options::{AliasLimits, DuplicateKeyPolicy};
    use serde_saphyr::{Budget, NonFiniteFloatPolicy};

    // No event, node or scalar byte takes less than a byte of text, so these bound nothing
    // that the body limit does not; what aliases add is bounded by `budget`, where each event
    // costs at least two bytes.
    let text = limits.max_bytes.saturating_add(64);
    let replay = budget / 2 + 1;
    let mut yaml_budget = Budget::default();
    yaml_budget.max_reader_input_bytes = Some(limits.max_bytes);
    yaml_budget.flow_nesting_limit = limits.max_depth;
    yaml_budget.max_depth = limits.max_depth + 1;
    yaml_budget.max_events = text;
    yaml_budget.max_nodes = text;
    yaml_budget.max_total_scalar_bytes = text;
    yaml_budget.max_aliases = text / 2;
    yaml_budget.max_anchors = text / 2;
    yaml_budget.max_recorded_anchor_events = replay;
    yaml_budget.max_recorded_anchor_bytes = budget;
    yaml_budget.max_merge_keys = text / 2;
    // Many aliases of one anchor (`<<: *defaults` in every route) are fine; the budget
    // bounds what they add up to.
    yaml_budget.enforce_alias_anchor_ratio = false;
    let mut alias_limits = AliasLimits::default();
    alias_limits.max_total_replayed_events = replay;
    alias_limits.max_replay_stack_depth = limits.max_depth;
    alias_limits.max_alias_expansions_per_anchor = usize::MAX;

    let mut options = serde_saphyr::Options::default();
    options.budget = Some(yaml_budget);
    options.alias_limits = alias_limits;
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options.non_finite_float_policy = NonFiniteFloatPolicy::AsString;
    options.reject_unsupported_tags = true;
    options.with_snippet = false;
    options
}

/// Runs `seed` over the document.
fn read<T>(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    ctx: &Ctx,
    seed: impl for<'de> DeserializeSeed<'de, Value = T>,
) -> Result<T, ReadError> {
    match format {
        Format::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            seed.deserialize(&mut deserializer)
                .and_then(|value| deserializer.end().map(|()| value))
                .map_err(|e| ctx.error(format, json_error(&e)))
        }
        Format::Yaml => serde_saphyr::with_deserializer_from_slice_with_options(
            bytes,
            yaml_options(limits, ctx.budget),
            |deserializer| seed.deserialize(deserializer),
        )
        .map_err(|e| ctx.error(format, yaml_error(&e))),
    }
}

/// Reads a whole document into one value.
pub fn read_value(bytes: &[u8], format: Format, limits: &Limits) -> Result<Value, ReadError> {
    let ctx = Ctx::new(limits, bytes.len());
    let seed = ValueSeed {
        ctx: &ctx,
        path: Path::Root,
        depth: 0,
    };
    read(bytes, format, limits, &ctx, seed)
}

/// Reads a document that is a mapping of lists (`{"upstreams": [...], "routes": [...]}`),
/// passing each item of the list `lists[i]` to `item(i, index, value)` as soon as it is read,
/// so that the whole document is never in memory as values. Null stands for an empty list.
pub fn read_lists(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    lists: &[&str],
    item: &mut dyn FnMut(usize, usize, Value),
) -> Result<TopLevel, ReadError> {
    let ctx = Ctx::new(limits, bytes.len());
    let seed = TopSeed {
        ctx: &ctx,
        lists,
        sink: item,
    };
    read(bytes, format, limits, &ctx, seed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Instant;

    use serde_json::json;

    use super::*;

    const LIMITS: Limits = Limits {
        max_bytes: 64 * 1024 * 1024,
        max_depth: MAX_DEPTH,
    };

    /// Generous for unoptimized builds on a busy machine: what it guards against (work that
    /// grows exponentially, or with the square of the input) takes minutes.
    fn quick(started: Instant) {
        assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    }

    fn yaml(text: &str) -> Result<Value, ReadError> {
        read_value(text.as_bytes(), Format::Yaml, &LIMITS)
    }

    fn json(text: &str) -> Result<Value, ReadError> {
        read_value(text.as_bytes(), Format::Json, &LIMITS)
    }

    #[test]
    fn formats_are_told_apart() {
        assert_eq!(Format::detect(b"  {\"a\": 1}", None), Format::Json);
        assert_eq!(Format::detect(b"[1]", None), Format::Json);
        assert_eq!(Format::detect(b"a: 1", None), Format::Yaml);
        assert_eq!(
            Format::detect(b"a: 1", Some("application/json")),
            Format::Json
        );
    }

    #[test]
    fn yaml_reads_as_the_gateway_writes_it() {
        let text = "a: yes\nb: '1'\nc: 1\nd: 012\ne: 1_000\nf: ~\ng: true\nh: 0x10\ni: .inf\n\
                    j: [x, {k: v}]\n'1': one\n";
        assert_eq!(
            yaml(text).unwrap(),
            json!({"a": "yes", "b": "1", "c": 1, "d": "012", "e": "1_000", "f": null, "g": true,
                   "h": 16, "i": ".inf", "j": ["x", {"k": "v"}], "1": "one"})
        );
        assert_eq!(yaml("").unwrap(), Value::Null);
        assert!(matches!(
            yaml("a: [1\n"),
            Err(ReadError::Syntax {
                format: Format::Yaml,
                ..
            })
        ));
        assert!(matches!(
            yaml("a: 1\n---\nb: 2\n"),
            Err(ReadError::Syntax { .. })
        ));
    }

    #[test]
    fn duplicate_keys_are_named_with_their_path() {
        let cases = [
            ("{\"a\": 1, \"a\": 2}", "a", "a"),
            ("{\"r\": [{}, {\"h\": [], \"h\": []}]}", "h", "r[1].h"),
            (
                "{\"r\": [{\"x\": {\"y\": {\"k\": 1, \"k\": 1}}}]}",
                "k",
                "r[0].x.y.k",
            ),
        ];
        for (text, key, field) in cases {
            for (format, text) in [
                (Format::Json, text.to_owned()),
                (Format::Yaml, text.replace('"', "")),
            ] {
                let err = read_value(text.as_bytes(), format, &LIMITS).unwrap_err();
                let ReadError::DuplicateKey {
                    key: found,
                    field: at,
                    position,
                } = &err
                else {
                    panic!("{text}: {err}");
                };
                assert_eq!((found.as_str(), at.as_str()), (key, field), "{text}");
                assert!(position.is_some(), "{text}: {err}");
            }
        }
        let block = "r:\n- name: a\n  hosts: []\n  hosts: [x]\n";
        let err = yaml(block).unwrap_err();
        assert_eq!(err.field(), Some("r[0].hosts"));
        assert!(err.to_string().contains("line 4"), "{err}");
        // A key written as a number and as text is the same key.
        assert_eq!(yaml("1: a\n'1': b\n").unwrap_err().field(), Some("1"));
    }

    #[test]
    fn nesting_is_bounded_alike() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(json(&deep(MAX_DEPTH)).is_ok());
        assert!(yaml(&format!("a: {}", deep(MAX_DEPTH - 1))).is_ok());
        for format in [Format::Json, Format::Yaml] {
            let err = read_value(deep(MAX_DEPTH + 1).as_bytes(), format, &LIMITS).unwrap_err();
            assert!(matches!(err, ReadError::TooDeep { limit: 64, .. }), "{err}");
        }
        let mut block = String::new();
        for level in 0..=MAX_DEPTH {
            block.push_str(&" ".repeat(level));
            block.push_str("k:\n");
        }
        let err = yaml(&block).unwrap_err();
        assert!(matches!(err, ReadError::TooDeep { .. }), "{err}");
        assert!(err.field().unwrap().starts_with("k.k.k"), "{err}");
    }

    /// Both take quadratic time in libyaml and in the first version of this reader.
    #[test]
    fn nesting_bombs_are_refused_at_once() {
        let two_megabytes = 2 * 1024 * 1024;
        for bomb in ["[", "{a: ", "- ", "{\"a\": "] {
            let text = bomb.repeat(two_megabytes / bomb.len());
            for format in [Format::Json, Format::Yaml] {
                let started = Instant::now();
                let err = read_value(text.as_bytes(), format, &LIMITS).unwrap_err();
                assert!(
                    matches!(err, ReadError::TooDeep { .. } | ReadError::Syntax { .. }),
                    "{bomb}: {err}"
                );
                quick(started);
            }
        }
    }

    fn laughs(levels: usize) -> String {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..levels {
            let previous = format!("*a{}", level - 1);
            let items = [previous.as_str(); 9].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
        }
        text
    }

    #[test]
    fn aliases_are_bounded_by_the_budget() {
        let started = Instant::now();
        let err = yaml(&laughs(9)).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { .. }), "{err}");
        quick(started);

        // Few, wide aliases of one large anchor.
        let anchor: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
        let text = format!(
            "x: &x [{}]\ny: [{}]\n",
            anchor.join(", "),
            vec!["*x"; 5000].join(", ")
        );
        let started = Instant::now();
        let err = yaml(&text).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { .. }), "{err}");
        quick(started);

        // Ordinary use of anchors is fine.
        let defaults = "defaults: &d {timeout: 5s, retries: {attempts: 2}}\n";
        let mut text = String::from(defaults);
        text.push_str("routes:\n");
        for i in 0..200 {
            text.push_str(&format!("- name: r{i}\n  <<: *d\n"));
        }
        let value = yaml(&text).unwrap();
        assert_eq!(value["routes"][199]["retries"]["attempts"], 2);
    }

    #[test]
    fn a_json_document_never_exceeds_its_own_budget() {
        let limits = Limits::new(1000);
        let text = json!({"a": [1, 2.5, true, null, "x"], "b": {"c": "dé\\\""}}).to_string();
        assert!(read_value(text.as_bytes(), Format::Json, &limits).is_ok());
        let padded = format!("[{}]", vec!["\"abcdefgh\""; 90].join(","));
        assert!(padded.len() <= 1000);
        assert!(read_value(padded.as_bytes(), Format::Json, &limits).is_ok());
    }

    #[test]
    fn lists_are_passed_on_item_by_item() {
        let text = "routes: [{name: a}, {name: b}]\nupstreams: ~\nextra: {x: 1}\nother: 3\n";
        let mut items = Vec::new();
        let top = read_lists(
            text.as_bytes(),
            Format::Yaml,
            &LIMITS,
            &["upstreams", "routes", "other"],
            &mut |which, index, value| items.push((which, index, value)),
        )
        .unwrap();
        assert_eq!(
            top,
            TopLevel::Mapping {
                unknown: vec!["extra".into()],
                not_lists: vec!["other".into()],
            }
        );
        assert_eq!(
            items,
            [(1, 0, json!({"name": "a"})), (1, 1, json!({"name": "b"}))]
        );
        let mut ignore = |_: usize, _: usize, _: Value| {};
        for (text, expected) in [
            ("", TopLevel::Empty),
            ("null", TopLevel::Empty),
            ("[1]", TopLevel::Other("a list")),
            ("x", TopLevel::Other("a string")),
        ] {
            let top = read_lists(text.as_bytes(), Format::Yaml, &LIMITS, &[], &mut ignore);
            assert_eq!(top.unwrap(), expected, "{text}");
        }
        let dup = read_lists(
            b"{\"routes\": [], \"routes\": []}",
            Format::Json,
            &LIMITS,
            &["routes"],
            &mut ignore,
        );
        assert_eq!(dup.unwrap_err().field(), Some("routes"));
        let deep_item = format!("{{\"routes\": [{}]}}", "[".repeat(70));
        let err = read_lists(
            deep_item.as_bytes(),
            Format::Json,
            &LIMITS,
            &["routes"],
            &mut ignore,
        )
        .unwrap_err();
        assert!(err.field().unwrap().starts_with("routes[0][0]"), "{err}");
    }
}
