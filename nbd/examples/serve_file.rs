//! Serves one file as an NBD export, for manual testing and `bench/nbd.sh`.
//!
//! `cargo run -p dvsan-nbd --example serve_file -- FILE [ADDR] [NAME] [ro]`
//! (ADDR defaults to 127.0.0.1:10809, NAME to "disk"; the export is also
//! the default export). Prints the bound address; stops on Ctrl-C. With
//! `DVSAN_NBD_TLS_DIR=DIR` it serves only inside TLS, with
//! `DIR/server-cert.pem` and `DIR/server-key.pem`.

use std::sync::Arc;

use anyhow::Context;
use dvsan_nbd::{Access, FileExport, StaticRegistry, TlsMode, TlsPolicy};

fn main() -> anyhow::Result<()> {
    // Backend calls run on tokio's blocking pool; left at its default (512
    // threads) a deep queue spawns hundreds of threads that only contend
    // for the CPU. A few per core keep page-cache I/O busy.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rustls=error".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: serve_file FILE [ADDR] [NAME] [ro]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:10809".into());
    let name = args.next().unwrap_or_else(|| "disk".into());
    let read_only = args.next().as_deref() == Some("ro");

    let export = FileExport::open(&path, read_only).with_context(|| format!("opening {path}"))?;
    let mut registry = StaticRegistry::new();
    registry.add(
        name.clone(),
        format!("file {path}"),
        Arc::new(export),
        Access::Everyone,
    );
    registry.set_default(name);

    let tls = match std::env::var_os("DVSAN_NBD_TLS_DIR") {
        None => None,
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            let policy = TlsPolicy::from_pem_files(
                &dir.join("server-cert.pem"),
                &dir.join("server-key.pem"),
                None,
                TlsMode::Required,
            )?;
            Some(Arc::new(policy))
        }
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("listening on {}", listener.local_addr()?);
    dvsan_nbd::serve_with_tls(listener, Arc::new(registry), tls, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
