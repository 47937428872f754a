//! `dvsan volume attach`: serves a station volume locally over NBD, mapping
//! it onto its extents and talking to each unit directly.

use anyhow::bail;
use dvsan_nbd::ClientTls;
use dvsan_station::operations::{ExtentView, VolumeView};

use crate::volume_attach::{RemoteExtent, attach};

/// Serves `v` on `listen` until SIGINT or SIGTERM. With `tls`, extents on
/// units that offer TLS are reached over it; an extent on a unit that
/// requires TLS needs it.
pub async fn run(v: VolumeView, listen: &str, tls: Option<ClientTls>) -> anyhow::Result<()> {
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
    if tls.is_none()
        && let Some(e) = v.extents.iter().find(|e| e.nbd_tls == "required")
    {
        bail!(
            "volume {}: unit {} (extent {}) serves NBD over TLS only; pass --tls-ca FILE, the \
             CA that signed its certificate",
            v.name,
            e.unit_name,
            e.seq
        );
    }
    let mut extents = v.extents.clone();
    extents.sort_by_key(|e| e.seq);
    let remote = extents
        .iter()
        .map(|e| RemoteExtent {
            uri: extent_uri(e, tls.is_some()),
            size_bytes: e.size_mib << 20,
        })
        .collect();
    attach(&v.name, remote, listen, tls, crate::shutdown_signal()).await
}

/// The URI of an extent: over TLS where its unit offers it and this host
/// has TLS settings.
fn extent_uri(e: &ExtentView, tls: bool) -> String {
    match e.nbd_uri.strip_prefix("nbd://") {
        Some(rest) if tls && e.nbd_tls == "optional" => format!("nbds://{rest}"),
        _ => e.nbd_uri.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extent(uri: &str, tls: &str) -> ExtentView {
        ExtentView {
            seq: 0,
            unit_uuid: String::new(),
            unit_name: "u".into(),
            volume_index: 1,
            raid_group: 1,
            start_mib: 0,
            size_mib: 1,
            export_name: "x".into(),
            nbd_uri: uri.into(),
            nbd_tls: tls.into(),
            available: true,
        }
    }

    #[test]
    fn tls_is_used_where_offered_once_there_is_a_ca() {
        let optional = extent("nbd://h:1/x", "optional");
        assert_eq!(extent_uri(&optional, false), "nbd://h:1/x");
        assert_eq!(extent_uri(&optional, true), "nbds://h:1/x");
        let off = extent("nbd://h:1/x", "off");
        assert_eq!(extent_uri(&off, true), "nbd://h:1/x");
        let required = extent("nbds://h:1/x", "required");
        assert_eq!(extent_uri(&required, true), "nbds://h:1/x");
    }
}
