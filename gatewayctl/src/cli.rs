//! The command line of gatewayctl: global flags, subcommands, and the parsers that turn
//! `HOST:PORT=WEIGHT`-style flag values into the shared model types.
//!
//! Flag syntax errors are caught here so that clap reports them as usage errors (exit 2) before
//! anything is sent to the admin API.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gateway_config::{Backend, ClientAuthMode, Target};

use crate::output::Format;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the admin API refused the request (4xx/5xx, including 412 precondition_failed after
     --if-match); the error and its details go to stderr
  2  usage error: bad flags or arguments, or an input file (-f, or a PEM file of
     `certificate create|replace`) that cannot be read or parsed
  3  the admin API could not be reached
`gatewayctl diff` differs: 0 no changes, 1 changes, 2 any error.";

/// `diff` follows diff(1), so that `gatewayctl diff -f gateway.yaml || ...` works in pipelines.
const DIFF_AFTER_HELP: &str = "\
Exit codes:
  0  the file matches the running configuration
  1  applying the file would change something; the changes are printed
  2  any error: bad flags, an unreadable file, a refusal (the error goes to stderr) or an
     unreachable admin API";

/// Drive the gateway control plane through its admin API.
#[derive(Debug, Parser)]
#[command(name = "gatewayctl", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Base URL of the control plane's admin API [default: the context's, else
    /// http://127.0.0.1:8001].
    #[arg(long, global = true, env = "GATEWAYCTL_ADMIN_URL", value_name = "URL")]
    pub admin_url: Option<String>,

    /// Bearer token sent with every request [default: the context's].
    #[arg(
        long,
        global = true,
        env = "GATEWAYCTL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// PEM CA file that the admin API's certificate must be signed by [default: the
    /// context's, else the system's roots].
    #[arg(long, global = true, env = "GATEWAYCTL_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// The context to use instead of the current one (`gatewayctl context list`).
    #[arg(long, global = true, env = "GATEWAYCTL_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// The contexts file [default: $XDG_CONFIG_HOME/gatewayctl/config.yaml, else
    /// ~/.config/gatewayctl/config.yaml].
    #[arg(long, global = true, env = "GATEWAYCTL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        env = "GATEWAYCTL_OUTPUT",
        value_enum,
        default_value_t = Format::Table
    )]
    pub output: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage upstreams (groups of backend targets).
    #[command(subcommand, after_help = AFTER_HELP)]
    Upstream(UpstreamCommand),
    /// Manage routes (which requests go to which upstreams).
    #[command(subcommand, after_help = AFTER_HELP)]
    Route(RouteCommand),
    /// Manage TLS certificates (what the workers present, by server name).
    #[command(subcommand, after_help = AFTER_HELP)]
    Certificate(CertificateCommand),
    /// Show the data-plane nodes and whether they serve the latest revision.
    #[command(after_help = AFTER_HELP)]
    Status,
    /// Show the configuration history: the list, the config at one revision, or a diff.
    #[command(after_help = AFTER_HELP)]
    Revisions(RevisionsArgs),
    /// Make the whole configuration equal to a YAML/JSON file, as one revision.
    ///
    /// The file holds `upstreams:` and `routes:` lists (either may be left out, meaning none);
    /// whatever is running but not in the file is deleted. The file is applied whole or not at
    /// all: a refusal lists every problem. Prints one line per change (`+` created, `~` updated,
    /// `-` deleted) and the new revision.
    #[command(after_help = AFTER_HELP)]
    Apply(ApplyArgs),
    /// Show what `apply` would change, without changing anything.
    ///
    /// One line per change; updates list every changed field with its old and new value.
    #[command(after_help = DIFF_AFTER_HELP)]
    Diff(DiffArgs),
    /// Print the whole running configuration as a file for `apply` (YAML; `-o json` for JSON).
    #[command(after_help = AFTER_HELP)]
    Export,
    /// Make the configuration equal to the one at an earlier revision, as one new revision.
    #[command(after_help = AFTER_HELP)]
    Rollback(RollbackArgs),
    /// Manage admin API tokens (needs an admin token).
    #[command(subcommand, after_help = AFTER_HELP)]
    Token(TokenCommand),
    /// Manage the named contexts of the contexts file (admin URL, token, CA file).
    #[command(subcommand)]
    Context(ContextCommand),
    /// Print a shell completion script: `source <(gatewayctl completion bash)`.
    Completion(CompletionArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret, which is shown this once.
    Create(TokenCreateArgs),
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke(NameArg),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The token's name, recorded as the actor of every revision it makes.
    #[arg(long)]
    pub name: String,
    /// viewer (reads), editor (also config writes) or admin (also tokens).
    #[arg(long, value_parser = ["viewer", "editor", "admin"])]
    pub role: String,
    /// How long the token is valid (`30d`, `12h`); without it, until revoked.
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List the contexts; `*` marks the current one.
    List,
    /// Make a context the current one.
    Use(NameArg),
    /// Add a context, or change one.
    Set(ContextSetArgs),
    /// Remove a context.
    Delete(NameArg),
}

#[derive(Debug, Args)]
pub struct ContextSetArgs {
    pub name: String,
    /// The admin API's base URL (required for a new context).
    #[arg(long = "url", value_name = "URL")]
    pub url: Option<String>,
    /// A token to store in the file.
    #[arg(
        long = "set-token",
        value_name = "TOKEN",
        conflicts_with = "token_command"
    )]
    pub set_token: Option<String>,
    /// A command that prints the token (run with `sh -c` each time), e.g. `pass show gw/prod`.
    #[arg(long, value_name = "COMMAND")]
    pub token_command: Option<String>,
    /// A PEM CA file for the admin API's certificate.
    #[arg(long = "set-ca-file", value_name = "FILE")]
    pub set_ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// List upstreams, sorted by name.
    List(ListArgs),
    /// Show one upstream.
    Get(NameArg),
    /// Create an upstream from flags or from a YAML/JSON file.
    Create(UpstreamCreateArgs),
    /// Create or replace an upstream from a YAML/JSON file.
    Replace(ReplaceArgs),
    /// Delete an upstream; refused while routes still use it.
    Delete(DeleteArgs),
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// List routes, sorted by name.
    List(ListArgs),
    /// Show one route.
    Get(NameArg),
    /// Create a route from flags or from a YAML/JSON file.
    Create(RouteCreateArgs),
    /// Create or replace a route from a YAML/JSON file.
    Replace(ReplaceArgs),
    /// Delete a route.
    Delete(DeleteArgs),
}

#[derive(Debug, Subcommand)]
pub enum CertificateCommand {
    /// List certificates, sorted by name, with the days each has left.
    ///
    /// SNIS `(sans)` means the certificate is served for its own DNS names. Every certificate
    /// with fewer than 30 days left, or expired, is also warned about on stderr.
    List(ListArgs),
    /// Show one certificate: names, issuer, fingerprint, validity and days left.
    ///
    /// Warns on stderr, as `list` does, when it has fewer than 30 days left.
    Get(NameArg),
    /// Create a certificate from a PEM chain and its private key.
    ///
    /// The key is sent to the admin API, which stores it sealed; no answer ever shows it.
    Create(CertificateCreateArgs),
    /// Create or replace a certificate, whole: what the flags leave out is reset, not kept.
    ///
    /// The key is the exception: without --key, the key stored for the same leaf certificate
    /// is kept, so that names, tags or client authentication change without handling the key.
    Replace(CertificateReplaceArgs),
    /// Delete a certificate.
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct CertificateCreateArgs {
    /// Name of the new certificate.
    pub name: String,

    /// PEM certificate chain: the leaf first, then each intermediate.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,

    /// PEM private key of the leaf (PKCS#8, PKCS#1 RSA or SEC1 EC; not encrypted).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,

    #[command(flatten)]
    pub spec: CertificateSpecArgs,

    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, Args)]
pub struct CertificateReplaceArgs {
    /// Name of the certificate to replace (or create).
    pub name: String,

    /// PEM certificate chain: the leaf first, then each intermediate.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,

    /// PEM private key of the leaf (PKCS#8, PKCS#1 RSA or SEC1 EC; not encrypted) [default:
    /// the key stored for the same leaf certificate].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    #[command(flatten)]
    pub spec: CertificateSpecArgs,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// The flags `certificate create` and `replace` share, after the chain and the key.
#[derive(Debug, Clone, Default, Args)]
pub struct CertificateSpecArgs {
    /// Server name to serve the certificate for (exact or `*.suffix`, covered by the
    /// certificate); repeat for several. None: the certificate's DNS names.
    #[arg(long = "sni", value_name = "NAME")]
    pub snis: Vec<String>,

    /// A tag; repeat for several.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Ask clients for a certificate issued by one of the CA certificates of this PEM file
    /// (mutual TLS).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,

    /// Whether a client without a certificate is refused or let in [default: required].
    #[arg(long, value_enum, value_name = "MODE", requires = "client_ca")]
    pub client_auth: Option<ClientAuthArg>,

    /// Request header that carries the verified client certificate's subject upstream.
    #[arg(long, value_name = "HEADER", requires = "client_ca")]
    pub client_subject_header: Option<String>,

    /// Request header that carries the verified client certificate's SHA-256 fingerprint
    /// upstream.
    #[arg(long, value_name = "HEADER", requires = "client_ca")]
    pub client_fingerprint_header: Option<String>,
}

/// `--client-auth`: the model's [`ClientAuthMode`], as clap lists and completes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuthArg {
    /// A client may present a certificate; if it does, it must be valid.
    Optional,
    /// A client must present a valid certificate, or the handshake fails.
    Required,
}

impl From<ClientAuthArg> for ClientAuthMode {
    fn from(arg: ClientAuthArg) -> Self {
        match arg {
            ClientAuthArg::Optional => ClientAuthMode::Optional,
            ClientAuthArg::Required => ClientAuthMode::Required,
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only entities carrying this tag.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct NameArg {
    pub name: String,
}

/// Flags every write takes.
#[derive(Debug, Clone, Default, Args)]
pub struct WriteArgs {
    /// Refuse the write (412 precondition_failed, nothing stored) unless the latest revision is
    /// N; guards a read-modify-write against someone else's change in between.
    #[arg(long, value_name = "N")]
    pub if_match: Option<u64>,

    /// Message recorded with the new revision instead of the default one (printable ASCII).
    #[arg(short = 'm', long, value_name = "TEXT", value_parser = parse_message)]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// YAML or JSON document; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub name: String,

    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The whole desired configuration, YAML or JSON; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    /// Validate and show the changes, but store nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The whole desired configuration, YAML or JSON; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The revision whose configuration becomes current again.
    #[arg(value_name = "REVISION")]
    pub revision: u64,

    /// Show the changes, but store nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, Args)]
pub struct UpstreamCreateArgs {
    /// Name of the new upstream (not with -f).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub name: Option<String>,

    /// A target; repeat for several. The weight defaults to 1.
    #[arg(
        long = "target",
        value_name = "HOST:PORT[=WEIGHT]",
        value_parser = parse_target,
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub targets: Vec<Target>,

    /// A tag; repeat for several.
    #[arg(long = "tag", value_name = "TAG", conflicts_with = "file")]
    pub tags: Vec<String>,

    /// Read the whole upstream from a YAML or JSON document; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, Args)]
pub struct RouteCreateArgs {
    /// Name of the new route (not with -f).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub name: Option<String>,

    /// Host to match (exact or `*.suffix`); repeat for several. None matches any host.
    #[arg(long = "host", value_name = "HOST", conflicts_with = "file")]
    pub hosts: Vec<String>,

    /// Path prefix to match (segment-aware); repeat for several.
    #[arg(long = "path", value_name = "PREFIX", conflicts_with = "file")]
    pub paths: Vec<String>,

    /// Exact path to match; repeat for several.
    #[arg(long = "exact-path", value_name = "PATH", conflicts_with = "file")]
    pub exact_paths: Vec<String>,

    /// HTTP method to match (case-insensitive); repeat for several. None matches any method.
    #[arg(long = "method", value_name = "METHOD", conflicts_with = "file")]
    pub methods: Vec<String>,

    /// Upstream to send traffic to, with its share; repeat to split traffic.
    #[arg(
        long = "backend",
        value_name = "UPSTREAM[=WEIGHT]",
        value_parser = parse_backend,
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub backends: Vec<Backend>,

    /// Remove the matched path prefix before forwarding.
    #[arg(long, conflicts_with = "file")]
    pub strip_prefix: bool,

    /// Forward the client's Host header instead of the target's address.
    #[arg(long, conflicts_with = "file")]
    pub preserve_host: bool,

    /// Precedence over other matching routes; higher wins.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        conflicts_with = "file"
    )]
    pub priority: Option<i32>,

    /// A tag; repeat for several.
    #[arg(long = "tag", value_name = "TAG", conflicts_with = "file")]
    pub tags: Vec<String>,

    /// Read the whole route from a YAML or JSON document; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub write: WriteArgs,
}

/// Without a subcommand: the list of revisions, newest first.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RevisionsArgs {
    #[command(subcommand)]
    pub command: Option<RevisionsCommand>,

    /// Show at most this many revisions (all when omitted).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum RevisionsCommand {
    /// Print the configuration at a revision.
    ///
    /// By default as a YAML file for `apply`, headed by a comment naming the revision; `-o json`
    /// or `-o yaml` print the whole record (revision, actor, message, digest, time, config).
    #[command(after_help = AFTER_HELP)]
    Show(RevisionArg),
    /// Show the changes that turn the configuration at revision A into the one at B.
    #[command(after_help = AFTER_HELP)]
    Diff(RevisionDiffArgs),
}

#[derive(Debug, Args)]
pub struct RevisionArg {
    #[arg(value_name = "REVISION")]
    pub revision: u64,
}

#[derive(Debug, Args)]
pub struct RevisionDiffArgs {
    #[arg(value_name = "A")]
    pub from: u64,
    #[arg(value_name = "B")]
    pub to: u64,
}

/// A revision message travels in an HTTP header (`x-gateway-message`), which portably carries
/// one line of printable ASCII and nothing else.
pub fn parse_message(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("the message is empty".into());
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ')) {
        return Err(format!(
            "the message contains {c:?}; it must be one line of printable ASCII"
        ));
    }
    Ok(value.to_owned())
}

/// Parses `HOST:PORT[=WEIGHT]`. Only the shape is checked here; the server validates the rest.
pub fn parse_target(value: &str) -> Result<Target, String> {
    let (address, weight) = split_weight(value)?;
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("`{address}` has no port; write it as HOST:PORT"));
    };
    if host.is_empty() {
        return Err(format!("`{address}` has no host; write it as HOST:PORT"));
    }
    if port.parse::<u16>().is_err() {
        return Err(format!("`{port}` is not a port number (0-65535)"));
    }
    Ok(Target {
        address: address.to_owned(),
        weight,
    })
}

/// Parses `UPSTREAM[=WEIGHT]`.
pub fn parse_backend(value: &str) -> Result<Backend, String> {
    let (upstream, weight) = split_weight(value)?;
    if upstream.is_empty() {
        return Err("the upstream name is empty".into());
    }
    Ok(Backend {
        upstream: upstream.to_owned(),
        weight,
    })
}

/// Splits an optional `=WEIGHT` suffix off a flag value; the weight defaults to 1 as in the model.
fn split_weight(value: &str) -> Result<(&str, u32), String> {
    match value.split_once('=') {
        None => Ok((value, 1)),
        Some((head, weight)) => weight
            .parse::<u32>()
            .map(|weight| (head, weight))
            .map_err(|_| format!("`{weight}` is not a weight (a whole number, 0 or more)")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("gatewayctl").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn targets_with_and_without_weights() {
        assert_eq!(
            parse_target("10.0.0.1:8080").unwrap(),
            Target {
                address: "10.0.0.1:8080".into(),
                weight: 1
            }
        );
        assert_eq!(
            parse_target("api.internal:443=25").unwrap(),
            Target {
                address: "api.internal:443".into(),
                weight: 25
            }
        );
        assert_eq!(parse_target("[::1]:9000=0").unwrap().address, "[::1]:9000");
        assert!(parse_target("no-port").is_err());
        assert!(parse_target(":80").is_err());
        assert!(parse_target("host:http").is_err());
        assert!(parse_target("host:80=-1").is_err());
        assert!(parse_target("host:80=heavy").is_err());
    }

    #[test]
    fn backends_with_and_without_weights() {
        assert_eq!(
            parse_backend("api").unwrap(),
            Backend {
                upstream: "api".into(),
                weight: 1
            }
        );
        assert_eq!(parse_backend("canary=5").unwrap().weight, 5);
        assert!(parse_backend("=5").is_err());
        assert!(parse_backend("api=x").is_err());
    }

    #[test]
    fn defaults_and_global_flags() {
        let cli = parse(&["status"]).unwrap();
        assert_eq!(cli.admin_url, None);
        assert_eq!(cli.output, Format::Table);
        assert!(cli.token.is_none());

        let cli = parse(&[
            "upstream",
            "list",
            "-o",
            "json",
            "--admin-url",
            "http://cp:9000",
            "--token",
            "s3cret",
            "--tag",
            "blue",
        ])
        .unwrap();
        assert_eq!(cli.output, Format::Json);
        assert_eq!(cli.admin_url.as_deref(), Some("http://cp:9000"));
        assert_eq!(cli.token.as_deref(), Some("s3cret"));
        let Command::Upstream(UpstreamCommand::List(list)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(list.tag.as_deref(), Some("blue"));
    }

    #[test]
    fn upstream_create_from_flags() {
        let cli = parse(&[
            "upstream", "create", "api", "--target", "a:80", "--target", "b:80=3", "--tag", "t1",
        ])
        .unwrap();
        let Command::Upstream(UpstreamCommand::Create(args)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(args.name.as_deref(), Some("api"));
        assert_eq!(args.targets.len(), 2);
        assert_eq!(args.targets[1].weight, 3);
        assert_eq!(args.tags, vec!["t1".to_owned()]);
    }

    #[test]
    fn file_and_name_together_is_a_usage_error() {
        let err = parse(&["upstream", "create", "api", "-f", "up.yaml"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = parse(&["route", "create", "web", "-f", "-"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(parse(&["upstream", "create", "-f", "up.yaml"]).is_ok());
    }

    #[test]
    fn create_needs_a_name_and_targets_without_a_file() {
        assert!(parse(&["upstream", "create", "api"]).is_err());
        assert!(parse(&["upstream", "create", "--target", "a:80"]).is_err());
        assert!(parse(&["route", "create", "web"]).is_err());
        assert!(parse(&["upstream", "create", "api", "--target", "nope"]).is_err());
    }

    #[test]
    fn route_create_flags() {
        let cli = parse(&[
            "route",
            "create",
            "web",
            "--host",
            "example.com",
            "--path",
            "/api",
            "--exact-path",
            "/health",
            "--method",
            "get",
            "--backend",
            "api=9",
            "--backend",
            "canary=1",
            "--strip-prefix",
            "--priority",
            "-5",
        ])
        .unwrap();
        let Command::Route(RouteCommand::Create(args)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(args.hosts, vec!["example.com".to_owned()]);
        assert_eq!(args.paths, vec!["/api".to_owned()]);
        assert_eq!(args.exact_paths, vec!["/health".to_owned()]);
        assert_eq!(args.backends.len(), 2);
        assert!(args.strip_prefix);
        assert!(!args.preserve_host);
        assert_eq!(args.priority, Some(-5));
    }

    #[test]
    fn revisions_limit_must_be_positive() {
        assert!(parse(&["revisions", "--limit", "0"]).is_err());
        let cli = parse(&["revisions", "--limit", "3"]).unwrap();
        let Command::Revisions(args) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(args.limit, Some(3));
        assert!(args.command.is_none());
    }

    #[test]
    fn revisions_show_and_diff() {
        let cli = parse(&["revisions", "show", "3"]).unwrap();
        let Command::Revisions(RevisionsArgs {
            command: Some(RevisionsCommand::Show(show)),
            ..
        }) = cli.command
        else {
            panic!("wrong command");
        };
        assert_eq!(show.revision, 3);
        let cli = parse(&["revisions", "diff", "1", "2", "-o", "json"]).unwrap();
        let Command::Revisions(RevisionsArgs {
            command: Some(RevisionsCommand::Diff(diff)),
            ..
        }) = cli.command
        else {
            panic!("wrong command");
        };
        assert_eq!((diff.from, diff.to), (1, 2));
        assert!(parse(&["revisions", "diff", "1"]).is_err());
        assert!(parse(&["revisions", "show", "-1"]).is_err());
        assert!(parse(&["revisions", "--limit", "3", "show", "2"]).is_err());
    }

    #[test]
    fn apply_diff_export_rollback() {
        let cli = parse(&[
            "apply",
            "-f",
            "-",
            "--dry-run",
            "--if-match",
            "4",
            "-m",
            "deploy 42",
        ])
        .unwrap();
        let Command::Apply(apply) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(apply.file, PathBuf::from("-"));
        assert!(apply.dry_run);
        assert_eq!(apply.write.if_match, Some(4));
        assert_eq!(apply.write.message.as_deref(), Some("deploy 42"));
        assert!(parse(&["apply"]).is_err());
        assert!(parse(&["apply", "-f", "gw.yaml", "--if-match", "x"]).is_err());

        let Command::Diff(diff) = parse(&["diff", "-f", "gw.yaml"]).unwrap().command else {
            panic!("wrong command");
        };
        assert_eq!(diff.file, PathBuf::from("gw.yaml"));
        assert!(parse(&["diff", "-f", "gw.yaml", "--dry-run"]).is_err());

        assert!(matches!(
            parse(&["export", "-o", "json"]).unwrap().command,
            Command::Export
        ));

        let Command::Rollback(rollback) = parse(&["rollback", "7"]).unwrap().command else {
            panic!("wrong command");
        };
        assert_eq!(rollback.revision, 7);
        assert!(!rollback.dry_run);
        assert_eq!(rollback.write.if_match, None);
        assert!(parse(&["rollback"]).is_err());
    }

    #[test]
    fn entity_writes_take_if_match() {
        let cli = parse(&["upstream", "delete", "api", "--if-match", "3"]).unwrap();
        let Command::Upstream(UpstreamCommand::Delete(delete)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(delete.write.if_match, Some(3));
        let cli = parse(&["route", "replace", "-f", "-", "--if-match", "5"]).unwrap();
        let Command::Route(RouteCommand::Replace(replace)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(replace.write.if_match, Some(5));
        let cli = parse(&[
            "upstream",
            "create",
            "api",
            "--target",
            "a:80",
            "--if-match",
            "0",
        ])
        .unwrap();
        let Command::Upstream(UpstreamCommand::Create(create)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(create.write.if_match, Some(0));
    }

    #[test]
    fn certificate_flags() {
        let cli = parse(&[
            "certificate",
            "create",
            "api",
            "--cert",
            "chain.pem",
            "--key",
            "key.pem",
            "--sni",
            "api.test",
            "--sni",
            "*.api.test",
            "--client-ca",
            "ca.pem",
            "--client-auth",
            "optional",
            "--if-match",
            "4",
        ])
        .unwrap();
        let Command::Certificate(CertificateCommand::Create(create)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(create.cert, PathBuf::from("chain.pem"));
        assert_eq!(create.key, PathBuf::from("key.pem"));
        assert_eq!(create.spec.snis, ["api.test", "*.api.test"]);
        assert_eq!(create.spec.client_auth, Some(ClientAuthArg::Optional));
        assert_eq!(create.write.if_match, Some(4));

        // create needs the key; replace can keep the stored one.
        assert!(parse(&["certificate", "create", "api", "--cert", "c.pem"]).is_err());
        let cli = parse(&["certificate", "replace", "api", "--cert", "c.pem"]).unwrap();
        let Command::Certificate(CertificateCommand::Replace(replace)) = cli.command else {
            panic!("wrong command");
        };
        assert_eq!(replace.key, None);
        assert!(parse(&["certificate", "replace", "--cert", "c.pem"]).is_err());

        // The client-certificate settings mean nothing without the CA.
        for flag in [
            "--client-auth",
            "--client-subject-header",
            "--client-fingerprint-header",
        ] {
            let value = if flag == "--client-auth" {
                "required"
            } else {
                "x-client"
            };
            let err = parse(&[
                "certificate",
                "create",
                "api",
                "--cert",
                "c",
                "--key",
                "k",
                flag,
                value,
            ])
            .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{flag}");
        }
        assert!(
            parse(&[
                "certificate",
                "create",
                "api",
                "--cert",
                "c",
                "--key",
                "k",
                "--client-ca",
                "ca",
                "--client-auth",
                "sometimes",
            ])
            .is_err()
        );
        assert!(parse(&["certificate", "list", "--tag", "edge"]).is_ok());
        assert!(parse(&["certificate", "delete", "api", "--if-match", "2"]).is_ok());
        assert!(parse(&["certificate", "get"]).is_err());
    }

    #[test]
    fn completion_offers_the_certificate_commands() {
        let mut command = Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut command,
            "gatewayctl",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        for word in ["certificate", "--client-ca", "--sni", "optional"] {
            assert!(script.contains(word), "{word}");
        }
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(parse_message("deploy 42").unwrap(), "deploy 42");
        assert!(parse_message("déploiement").is_err());
        assert!(parse_message("two\nlines").is_err());
        assert!(parse_message("  ").is_err());
        assert!(parse(&["route", "delete", "web", "-m", "a\rb"]).is_err());
    }
}
