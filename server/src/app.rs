//! Building and running the server from its [`Settings`]: build the store, fanout and hub
//! (anything that can fail at start fails here, before a port is bound), bind both listeners,
//! serve until the shutdown future resolves, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::Tokens;
use crate::background::Background;
use crate::config::{Settings, UploadSettings};
use crate::fanout::local::LocalFanout;
use crate::fanout::redis::RedisFanout;
use crate::fanout::{Fanout, ToHub};
use crate::http::AppState;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::protocol::ServerInfo;
use crate::store::Store;
use crate::store::dynamodb::{self, DynamoStore};
use crate::store::embedded::EmbeddedStore;
use crate::store::user_ids::UserIds;
use crate::throttle::Throttle;
use crate::uploads::Uploads;
use crate::uploads::backend::Backend;
use crate::web::WebClient;
use crate::ws::Limits;

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

/// The store the settings ask for.
pub async fn build_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(dynamo) = &settings.store.dynamodb {
        let client = dynamodb::client_from_env(dynamo.timeout).await;
        return Ok(Arc::new(DynamoStore::new(client, &dynamo.table_prefix)));
    }
    let dir = settings.store.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir))
        .await
        .context("opening the embedded store")?
        .with_context(|| {
            format!(
                "opening the embedded store in {}",
                settings.store.data_dir.display()
            )
        })?;
    Ok(Arc::new(store))
}

/// Where shared images go, as the settings ask.
pub async fn build_upload_backend(settings: &Settings) -> Backend {
    match &settings.uploads {
        UploadSettings::Embedded { dir } => Backend::Embedded { dir: dir.clone() },
        UploadSettings::S3 {
            bucket,
            prefix,
            public_base,
        } => Backend::S3 {
            client: crate::uploads::backend::s3_client_from_env().await,
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            public_base: public_base.clone(),
        },
    }
}

/// The fanout the settings ask for, handing other tasks' events to `hub`, its tasks run
/// under `background`. Never waits for Redis: a task started while it is down serves and
/// becomes ready later.
pub fn build_fanout(
    settings: &Settings,
    hub: ToHub,
    background: &Background,
) -> anyhow::Result<Box<dyn Fanout>> {
    if let Some(redis) = &settings.redis {
        return Ok(Box::new(RedisFanout::new(
            &redis.url,
            redis.presence_ttl,
            hub,
            background,
        )?));
    }
    Ok(Box::new(LocalFanout::new()))
}

/// Builds, binds and starts serving. `shutdown` resolving starts the drain; once drained,
/// every background task the server started is stopped ([`Background::shutdown`]).
pub async fn start(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    let store = build_store(&settings).await?;
    let mut tokens = Tokens::load(settings.tokens.secret.as_deref(), &settings.store.data_dir)?
        .with_ttl(settings.tokens.ttl);
    if let Some((previous, overlap)) = &settings.tokens.previous {
        tokens = tokens.with_previous(previous.as_bytes(), *overlap);
    }
    let tokens = Arc::new(tokens);
    let uploads = Arc::new(Uploads::new(
        build_upload_backend(&settings).await,
        Arc::clone(&tokens),
    ));
    let metrics = Arc::new(Metrics::new());
    let info = ServerInfo {
        color: settings.task.color.clone(),
        version: crate::build_info::VERSION,
        git_sha: crate::build_info::GIT_SHA,
        built_at: crate::build_info::BUILT_AT,
        task: settings.task.id.clone(),
    };
    let background = Background::new();
    let hub = Hub::new(
        Arc::clone(&store),
        |to_hub| build_fanout(&settings, to_hub, &background),
        info,
        Arc::clone(&metrics),
        settings.connections.outbound_queue,
        settings.connections.ping_interval,
        &background,
    );
    let served = match hub {
        Ok(hub) => serve(settings, store, tokens, uploads, hub, &background, shutdown).await,
        Err(e) => Err(e),
    };
    if served.is_err() {
        background.shutdown().await;
    }
    served
}

/// Binds both listeners and serves `hub` until `shutdown`, then drains.
async fn serve(
    settings: Settings,
    store: Arc<dyn Store>,
    tokens: Arc<Tokens>,
    uploads: Arc<Uploads>,
    hub: Arc<Hub>,
    background: &Background,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    if settings.store.dynamodb.is_some() {
        // Fleet heartbeat and rebalancing toward the weights opsctl publishes.
        crate::rebalance::spawn(Arc::clone(&hub), Arc::clone(&store), background);
    }

    let listener = TcpListener::bind(settings.listen.public)
        .await
        .with_context(|| format!("binding CHAT_LISTEN {}", settings.listen.public))?;
    let admin = TcpListener::bind(settings.listen.admin)
        .await
        .with_context(|| format!("binding CHAT_ADMIN_LISTEN {}", settings.listen.admin))?;
    let addr = listener.local_addr()?;
    let admin_addr = admin.local_addr()?;

    let limits = settings.limits;
    let state = Arc::new(AppState {
        hub: Arc::clone(&hub),
        store: Arc::clone(&store),
        user_ids: UserIds::new(Arc::clone(&store)),
        tokens,
        uploads,
        limits: Limits {
            rate_per_sec: settings.connections.rate_per_sec,
            rate_burst: settings.connections.rate_burst,
            idle_timeout: settings.connections.ping_interval * 3,
        },
        sessions: Throttle::new(limits.session_addr, Some(limits.session_task)),
        reads: Throttle::new(limits.history_addr, Some(limits.history_task)),
        // No task-wide cap: a drained task's clients all reconnect at once, legitimately.
        upgrades: Throttle::new(limits.connect_addr, None),
        reconnects: crate::throttle::Reconnects::default(),
        // Keyed by user id; 0 is no guest's, the bucket of users beyond the tracked ones.
        upload_slots: Arc::new(Throttle::keyed(
            limits.upload_user,
            Some(limits.upload_task),
            0,
        )),
        trusted_proxies: settings.http.trusted_proxies,
        allowed_origins: settings.http.allowed_origins.clone(),
        web: WebClient::new(&settings.task.color, &settings.http.frame_ancestors)?,
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let public = crate::listen::serve(
        listener,
        crate::http::router(Arc::clone(&state)),
        Arc::default(),
        // Behind a proxy every connection comes from it: only its header names the client.
        settings.http.trusted_proxies == 0,
        stop_rx.clone(),
    );
    let admin_srv = axum::serve(admin, crate::http::admin_router(Arc::clone(&hub)))
        .with_graceful_shutdown(wait_true(stop_rx));
    let drain = settings.connections.drain;
    let background = background.clone();
    tracing::info!(%addr, %admin_addr, store = store.name(), fanout = hub.fanout().name(), color = %settings.task.color, "Serving");

    let task = tokio::spawn(async move {
        let public = tokio::spawn(public);
        let admin_srv = tokio::spawn(async move { admin_srv.await });
        shutdown.await;
        tracing::info!("Shutdown requested");
        // Stop accepting, then drain the live connections.
        let _ = stop_tx.send(true);
        hub.drain(drain).await;
        background.shutdown().await;
        public.await.context("public listener task")?;
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
