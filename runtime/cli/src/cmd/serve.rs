//! `squall serve`: the long-running server.

use crate::Failure;
use crate::settings::Settings;
use clap::Args;
use squall_server::Mode;
use squall_server::api::{Access, ApiState, app};
use std::io::Write;
use std::net::SocketAddr;

/// `squall serve` arguments.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: [server] bind, 127.0.0.1:9101]; port 0 picks a free one.
    /// Anything but loopback requires an API key on every request (`squall apikey create`).
    #[arg(long, env = "SQUALL_BIND", value_name = "ADDR")]
    bind: Option<SocketAddr>,
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        () = term => {}
    }
}

pub async fn run(settings: &Settings, args: ServeArgs) -> Result<u8, Failure> {
    let bind = match args.bind {
        Some(b) => b,
        None => settings
            .config
            .server
            .bind
            .parse()
            .map_err(|e| Failure::input(format!("[server] bind: {e}")))?,
    };
    // Bind first: the address is reserved from components' outbound HTTP before any sensor or
    // action runs (requests wait in the backlog until the router serves them).
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| Failure::input(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener.local_addr().map_err(Failure::internal)?;
    let services = settings.services(Mode::Server, Some(addr)).await?;
    // Components compile in the background: the API answers at once, an execution needing a
    // component still compiling waits for it, and a broken one is logged as it is met.
    let compiling = services.registry().compile_in_background();
    let access = Access::for_bind(&addr);
    let packs = services.registry().packs();
    tracing::info!(
        %addr,
        packs = packs.packs.len(),
        actions = packs.actions().count(),
        rules = packs.rules().count(),
        components = packs.component_files().len(),
        api_keys_required = access == Access::ApiKeys,
        "squall serving"
    );
    {
        // The first line on stdout says where to reach us (tests and scripts read it).
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "squall: listening on http://{addr}");
        let _ = stdout.flush();
    }
    // SIGHUP reloads the packs, as `squall pack register` (a refused version is logged; the
    // loaded one keeps serving).
    #[cfg(unix)]
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        let services = services.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading packs");
                // Refusals are logged by the reload itself.
                let _ = services.reload(&[]).await;
            }
        });
    }
    let router = app(ApiState {
        services: services.clone(),
        access,
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Failure::internal(format!("server failed: {e}")))?;
    // A shutdown does not wait for components nobody asked for yet.
    services.registry().stop_compiling();
    drop(compiling);
    tracing::info!("shutting down: finishing running executions");
    services
        .shutdown(settings.config.server.shutdown_timeout)
        .await;
    tracing::info!("stopped");
    Ok(0)
}
