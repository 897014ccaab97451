//! Building and running the server: choose the store and fanout from the config, bind both
//! listeners, serve until the shutdown future resolves, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::Tokens;
use crate::config::Config;
use crate::fanout::local::LocalFanout;
use crate::fanout::redis::RedisFanout;
use crate::fanout::{Fanout, SinkRef};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::protocol::ServerInfo;
use crate::store::Store;
use crate::store::dynamodb::{self, DynamoStore};
use crate::store::embedded::EmbeddedStore;
use crate::ws::Limits;

/// What every request handler shares.
pub struct AppState {
    pub hub: Arc<Hub>,
    pub tokens: Tokens,
    pub limits: Limits,
    /// Origins allowed to open a WebSocket; empty = the page's own host; `*` = any.
    pub allowed_origins: Vec<String>,
}

/// A started server.
pub struct Running {
    /// The public listener's address (useful with port 0).
    pub addr: SocketAddr,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    pub state: Arc<AppState>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until the server has drained and stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// The store the config asks for.
pub async fn build_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(prefix) = &config.dynamodb_table_prefix {
        let client = dynamodb::client_from_env(config.dynamodb_timeout()).await;
        return Ok(Arc::new(DynamoStore::new(client, prefix)));
    }
    let dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir))
        .await
        .context("opening the embedded store")?
        .with_context(|| {
            format!(
                "opening the embedded store in {}",
                config.data_dir.display()
            )
        })?;
    Ok(Arc::new(store))
}

/// The fanout the config asks for, given the hub's sink.
/// Never waits for Redis: a task started while it is down serves and becomes ready later.
pub fn build_fanout(config: &Config, sink: SinkRef) -> anyhow::Result<Box<dyn Fanout>> {
    if let Some(url) = &config.redis_url {
        let ttl = Duration::from_secs(config.presence_ttl_secs);
        return Ok(Box::new(RedisFanout::new(url, ttl, sink)?));
    }
    Ok(Box::new(LocalFanout::new()))
}

/// Binds, builds and starts serving. `shutdown` resolving starts the drain.
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding CHAT_LISTEN {}", config.listen))?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("binding CHAT_ADMIN_LISTEN {}", config.admin_listen))?;
    let addr = listener.local_addr()?;
    let admin_addr = admin.local_addr()?;

    let store = build_store(&config).await?;
    let tokens = Tokens::load(config.token_secret.as_deref(), &config.data_dir)?;
    let metrics = Arc::new(Metrics::new());
    let info = ServerInfo {
        color: config.color.clone(),
        version: env!("CARGO_PKG_VERSION"),
        task: config.task_id(),
    };
    let mut fanout_error = None;
    let hub = Hub::new(
        store,
        |sink| match build_fanout(&config, sink) {
            Ok(f) => f,
            Err(e) => {
                fanout_error = Some(e);
                Box::new(LocalFanout::new())
            }
        },
        info,
        Arc::clone(&metrics),
        config.outbound_queue as usize,
    );
    if let Some(e) = fanout_error {
        return Err(e);
    }
    let state = Arc::new(AppState {
        hub: Arc::clone(&hub),
        tokens,
        limits: Limits {
            rate_per_sec: NonZeroU32::new(config.rate_per_sec).unwrap_or(NonZeroU32::MIN),
            rate_burst: NonZeroU32::new(config.rate_burst).unwrap_or(NonZeroU32::MIN),
        },
        allowed_origins: config.allowed_origins.clone(),
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let public = axum::serve(listener, crate::http::router(Arc::clone(&state)))
        .with_graceful_shutdown(wait_true(stop_rx.clone()));
    let admin_srv = axum::serve(admin, crate::http::admin_router(Arc::clone(&hub)))
        .with_graceful_shutdown(wait_true(stop_rx));
    let drain = Duration::from_secs(config.drain_secs);
    tracing::info!(%addr, %admin_addr, store = hub.store().name(), fanout = hub.fanout().name(), color = %config.color, "Serving");

    let task = tokio::spawn(async move {
        let public = tokio::spawn(async move { public.await });
        let admin_srv = tokio::spawn(async move { admin_srv.await });
        shutdown.await;
        tracing::info!("Shutdown requested");
        // Stop accepting, then drain the live connections.
        let _ = stop_tx.send(true);
        hub.drain(drain).await;
        public
            .await
            .context("public listener task")?
            .context("public listener")?;
        admin_srv
            .await
            .context("admin listener task")?
            .context("admin listener")?;
        Ok(())
    });
    Ok(Running {
        addr,
        admin_addr,
        state,
        task,
    })
}

async fn wait_true(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
