//! `rev-test-probe-target [ADDR]`: serves the probe target on ADDR (default 127.0.0.1:0) and
//! prints `listening on http://ADDR` on its first line, so scripts and e2e tests can start it,
//! read the port, and steer it through `/__target/fail`, `/__target/stall`, `/__target/received`.

use std::net::SocketAddr;
use std::process::ExitCode;

use rev_test_probe_target::ProbeTarget;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let addr = match std::env::args().nth(1).map(|a| a.parse::<SocketAddr>()) {
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
        Some(Ok(addr)) if addr.ip().is_loopback() => addr,
        Some(Ok(addr)) => {
            eprintln!("refusing to listen on {addr}: the probe target serves loopback only");
            return ExitCode::from(2);
        }
        Some(Err(e)) => {
            eprintln!("usage: rev-test-probe-target [127.0.0.1:PORT]: {e}");
            return ExitCode::from(2);
        }
    };
    let target = match ProbeTarget::start_on(addr).await {
        Ok(target) => target,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    println!("listening on {}", target.url());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
