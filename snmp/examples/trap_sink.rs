//! The receiving side of the notification benchmark (bench/snmp-traps.sh):
//! dvsan's TrapReceiver on 127.0.0.1, community `public`, counting every
//! notification handed to the application. Prints its port, then, once no
//! notification has come for a second after the first, `received=N`.

use std::time::Duration;

use dvsan_snmp::{EngineIdentity, ReceiverConfig, TrapReceiver};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let receiver = TrapReceiver::bind(ReceiverConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        engine: EngineIdentity::ephemeral().expect("engine"),
        users: Vec::new(),
        communities: vec!["public".into()],
        recv_buffer: 8 << 20,
    })
    .await
    .expect("receiver");
    println!("{}", receiver.local_addr().port());
    let mut received = 0u64;
    let idle = Duration::from_secs(1);
    // Bounded: gives up after two minutes without a first notification.
    let first = tokio::time::timeout(Duration::from_secs(120), receiver.recv()).await;
    if matches!(first, Ok(Ok(_))) {
        received += 1;
        while let Ok(Ok(_)) = tokio::time::timeout(idle, receiver.recv()).await {
            received += 1;
        }
    }
    println!("received={received}");
}
