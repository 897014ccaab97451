//! The `chat-server` binary: parse and validate the config before binding anything, then
//! serve until SIGTERM/SIGINT and drain. Exit codes: 0 ok, 1 runtime failure, 2 bad config.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use chat_server::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match cli.command {
        Some(Command::Healthcheck { url }) => healthcheck(&url),
        Some(Command::ModeratorToken { name, ttl_secs }) => {
            moderator_token(&cli.config, &name, ttl_secs)
        }
        Some(Command::CreateTables { print_schema }) => {
            let dynamodb = match cli.config.dynamodb_settings() {
                Ok(dynamodb) => dynamodb,
                Err(e) => return config_error(&e),
            };
            let prefix = dynamodb.as_ref().map(|d| d.table_prefix.clone());
            if print_schema {
                let schema =
                    chat_server::store::schema::tables(prefix.as_deref().unwrap_or("chat-"));
                match serde_json::to_string_pretty(&schema) {
                    Ok(json) => {
                        println!("{json}");
                        return ExitCode::SUCCESS;
                    }
                    Err(e) => {
                        eprintln!("chat-server: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let Some(dynamodb) = dynamodb else {
                eprintln!(
                    "chat-server: config error: CHAT_DYNAMODB_TABLE_PREFIX: required by create-tables"
                );
                return ExitCode::from(2);
            };
            create_tables(&dynamodb.table_prefix, dynamodb.timeout)
        }
        Some(Command::Serve) | None => {
            let settings = match cli.config.validate() {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            let telemetry = match chat_server::telemetry::init("chat-server", &cli.config.color) {
                Ok(guard) => guard,
                Err(e) => {
                    eprintln!("chat-server: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("chat-server: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(serve(settings));
            // Flush buffered spans only after every task has stopped.
            drop(runtime);
            drop(telemetry);
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "Server failed");
                    eprintln!("chat-server: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A configuration error: one line naming the variable, exit 2.
fn config_error(e: &chat_server::config::ConfigError) -> ExitCode {
    eprintln!("chat-server: config error: {e}");
    ExitCode::from(2)
}

/// `chat-server moderator-token`: a moderator credential on stdout, signed with the secret
/// the server uses (exit 2 on a bad secret setting, name or life; 1 when there is no secret
/// yet: it never makes one, which the server would not share).
fn moderator_token(config: &chat_server::config::Config, name: &str, ttl_secs: u64) -> ExitCode {
    let settings = match config.token_settings() {
        Ok(settings) => settings,
        Err(e) => return config_error(&e),
    };
    let life = Duration::from_secs(ttl_secs);
    if let Err(e) = chat_server::moderator::check(name, life) {
        eprintln!("chat-server: moderator-token: {e}");
        return ExitCode::from(2);
    }
    let Some(tokens) =
        chat_server::auth::Tokens::read(settings.secret.as_deref(), &config.data_dir)
    else {
        eprintln!(
            "chat-server: moderator-token: no token secret: set CHAT_TOKEN_SECRET, or run the server once with CHAT_DATA_DIR {}",
            config.data_dir.display()
        );
        return ExitCode::FAILURE;
    };
    match chat_server::moderator::issue(&tokens, name, life) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chat-server: moderator-token: {e}");
            ExitCode::from(2)
        }
    }
}

/// `chat-server create-tables`: the DynamoDB tables of the schema, at the endpoint the AWS
/// environment names (`AWS_ENDPOINT_URL` for a local one).
fn create_tables(prefix: &str, timeout: Duration) -> ExitCode {
    use chat_server::store::dynamodb;
    let done = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                let client = dynamodb::client_from_env(timeout).await;
                dynamodb::create_tables(&client, prefix).await
            })
        });
    match done {
        Ok(()) => {
            let names: Vec<String> = chat_server::store::schema::tables(prefix)
                .into_iter()
                .map(|t| t.name)
                .collect();
            println!("tables ready: {}", names.join(", "));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chat-server: create-tables: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a clap error as one line naming the environment variable (operators set
/// variables, not flags), and exits 2; help and version print as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => Some(arg.clone()),
        _ => None,
    };
    let env = arg.as_deref().and_then(|arg| {
        Cli::command()
            .get_arguments()
            .find(|a| {
                a.get_long()
                    .is_some_and(|l| arg.starts_with(&format!("--{l} ")) || arg == format!("--{l}"))
            })
            .and_then(|a| a.get_env().map(|v| v.to_string_lossy().into_owned()))
    });
    let first_line = e
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    match env {
        Some(env) => eprintln!("chat-server: config error: {env}: {first_line}"),
        None => eprintln!("chat-server: error: {first_line}"),
    }
    ExitCode::from(2)
}

async fn serve(settings: chat_server::config::Settings) -> anyhow::Result<()> {
    // The drain starts on SIGTERM, or earlier: when the ECS task metadata says the task is
    // being stopped (deregistration has begun; SIGTERM comes only after its delay).
    let shutdown = async {
        tokio::select! {
            () = shutdown_signal() => {}
            () = chat_server::ecs_stop::stopping() => {}
        }
    };
    let running = chat_server::app::start(settings, shutdown).await?;
    running.wait().await
}

/// Resolves on SIGTERM (ECS stopping the task) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `GET url` over plain HTTP/1.0: exit 0 on a 200. The runtime image has no curl.
fn healthcheck(url: &str) -> ExitCode {
    match probe(url) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("chat-server healthcheck: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("chat-server healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(url: &str) -> std::io::Result<u16> {
    use std::io::{Error, ErrorKind};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "only http:// URLs are supported"))?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| Error::new(ErrorKind::NotFound, "host has no address"))?;
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let line = std::str::from_utf8(&head[..n]).unwrap_or("");
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, "not an HTTP response"))
}
