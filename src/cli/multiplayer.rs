//! `appgear multiplayer serve|token`: the real-time collaboration gateway and its access tokens.

use crate::core::error::{Error, Result};
use crate::core::quote;
use crate::multiplayer::config::{
    self, RawSettings, DEFAULT_HEADER_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_CLIENT_IDS,
    DEFAULT_MAX_LOCKS_PER_OWNER, DEFAULT_MAX_LOCKS_PER_ROOM, DEFAULT_MAX_PENDING_CONNECTIONS,
    DEFAULT_PREFIX,
};
use crate::multiplayer::token::{self, Claims};
use crate::multiplayer::GatewayConfig;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum MultiplayerCommand {
    /// Run the gateway (y-websocket protocol, locks, Redis backplane).
    Serve(Box<ServeArgs>),
    /// Print an access token for editors of a workspace.
    Token(TokenArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MULTIPLAYER_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// The workspace this gateway serves; tokens for other workspaces are refused.
    #[arg(long, env = "WORKSPACE_ID")]
    pub workspace: Option<String>,
    /// Redis: a redis:// URL or host[:port]. Falls back to REDIS_HOST.
    // The URL may carry a password: `--help` must not show the environment's value.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis: Option<String>,
    /// Redpanda broker (accepted for the Deployment's env; the backplane uses Redis for now).
    #[arg(long, env = "REDPANDA_BROKER", hide_env_values = true)]
    pub redpanda_broker: Option<String>,
    /// URL path under which rooms live: <prefix>/<room>. Use / behind a proxy that strips it.
    #[arg(long, env = "MULTIPLAYER_PATH_PREFIX", default_value = DEFAULT_PREFIX)]
    pub path_prefix: String,
    /// File holding the workspace's token secret [default: /vault/secrets/multiplayer-token,
    /// unless MULTIPLAYER_TOKEN_SECRET is set].
    #[arg(long, env = "MULTIPLAYER_TOKEN_SECRET_FILE")]
    pub token_secret_file: Option<PathBuf>,
    /// Largest accepted WebSocket message.
    #[arg(long, env = "MULTIPLAYER_MAX_MESSAGE_SIZE", default_value = "16MiB")]
    pub max_message_size: String,
    /// Most simultaneous editor connections; more get HTTP 503 and retry.
    #[arg(long, env = "MULTIPLAYER_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Frames queued per connection before it counts as too slow (closed with 1013).
    #[arg(long, env = "MULTIPLAYER_SEND_QUEUE", default_value_t = 512)]
    pub send_queue: usize,
    /// How long a document stays loaded after its last editor left.
    #[arg(long, env = "MULTIPLAYER_UNLOAD_GRACE", default_value = "30s")]
    pub unload_grace: String,
    /// Lease of a lock; holders renew it, a vanished holder loses it after this.
    #[arg(long, env = "MULTIPLAYER_LOCK_TTL", default_value = "30s")]
    pub lock_ttl: String,
    /// Interval of the gateway's presence heartbeat (keeps lone clients connected).
    #[arg(long, env = "MULTIPLAYER_KEEPALIVE", default_value = "10s")]
    pub keepalive: String,
    /// Close a connection that sent nothing for this long (a peer that vanished without
    /// closing). The stock client renews its presence every 15 s; keep this above 30s.
    #[arg(long, env = "MULTIPLAYER_IDLE_TIMEOUT", default_value = "45s")]
    pub idle_timeout: String,
    /// Most connections that are not editor sessions (before the upgrade, health and lock
    /// calls, refusals); at the limit a new one replaces the one waiting longest for its request.
    #[arg(long, env = "MULTIPLAYER_MAX_PENDING_CONNECTIONS", default_value_t = DEFAULT_MAX_PENDING_CONNECTIONS)]
    pub max_pending_connections: usize,
    /// A connection must send a whole request head within this long (after it connects, or
    /// after its previous answer); else it is closed.
    #[arg(long, env = "MULTIPLAYER_HEADER_TIMEOUT", default_value = DEFAULT_HEADER_TIMEOUT)]
    pub header_timeout: String,
    /// Client ids one connection may announce presence for; entries for more are dropped.
    #[arg(long, env = "MULTIPLAYER_MAX_CLIENT_IDS", default_value_t = DEFAULT_MAX_CLIENT_IDS)]
    pub max_client_ids: usize,
    /// Locks held in one room at once; more are refused (HTTP 429, editors keep waiting).
    #[arg(long, env = "MULTIPLAYER_MAX_LOCKS_PER_ROOM", default_value_t = DEFAULT_MAX_LOCKS_PER_ROOM)]
    pub max_locks_per_room: usize,
    /// Locks one holder (an editor, or an HTTP caller) holds in one room at once.
    #[arg(long, env = "MULTIPLAYER_MAX_LOCKS_PER_OWNER", default_value_t = DEFAULT_MAX_LOCKS_PER_OWNER)]
    pub max_locks_per_owner: usize,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Workspace the token is for.
    #[arg(long, env = "WORKSPACE_ID")]
    pub workspace: Option<String>,
    /// File holding the workspace's token secret (else MULTIPLAYER_TOKEN_SECRET).
    #[arg(long, env = "MULTIPLAYER_TOKEN_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// Read-only: the holder sees edits but its own are dropped.
    #[arg(long)]
    pub read_only: bool,
    /// Lifetime of the token.
    #[arg(long, default_value = "12h")]
    pub ttl: String,
    /// Who holds it (the default owner name for HTTP lock calls).
    #[arg(long)]
    pub subject: Option<String>,
}

pub async fn run(cmd: MultiplayerCommand) -> Result<i32> {
    match cmd {
        MultiplayerCommand::Serve(args) => {
            let config = GatewayConfig::from_raw(raw_settings(args))?;
            crate::multiplayer::serve(config).await
        }
        MultiplayerCommand::Token(args) => print_token(args),
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn raw_settings(a: Box<ServeArgs>) -> RawSettings {
    let a = *a;
    RawSettings {
        listen: a.listen,
        workspace: a.workspace,
        redis: a.redis,
        redis_host_env: env_nonempty("REDIS_HOST"),
        redpanda_broker: a.redpanda_broker,
        path_prefix: a.path_prefix,
        token_secret_file: a.token_secret_file,
        token_secret_env: env_nonempty("MULTIPLAYER_TOKEN_SECRET"),
        max_message_size: a.max_message_size,
        max_connections: a.max_connections,
        send_queue: a.send_queue,
        unload_grace: a.unload_grace,
        lock_ttl: a.lock_ttl,
        keepalive: a.keepalive,
        idle_timeout: a.idle_timeout,
        max_pending_connections: a.max_pending_connections,
        header_timeout: a.header_timeout,
        max_client_ids: a.max_client_ids,
        max_locks_per_room: a.max_locks_per_room,
        max_locks_per_owner: a.max_locks_per_owner,
    }
}

fn print_token(a: TokenArgs) -> Result<i32> {
    let workspace = config::workspace_id(a.workspace.as_deref())?;
    let secret = config::load_secret_for_token(
        a.secret_file.as_deref(),
        env_nonempty("MULTIPLAYER_TOKEN_SECRET"),
    )?;
    let ttl = humantime::parse_duration(a.ttl.trim()).map_err(|_| {
        Error::bad_input(format!("--ttl {:?} is not a duration", a.ttl))
            .hint("give a duration such as 30m, 12h or 7days")
    })?;
    if ttl.is_zero() {
        return Err(Error::bad_input("--ttl is zero").hint("give a duration such as 12h"));
    }
    let subject = a.subject.filter(|s| !s.is_empty());
    if let Some(s) = subject.as_deref().filter(|s| !token::valid_subject(s)) {
        return Err(Error::bad_input(format!(
            "--subject {} cannot name a lock holder: a subject is {}",
            quote::quoted(s, 60),
            token::SUBJECT_RULE
        ))
        .hint("give a short name such as ci-bot or ana; the lock endpoints refuse any other"));
    }
    let claims = Claims {
        ws: workspace.as_str().to_string(),
        ro: a.read_only,
        exp: token::now_unix().saturating_add(ttl.as_secs().max(1)),
        sub: subject,
    };
    crate::core::ui::out(format_args!("{}", token::mint(&claims, secret.bytes())));
    Ok(0)
}
