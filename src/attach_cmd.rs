//! `dvsan volume attach`: serves a station volume locally over NBD.

use anyhow::bail;
use dvsan_station::operations::VolumeView;

/// Serves `v` on `listen` until Ctrl-C.
pub async fn run(v: VolumeView, listen: &str) -> anyhow::Result<()> {
    if let Some(e) = v.extents.iter().find(|e| !e.available) {
        bail!(
            "volume {} is unavailable: unit {} holding extent {} is not online",
            v.name,
            e.unit_name,
            e.seq
        );
    }
    bail!("attaching {} on {listen}: not wired yet", v.name)
}
