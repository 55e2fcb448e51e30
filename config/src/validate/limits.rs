//! Every bound that validation puts on what input controls, in one place: lengths of text,
//! counts of lists, the size of the route table a config makes each worker build, and the range
//! of durations. The control plane refuses a change that breaks one with an error naming the
//! field, and every worker checks the same bounds on what it is pushed, so that no accepted
//! config can take a worker down or be refused by it.
//!
//! The numbers are generous for real configs, and each says what it protects. The route table
//! numbers come from what a worker builds (`data-plane/src/routing/build.rs`): one entry for each
//! host × path of a route, each with its own copy of the path, and for a prefix one trie node per
//! segment in the host's bucket. Measured on a release build: about 0.5 KB per entry for ordinary
//! hosts and paths (100,000 routes of 2 hosts × 2 paths: 400,000 entries, 182 MB, built in
//! 2.5 s), up to about 8.5 KB for an entry whose prefix has the longest length and the most
//! segments allowed here.

// Names and labels.

/// Longest entity name: names appear in URLs, file names and log lines.
pub const MAX_NAME_LEN: usize = 128;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 64;
/// Tags of one entity: tags are labels to filter lists by, and each is stored and compared on
/// every filtered list request.
pub const MAX_TAGS: usize = 32;

// The route table.

/// Host patterns of one route. A few hundred names behind one route is a large multi-tenant
/// setup; each host is a bucket of its own in every worker's table.
pub const MAX_HOSTS_PER_ROUTE: usize = 1_000;
/// Path conditions of one route.
pub const MAX_PATHS_PER_ROUTE: usize = 1_000;
/// Route table entries of one route: hosts × paths, an empty list counting as one (see
/// [`crate::Route::expansion`]). 1,000 hosts with 10 paths, or 100 × 100, still pass; the
/// entries of one route then take about 5 MB in a worker (under 90 MB with the longest, deepest
/// prefixes), and one write never makes a worker build more than that.
pub const MAX_ROUTE_EXPANSION: u64 = 10_000;
/// Route table entries of a whole config: the sum of its routes' expansions. 100,000 routes of
/// 3 hosts × 3 paths fit (900,000); at about 0.5 KB per ordinary entry the table of a config at
/// the limit takes about 0.5 GB in each worker, twice that for the moment a full rebuild keeps
/// the old table serving. See [`crate::expansion_budget_error`].
pub const MAX_CONFIG_EXPANSION: u64 = 1_000_000;
/// Segments of a path prefix (`/a/b/` has two). A worker keeps a trie node per segment of each
/// prefix in each of the route's host buckets, about 200 bytes each, so deep prefixes multiply
/// the memory of every entry; real prefixes have a handful of segments.
pub const MAX_PREFIX_SEGMENTS: usize = 32;

// Matching requests.

/// Longest path: path conditions, rewrite and redirect paths, and the health-check target.
/// Worker route tables copy a path into each of a route's entries.
pub const MAX_PATH_LEN: usize = 1024;
/// Regex conditions among the paths of one route. Each compiles to up to [`REGEX_SIZE_LIMIT`]
/// in every worker and in the control plane on every check of the route, and a worker's host
/// bucket matches its regex paths through one `RegexSet` over all of them.
pub const MAX_REGEX_PATHS_PER_ROUTE: usize = 64;
/// Longest regex, in bytes of source.
pub const MAX_REGEX_LEN: usize = 1024;
/// Bound on the memory one compiled regex may take, so that a pattern like `(a{100}){100}`
/// cannot make every worker allocate without limit. The data plane compiles with the same limit.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Methods of one route: the registered HTTP methods, WebDAV's included, are fewer.
pub const MAX_METHODS_PER_ROUTE: usize = 32;
/// Longest method name.
pub const MAX_METHOD_LEN: usize = 32;
/// `Upgrade` protocols one route may allow besides WebSocket.
pub const MAX_UPGRADES_PER_ROUTE: usize = 16;
/// Bytes of one of them.
pub const MAX_UPGRADE_LEN: usize = 64;
/// Header conditions of one route; each is evaluated for every request that reaches the route.
pub const MAX_HEADER_MATCHES_PER_ROUTE: usize = 32;
/// Query conditions of one route; each is evaluated for every request that reaches the route.
pub const MAX_QUERY_MATCHES_PER_ROUTE: usize = 32;
/// Longest header, cookie or query parameter name.
pub const MAX_HEADER_NAME_LEN: usize = 256;
/// Longest header value (set, added or matched) and query value matched.
pub const MAX_HEADER_VALUE_LEN: usize = 4096;

// What routes do.

/// Backends of one route: a weighted split over more upstreams than this is not a canary.
pub const MAX_BACKENDS_PER_ROUTE: usize = 100;
/// Entries of each list of a header transform (`add`, `set`, `remove`); every entry is applied to
/// every request or response of the route.
pub const MAX_HEADER_EDITS: usize = 64;
/// Largest body of a `direct_response`; workers keep it in memory for every route.
pub const MAX_BODY_LEN: usize = 64 * 1024;
/// Largest weight of a backend or target.
pub const MAX_WEIGHT: u32 = 10_000;
/// More tries than this only multiply the load on a failing upstream.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;

// Route policies.

/// Addresses and CIDR blocks in one list of an `ip_restriction` (`allow` or `deny`): a worker
/// checks a request against each, so the list bounds that work; larger sets belong in a
/// firewall.
pub const MAX_IP_RULES: usize = 1_000;
/// Largest `request_size_limit.max_bytes`: 2^53, the largest integer every JSON reader keeps
/// exact.
pub const MAX_REQUEST_SIZE_LIMIT: u64 = 1 << 53;

// Upstreams.

/// Targets of one upstream. A consistent-hash upstream's lookup table has 100 slots per target
/// and takes time in proportion to targets × slots to fill, so every worker rebuilds it in well
/// under a second at this size.
pub const MAX_TARGETS_PER_UPSTREAM: usize = 1_000;
/// Longest host name (the DNS limit).
pub const MAX_HOST_LEN: usize = 253;
/// Longest `host:port`: the longest host name, a colon and a port (with its optional `+`).
pub const MAX_ADDRESS_LEN: usize = MAX_HOST_LEN + 7;
/// Statuses a health check expects: all the statuses of one class.
pub const MAX_EXPECTED_STATUSES: usize = 100;
/// Upper bound of the probe thresholds and of `consecutive_failures`.
pub const MAX_THRESHOLD: u32 = 1_000;
/// Largest PEM bundle of trusted certificates: twice a full public root store (about 220 KB).
pub const MAX_CA_PEM_LEN: usize = 512 * 1024;
/// Probing more often than this is load, not information.
pub const MIN_PROBE_INTERVAL_MS: u64 = 100;
/// Re-resolving names more often than this only loads the resolver.
pub const MIN_DNS_REFRESH_MS: u64 = 100;

// Certificates.

/// Largest certificate chain in PEM: a leaf with a few intermediates is under 10 KB; a chain
/// with long RSA keys and many names stays well under this.
pub const MAX_CERT_PEM_LEN: usize = 64 * 1024;
/// Certificates in one chain: real chains have two to four.
pub const MAX_CERT_CHAIN_LEN: usize = 10;
/// Largest private key in PEM: an RSA-8192 key is about 6.5 KB.
pub const MAX_KEY_PEM_LEN: usize = 16 * 1024;
/// Server names one certificate is served for; each is an entry of every worker's SNI table.
pub const MAX_SNIS: usize = 1_000;

// Durations.

/// Longest duration any field takes: a week. Longer than any sensible timeout, probe interval,
/// ejection or refresh period, and short enough that every deadline a worker computes from one
/// (now plus a timeout, a backoff doubled six times, an ejection doubled five times) stays far
/// from overflowing its clock.
pub const MAX_DURATION_MS: u64 = 7 * 24 * 60 * 60 * 1000;
