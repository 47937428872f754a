//! `dvsan volume attach`: serves a station volume locally over NBD, mapping
//! it onto its extents and talking to each unit directly.

use anyhow::bail;
use dvsan_station::operations::VolumeView;

use crate::volume_attach::{RemoteExtent, attach};

/// Serves `v` on `listen` until SIGINT or SIGTERM.
pub async fn run(v: VolumeView, listen: &str) -> anyhow::Result<()> {
    let listen = listen.parse()?;
    if let Some(e) = v.extents.iter().find(|e| !e.available) {
        bail!(
            "volume {} is unavailable: unit {} holding extent {} is not online",
            v.name,
            e.unit_name,
            e.seq
        );
    }
    if v.extents.is_empty() {
        bail!("volume {} has no extents", v.name);
    }
    let mut extents = v.extents.clone();
    extents.sort_by_key(|e| e.seq);
    let remote = extents
        .iter()
        .map(|e| RemoteExtent {
            uri: e.nbd_uri.clone(),
            size_bytes: e.size_mib << 20,
        })
        .collect();
    attach(&v.name, remote, listen, crate::shutdown_signal()).await
}
