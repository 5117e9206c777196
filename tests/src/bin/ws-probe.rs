//! Run as an agent: `ws-probe h1|h2 HOST PORT PATH MESSAGE` opens a WebSocket, sends
//! MESSAGE and prints the answer (`cordon_e2e::ws_client`).

use anyhow::bail;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, host, port, path, message] = args.as_slice() else {
        bail!("usage: ws-probe h1|h2 HOST PORT PATH MESSAGE");
    };
    let answer =
        cordon_e2e::ws_client::exchange_once(mode, host, port.parse()?, path, message).await?;
    println!("{answer}");
    Ok(())
}
